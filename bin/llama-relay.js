#!/usr/bin/env node
// The installed package runs the compiled dist/; a source checkout (src/ next to bin/) runs the TypeScript through tsx,
// a devDependency, so `npx llama-relay` in a clone needs no build step.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  // The package's own tsconfig (its JSX runtime), wherever the command is run from.
  register({ tsconfig: new URL('../tsconfig.json', import.meta.url).pathname });
  ({ main } = await import(source.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
