// Pushes one rank's slice to a node: resumable (append after checking the partial upload's digest), verified by
// sha256 on the node, refused and re-sent when it does not match. Runs through the Transport and the process module.
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { ExternalError, UserError } from '../errors.js';
import { startProcess } from '../process/managed-process.js';
import type { Transport } from '../ssh/transport.js';
import { formatBytes } from '../plan/size.js';
import type { LocalSlice } from './local-files.js';
import { sha256File } from './local-files.js';
import { appendArgv, commitArgv, parseSliceState, remoteDigestArgv, removeArgv, sliceStateArgv } from './remote-scripts.js';
import { resumeStep } from './resume.js';

export interface PushOptions {
  signal?: AbortSignal;
  onProgress?: (sentOfTotal: number, total: number) => void;
  onInfo?: (message: string) => void;
  /** Wraps each command (e.g. `env PATH=…`). */
  wrap?: (argv: string[]) => string[];
  /** The bytes from `start` on (tests substitute a slow or corrupting stream). */
  source?: (start: number, attempt: number) => Readable;
}

export interface PushResult {
  /** Bytes sent over the wire in this call. */
  sent: number;
  /** Where the (first) attempt started: > 0 when an interrupted upload was resumed. */
  resumedFrom: number;
  /** Uploads whose digest did not match and were discarded. */
  refused: number;
}

export async function pushSlice(t: Transport, slice: LocalSlice, remotePath: string, o: PushOptions = {}): Promise<PushResult> {
  const wrap = o.wrap ?? ((a: string[]) => a);
  const exec = async (argv: string[]) => (await t.exec(wrap(argv), o.signal ? { signal: o.signal } : {})).stdout.trim();
  const part = `${remotePath}.part`;
  const step = resumeStep(parseSliceState(await exec(sliceStateArgv(remotePath))), slice.bytes);
  if (step.kind === 'verify-final') {
    if ((await exec(remoteDigestArgv(remotePath))) === slice.digest) {
      o.onProgress?.(slice.bytes, slice.bytes);
      return { sent: 0, resumedFrom: slice.bytes, refused: 0 };
    }
    o.onInfo?.(`node ${t.name}: ${remotePath} does not match its digest; sending it again`);
    await exec(removeArgv(remotePath));
  }
  let start = 0;
  if (step.kind === 'check-prefix') {
    const [theirs, ours] = await Promise.all([exec(remoteDigestArgv(part, step.bytes)), sha256File(slice.path, step.bytes)]);
    if (theirs === ours) {
      start = step.bytes;
      o.onInfo?.(`node ${t.name}: resuming the upload of ${remotePath} at ${formatBytes(start)} of ${formatBytes(slice.bytes)}`);
    } else {
      o.onInfo?.(`node ${t.name}: the partial upload ${part} does not match; sending it from the start`);
    }
  }
  const result: PushResult = { sent: 0, resumedFrom: start, refused: 0 };
  for (let attempt = 0; ; attempt++) {
    result.sent += await appendFrom(t, slice, part, start, attempt, o, wrap);
    const got = await exec(remoteDigestArgv(part));
    if (got === slice.digest) break;
    await exec(removeArgv(part));
    result.refused++;
    if (attempt >= 1) {
      throw new ExternalError(`node ${t.name}: the uploaded slice ${remotePath} failed its sha256 check twice (got ${got}, want ${slice.digest})`, {
        stderrTail: 'the connection or the disk on the node corrupts data; check the node',
      });
    }
    o.onInfo?.(`node ${t.name}: refused ${remotePath}: sha256 ${got.slice(0, 12)}… is not ${slice.digest.slice(0, 12)}…; sending it again`);
    start = 0;
  }
  await exec(commitArgv(part, remotePath));
  return result;
}

async function appendFrom(t: Transport, slice: LocalSlice, part: string, start: number, attempt: number, o: PushOptions, wrap: (a: string[]) => string[]): Promise<number> {
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      o.onProgress?.(start + sent, slice.bytes);
      cb(null, chunk);
    },
  });
  const source = o.source ? o.source(start, attempt) : createReadStream(slice.path, { start });
  const p = startProcess(
    { ...t.commandSpec(wrap(appendArgv(part, start > 0)), `upload of ${part} to ${t.name}`), keepStdinOpen: true },
    { stdinFrom: source.pipe(counter), signal: o.signal },
  );
  const out = await p.done;
  if (out.exitCode !== 0) {
    source.destroy();
    throw uploadFailure(t.name, part, out.stderrTail, out.meaning, out.isCanceled);
  }
  return sent;
}

/** A full disk becomes a UserError naming the node; anything else an ExternalError with the stderr tail. */
export function uploadFailure(node: string, path: string, stderr: readonly string[], meaning: string, canceled = false): Error {
  if (canceled) return new UserError(`node ${node}: the upload of ${path} was stopped`, ['run the command again: the upload resumes where it stopped']);
  if (stderr.some((l) => /No space left on device|Disk quota exceeded/i.test(l))) {
    const dir = path.slice(0, path.lastIndexOf('/'));
    return new UserError(`node ${node}: the disk holding ${dir} is full; the upload of ${path.slice(dir.length + 1)} stopped`, [
      `free space on ${node} in ${dir} (df -h ${dir}), then run the command again: the upload resumes`,
      `or set LLAMA_RELAY_CACHE on ${node} to a directory on a bigger disk`,
    ]);
  }
  return new ExternalError(`node ${node}: uploading ${path} failed (${meaning})`, { stderrTail: stderr.slice(-10).join('\n') });
}
