// Waits until a started process is ready by its probe, failing early (with its stderr) if it exits first.
import net from 'node:net';
import { ExternalError, UserError } from '../errors.js';
import { delay } from '../process/kill-group.js';
import type { ManagedProcess } from '../process/managed-process.js';
import type { ProcessOutcome } from '../process/process-spec.js';
import type { ReadyProbe } from './launch-plan.js';

const POLL_MS = 25;

export async function httpHealthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

export function tcpAccepting(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(2000, () => done(false));
  });
}

/** `command`: what to show as the command, when the process ran it through ssh and the remote wrapper. */
export function exitError(o: ProcessOutcome, what: string, command = o.command): ExternalError {
  return new ExternalError(`${o.label} ${what}: ${o.meaning}`, {
    command,
    exitCode: o.exitCode,
    signal: o.signal,
    stderrTail: o.stderrTail.slice(-15).join('\n'),
  });
}

/**
 * Resolves when `probe` passes. `lineSeen` reports whether a stderr line matched (the runner watches lines).
 * Rejects when the process exits first, on timeout (with the stderr tail) or when `signal` aborts.
 */
export async function waitReady(
  p: ManagedProcess,
  probe: ReadyProbe,
  lineSeen: () => boolean,
  opts: { timeoutMs: number; signal?: AbortSignal; command?: string; nodeListening?: (port: number) => Promise<boolean> },
): Promise<void> {
  const command = opts.command ?? [p.spec.command, ...p.spec.args].join(' ');
  let outcome: ProcessOutcome | undefined;
  void p.done.then((o) => (outcome = o));
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) throw new UserError('bench interrupted');
    if (outcome) throw exitError(outcome, 'exited before it was ready', command);
    const ok =
      probe.kind === 'stderr-line'
        ? lineSeen()
        : probe.kind === 'http-health'
          ? await httpHealthy(probe.port)
          : probe.kind === 'node-listening'
            ? await (opts.nodeListening ?? tcpAccepting)(probe.port)
            : await tcpAccepting(probe.port, probe.host);
    if (ok) return;
    if (Date.now() > deadline) {
      throw new ExternalError(`${p.spec.label} was not ready after ${Math.round(opts.timeoutMs / 1000)} s`, {
        command,
        stderrTail: p.tail.last().slice(-15).join('\n'),
      });
    }
    await delay(POLL_MS, opts.signal);
  }
}
