// The one place that starts child processes: own process group, abortable, escalating stop, stderr tail, line events.
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { describeExit } from './exit-meaning.js';
import { delay, settlesWithin, signalGroup, terminateGroup } from './kill-group.js';
import { LineSplitter } from './line-splitter.js';
import type { ProcessOutcome, ProcessSpec } from './process-spec.js';
import { TailBuffer } from './tail-buffer.js';

export type StreamName = 'stdout' | 'stderr';

export interface StartOptions {
  /** Aborting stops the process (graceful, then SIGKILL) and marks it canceled. */
  signal?: AbortSignal;
  /** How long a graceful stop may take before SIGKILL. */
  forceKillAfterMs?: number;
  onLine?: (line: string, stream: StreamName) => void;
  tailLines?: number;
  /** Piped into stdin (uploads); the pipe ends when the stream does. */
  stdinFrom?: Readable;
}

export interface ManagedProcess {
  readonly spec: ProcessSpec;
  readonly pid: number | undefined;
  readonly tail: TailBuffer;
  /** Settles once when the process has exited; never rejects. */
  readonly done: Promise<ProcessOutcome>;
  write(text: string): void;
  closeStdin(): void;
  /** Graceful stop (close stdin or SIGTERM to the group), then SIGKILL after the grace. */
  stop(): Promise<ProcessOutcome>;
}

export function startProcess(spec: ProcessSpec, options: StartOptions = {}): ManagedProcess {
  const forceKillAfterMs = options.forceKillAfterMs ?? 5000;
  const tail = new TailBuffer(options.tailLines ?? 40);
  const child = execa(spec.command, [...spec.args], {
    env: spec.env ? { ...process.env, ...spec.env } : process.env,
    extendEnv: false,
    cwd: spec.cwd,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    // Own process group, so stop() reaches every descendant and a terminal Ctrl-C goes only to us.
    detached: true,
    cleanup: false,
    encoding: 'utf8',
  });
  child.stdin?.on('error', () => undefined); // A dead child's stdin raises EPIPE; the exit tells the story.

  const flags = { isTerminated: false, isCanceled: false, isForcefullyTerminated: false };
  for (const stream of ['stdout', 'stderr'] as const) {
    const splitter = new LineSplitter((line) => {
      if (stream === 'stderr') tail.push(line);
      options.onLine?.(line, stream);
    });
    child[stream]?.on('data', (chunk: Buffer | string) => splitter.push(chunk));
    child[stream]?.on('end', () => splitter.end());
  }

  // Flags are read when the exit is observed, so stop() must set them before the kill lands.
  const done: Promise<ProcessOutcome> = child.then((result) => {
    const spawnError = result.failed && result.exitCode === undefined && !result.signal ? result.originalMessage ?? result.shortMessage : undefined;
    const exitCode = result.exitCode ?? (spawnError?.includes('ENOENT') ? 127 : spawnError ? 126 : null);
    const signal = result.signal ?? null;
    return {
      label: spec.label,
      command: [spec.command, ...spec.args].join(' '),
      pid: child.pid,
      exitCode,
      signal,
      meaning: describeExit(exitCode, signal),
      ...flags,
      spawnError,
      stderrTail: tail.last(),
    };
  });

  if (spec.input !== undefined) child.stdin?.write(spec.input);
  if (options.stdinFrom && child.stdin) options.stdinFrom.pipe(child.stdin);
  else if (!spec.keepStdinOpen) child.stdin?.end();

  let stopping: Promise<ProcessOutcome> | undefined;
  const stop = (): Promise<ProcessOutcome> => {
    stopping ??= (async () => {
      flags.isTerminated = true;
      const pid = child.pid;
      if (pid === undefined) return done;
      if (spec.stopByClosingStdin) {
        child.stdin?.end();
        if (await settlesWithin(done, forceKillAfterMs)) {
          signalGroup(pid, 'SIGKILL', false); // Sweep anything the wrapper left in our group.
          return done;
        }
      }
      await terminateGroup(pid, done, forceKillAfterMs, () => (flags.isForcefullyTerminated = true));
      return done;
    })();
    return stopping;
  };

  if (options.signal) {
    const onAbort = () => {
      flags.isCanceled = true;
      void stop();
    };
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener('abort', onAbort, { once: true });
    void done.then(() => options.signal?.removeEventListener('abort', onAbort));
  }

  return {
    spec,
    pid: child.pid,
    tail,
    done,
    write: (text) => {
      if (child.stdin && !child.stdin.writableEnded) child.stdin.write(text);
    },
    closeStdin: () => child.stdin?.end(),
    stop,
  };
}

/** Runs a short command to completion and collects its stdout. */
export async function runToCompletion(
  spec: ProcessSpec,
  options: StartOptions & { timeoutMs?: number } = {},
): Promise<ProcessOutcome & { stdout: string }> {
  const out: string[] = [];
  const p = startProcess(spec, {
    ...options,
    onLine: (line, stream) => {
      if (stream === 'stdout') out.push(line);
      options.onLine?.(line, stream);
    },
  });
  if (options.timeoutMs !== undefined) {
    const ac = new AbortController();
    void delay(options.timeoutMs, ac.signal).then(() => {
      if (!ac.signal.aborted) void p.stop();
    });
    const outcome = await p.done;
    ac.abort();
    return { ...outcome, stdout: out.join('\n') };
  }
  return { ...(await p.done), stdout: out.join('\n') };
}
