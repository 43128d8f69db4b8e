#!/usr/bin/env node
// The package ships TypeScript sources; tsx loads them so `npx llama-relay` works without a build step.
import { register } from 'tsx/esm/api';

// The package's own tsconfig (its JSX runtime), wherever the command is run from.
register({ tsconfig: new URL('../tsconfig.json', import.meta.url).pathname });
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
