// This machine's llama.cpp builds: scripts/build-llama.sh builds or reuses them (cached per pin and patch set) and
// prints `patched=<dir>` and `stock=<dir>` last; or the user names the directories.
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExternalError, UserError } from '../errors.js';
import type { Emit } from '../events/events.js';
import { runToCompletion } from '../process/managed-process.js';

export interface BinDirs {
  readonly patched: string;
  readonly stock: string;
}

/** The servers a bench starts, on this machine (or, remote, where provisioning put them). */
export interface Binaries {
  readonly patchedServer: string;
  readonly stockServer: string;
  readonly rpcServer: string;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const script = join(repoRoot, 'scripts/build-llama.sh');

/** The `patched=` and `stock=` lines build-llama.sh prints last. Pure. */
export function parseBuildOutput(stdout: string): BinDirs | undefined {
  const lines = stdout.trim().split('\n').reverse();
  const patched = lines.find((l) => l.startsWith('patched='))?.slice('patched='.length);
  const stock = lines.find((l) => l.startsWith('stock='))?.slice('stock='.length);
  return patched && stock ? { patched, stock } : undefined;
}

/** Runs build-llama.sh; with `emit`, its progress becomes engine-build events and its other lines logs. */
async function runBuild(args: readonly string[], o: { emit?: Emit; signal?: AbortSignal }): Promise<string> {
  const emit = o.emit;
  const r = await runToCompletion(
    { label: 'scripts/build-llama.sh', command: 'bash', args: [script, ...args], cwd: repoRoot },
    {
      signal: o.signal,
      onLine: emit
        ? (line, stream) => {
            if (stream !== 'stderr') return;
            // `build-llama: building patched: 37% (123 of 330)`, whenever the percentage moves
            const p = /^build-llama: building (\w+): (\d+)%(?: \((.+)\))?$/.exec(line);
            if (p) emit({ kind: 'engine-build', variant: p[1]!, progress: Number(p[2]) / 100, ...(p[3] ? { detail: p[3] } : {}) });
            // The long steps' start, and a wait for another build of the same tree, are news even without --verbose.
            else if (/^build-llama: (waiting for another|building \w+ llama\.cpp in|fetching )/.test(line)) emit({ kind: 'info', message: line.slice('build-llama: '.length) });
            else emit({ kind: 'log', rank: 0, node: 'local', stream, line });
          }
        : undefined,
    },
  );
  if (r.exitCode !== 0) {
    throw new ExternalError(`building llama.cpp failed (scripts/build-llama.sh: ${r.meaning})`, {
      command: r.command,
      exitCode: r.exitCode,
      signal: r.signal,
      stderrTail: r.stderrTail.slice(-15).join('\n'),
    });
  }
  return r.stdout;
}

/** The patched llama-server `up` and `node` run (built from the pin on first use). */
export async function patchedLlamaServer(emit: Emit, signal?: AbortSignal): Promise<string> {
  emit({ kind: 'info', message: 'building (or reusing) the patched llama-server: scripts/build-llama.sh --patched-only' });
  const dir = /^patched=(.+)$/m.exec(await runBuild(['--patched-only'], { emit, signal }))?.[1];
  if (!dir) throw new ExternalError('scripts/build-llama.sh --patched-only printed no patched=<dir> line');
  return join(dir, 'llama-server');
}

/** Both builds (the bench compares them). */
export async function buildDirs(signal?: AbortSignal): Promise<BinDirs> {
  const dirs = parseBuildOutput(await runBuild([], { signal }));
  if (!dirs) throw new ExternalError('scripts/build-llama.sh printed no patched=<dir> and stock=<dir> lines');
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
