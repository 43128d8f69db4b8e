// Puts a patched llama-server on a node: reuse the cached one, copy this machine's build, or ship the source and build it.
import { createReadStream } from 'node:fs';
import { ExternalError, UserError } from '../errors.js';
import { startWrapped } from '../process/wrapped-process.js';
import type { Transport } from '../ssh/transport.js';
import { buildProgress } from './build-progress.js';
import { sourceTar } from './local-files.js';
import type { BinaryStep } from './provision-plan.js';
import { buildArgv, installBinaryArgv, resetDirArgv } from './remote-scripts.js';
import { uploadFailure } from './remote-slice.js';

export interface BinaryOptions {
  cmakeFlags: readonly string[];
  signal?: AbortSignal;
  wrap?: (argv: string[]) => string[];
  onUpload?: (sent: number, total: number) => void;
  onBuild?: (fraction: number) => void;
  onLine?: (line: string) => void;
  /** Pidfile directory on the node for the build's wrapper (default: $TMPDIR/llama-relay-$UID there). */
  runDir?: string;
}

/** Returns the llama-server path on the node. */
export async function ensureBinary(t: Transport, step: BinaryStep, o: BinaryOptions): Promise<string> {
  const wrap = o.wrap ?? ((a: string[]) => a);
  const sig = o.signal ? { signal: o.signal } : {};
  if (step.kind === 'reuse') return step.path;
  if (step.kind === 'copy') {
    const incoming = `${step.to}.incoming`;
    await t
      .upload(createReadStream(step.from), incoming, { size: step.bytes, onProgress: (n) => o.onUpload?.(n, step.bytes), ...sig })
      .catch((err: Error) => rethrowUpload(t.name, incoming, err));
    await t.exec(wrap(installBinaryArgv(incoming, step.to)), sig);
    return step.to;
  }
  await t.exec(wrap(resetDirArgv(step.remoteSource)), sig);
  const size = step.sourceBytes;
  await t
    .uploadTar(sourceTar(step.sourceDir), step.remoteSource, { onProgress: (n) => o.onUpload?.(n, size), ...sig })
    .catch((err: Error) => rethrowUpload(t.name, `${step.remoteSource}/`, err));
  // The shipped tree has no .git: name the pinned commit, so `llama-server --version` on the node says what it is.
  const cmakeFlags = step.commit ? [...o.cmakeFlags, `-DLLAMA_BUILD_COMMIT=${step.commit}`] : o.cmakeFlags;
  const argv = buildArgv({ sourceDir: step.remoteSource, buildDir: step.buildDir, out: step.to, jobs: step.jobs, cmakeFlags });
  // Under the remote wrapper: if the launcher stops or the link drops, the whole build's process group goes too
  // (sshd leaves pty-less commands running), and a stale build of the same key is stopped at the next start.
  const p = startWrapped(
    t,
    { label: `build of llama-server on ${t.name}`, argv: wrap(argv), wrapper: { name: `build-${step.to.split('/').at(-2)}`, heartbeatSeconds: 10, runDir: o.runDir } },
    {
      ...sig,
      tailLines: 40,
      onLine: (line) => {
        o.onLine?.(line);
        const f = buildProgress(line);
        if (f !== undefined) o.onBuild?.(f);
      },
    },
  );
  const r = await p.done;
  if (r.isCanceled) throw new UserError(`node ${t.name}: the build of llama-server was stopped`, ['run the command again: the build continues where it stopped']);
  if (r.exitCode !== 0) {
    throw new ExternalError(`node ${t.name}: building llama-server from the shipped source failed (${r.meaning})`, {
      command: `cmake build in ${step.buildDir}`,
      exitCode: r.exitCode,
      signal: r.signal,
      stderrTail: r.stderrTail.slice(-20).join('\n'),
    });
  }
  return step.to;
}

function rethrowUpload(node: string, path: string, err: Error): never {
  const detail = err instanceof ExternalError ? (err.detail.stderrTail ?? '') : err.message;
  if (/No space left on device|Disk quota exceeded/i.test(detail)) throw uploadFailure(node, path, detail.split('\n'), '');
  throw err;
}
