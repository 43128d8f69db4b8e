// When a started process is ready: the one readiness type, the one ready line, and the one wait that polls it and
// stops early when the process exits, the deadline passes or the caller aborts. Callers turn the outcome into their error.
import net from 'node:net';
import { ExternalError } from '../errors.js';
import { delay } from '../process/kill-group.js';
import type { ProcessOutcome } from '../process/process-spec.js';
import { headHealth } from './head-client.js';
import { hostPort } from './host-port.js';

/** How the runtime knows a process finished loading. */
export type Readiness =
  /** A chain worker: it prints STAGE_READY_LINE on stderr once loaded and listening. */
  | { readonly kind: 'stage-ready-line'; readonly layers: readonly [number, number] }
  /** A server with HTTP (a chain's head, stock or RPC head): /health answers 200. */
  | { readonly kind: 'http-health'; readonly host: string; readonly port: number }
  /** Something accepts connections at host:port (ggml-rpc-server on this machine). */
  | { readonly kind: 'tcp'; readonly port: number; readonly host?: string }
  /** A port on its node's loopback, which this machine cannot dial when the node is remote: asked on the node. */
  | { readonly kind: 'node-listening'; readonly port: number };

/**
 * The line a worker prints on stderr once loaded and listening. Not anchored: the engine's log thread writes each
 * entry's "0.01.234.567 I " prefix and its text in separate writes, so the ready line (one write of its own from the
 * main thread) can land between them, after a prefix on the same line.
 */
export const STAGE_READY_LINE = /llama-relay: stage ready layers=(\d+):(\d+) listen=(\S+)/;

/** Watches a process's output lines for the stage ready line (only when its readiness asks for it). */
export function readyLineWatch(r: Readiness): { onLine: (line: string) => void; seen: () => boolean } {
  let seen = false;
  return {
    onLine: (line) => {
      if (r.kind === 'stage-ready-line' && STAGE_READY_LINE.test(line)) seen = true;
    },
    seen: () => seen,
  };
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

export type ReadyOutcome =
  | { kind: 'ready' }
  | { kind: 'exited'; outcome: ProcessOutcome }
  /** lastHealth: what /health said last, for an HTTP server. */
  | { kind: 'timeout'; lastHealth: string }
  | { kind: 'aborted' };

export interface ReadyWatch {
  /** Whether the stage ready line was seen (readyLineWatch). */
  lineSeen: () => boolean;
  /** Where this machine reaches the server's HTTP (an ssh forward for a remote head); default: the readiness host:port. */
  healthUrl?: () => string | undefined;
  /** Asks the node whether something listens on a port of its loopback. */
  nodeListening?: (port: number) => Promise<boolean>;
  timeoutMs: number;
  pollMs?: number;
  signal?: AbortSignal;
}

/** Polls `r` until it passes, the process ends (`done` settles), the deadline passes or `signal` aborts. */
export async function waitReady(done: Promise<ProcessOutcome>, r: Readiness, w: ReadyWatch): Promise<ReadyOutcome> {
  let exited: ProcessOutcome | undefined;
  void done.then((o) => (exited = o));
  const deadline = Date.now() + w.timeoutMs;
  let lastHealth = '';
  const check = async (): Promise<boolean> => {
    switch (r.kind) {
      case 'stage-ready-line':
        return w.lineSeen();
      case 'http-health': {
        const url = w.healthUrl ? w.healthUrl() : `http://${hostPort(r.host, r.port)}`;
        if (!url) return false;
        const h = await headHealth(url);
        if (!h.ok) lastHealth = h.message;
        return h.ok;
      }
      case 'node-listening':
        return (w.nodeListening ?? tcpAccepting)(r.port);
      case 'tcp':
        return tcpAccepting(r.port, r.host);
    }
  };
  for (;;) {
    if (w.signal?.aborted) return { kind: 'aborted' };
    if (exited) return { kind: 'exited', outcome: exited };
    if (await check()) return { kind: 'ready' };
    if (Date.now() > deadline) return { kind: 'timeout', lastHealth };
    await delay(w.pollMs ?? 100, w.signal);
  }
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
