// The package as a user installs it: `npm pack` (its prepack compiles dist/), then `npm install -g` of the tarball into
// an empty prefix with --omit=dev. Done once per test process.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './llama-src.js';

const run = promisify(execFile);
let installed: Promise<{ prefix: string; bin: string; tarball: string }> | undefined;

export function packedInstall(): Promise<{ prefix: string; bin: string; tarball: string }> {
  installed ??= (async () => {
    const dir = mkdtempSync('/tmp/lr-pack-');
    // --prefer-offline: the dependencies come from npm's cache when they are there (CI fills it with `npm ci`).
    await run('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: repoRoot, maxBuffer: 16 << 20 });
    const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '-g', '--prefix', prefix, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: dir,
      maxBuffer: 16 << 20,
    });
    return { prefix, bin: join(prefix, 'bin', 'llama-relay'), tarball };
  })();
  return installed;
}
