// Finds the patched and stock llama.cpp binaries: given directories, or scripts/build-llama.sh (cached builds).
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExternalError, UserError } from '../errors.js';
import { runToCompletion } from '../process/managed-process.js';
import type { Binaries } from './launch-plan.js';

export interface BinDirs {
  readonly patched: string;
  readonly stock: string;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The `patched=` and `stock=` lines build-llama.sh prints last. Pure. */
export function parseBuildOutput(stdout: string): BinDirs | undefined {
  const lines = stdout.trim().split('\n').reverse();
  const patched = lines.find((l) => l.startsWith('patched='))?.slice('patched='.length);
  const stock = lines.find((l) => l.startsWith('stock='))?.slice('stock='.length);
  return patched && stock ? { patched, stock } : undefined;
}

export async function buildDirs(signal?: AbortSignal): Promise<BinDirs> {
  const script = join(repoRoot, 'scripts/build-llama.sh');
  const r = await runToCompletion({ label: 'scripts/build-llama.sh', command: 'bash', args: [script], cwd: repoRoot }, signal ? { signal } : {});
  const dirs = r.exitCode === 0 ? parseBuildOutput(r.stdout) : undefined;
  if (!dirs) {
    throw new ExternalError('building llama.cpp failed (scripts/build-llama.sh)', {
      command: r.command,
      exitCode: r.exitCode,
      signal: r.signal,
      stderrTail: r.stderrTail.join('\n'),
    });
  }
  return dirs;
}

export async function binaries(dirs: BinDirs): Promise<Binaries> {
  const b: Binaries = {
    patchedServer: join(dirs.patched, 'llama-server'),
    stockServer: join(dirs.stock, 'llama-server'),
    rpcServer: join(dirs.stock, 'ggml-rpc-server'),
  };
  for (const p of Object.values(b)) {
    try {
      await access(p, constants.X_OK);
    } catch {
      throw new UserError(`${p} is missing or not executable`, ['run `bash scripts/build-llama.sh`', 'or pass --patched-bin-dir and --stock-bin-dir']);
    }
  }
  return b;
}
