// Pure reducer from RelayEvents to what the screen shows; the store and components never interpret events themselves.
import type { NodePhase, RelayEvent } from '../events/events.js';

export interface RankRow {
  rank: number;
  node: string;
  role: 'head' | 'worker';
  layers: readonly [number, number];
  phase: NodePhase;
  progress?: number;
  detail?: string;
  rssBytes?: number;
  hopMs?: number;
}

export interface Failure {
  rank: number;
  node: string;
  meaning: string;
  lastLines: readonly string[];
  restarting: boolean;
}

export interface ChatTurn {
  role: 'user' | 'assistant';
  text: string;
  /** The answer broke off (it is not part of the history). */
  failed?: boolean;
}

export interface ChatState {
  /** The last turns, oldest first; the last assistant turn grows while `busy`. */
  turns: readonly ChatTurn[];
  /** An answer is streaming. */
  busy: boolean;
  /** The prompt takes input (false once the session ended). */
  open: boolean;
}

export interface ClusterState {
  rows: readonly RankRow[];
  failures: readonly Failure[];
  /** Finished lines (info, errors) for <Static>; only ever appended. */
  finished: readonly { id: number; text: string; tone: 'info' | 'error' }[];
  /** The tail of the token stream. */
  tokens: string;
  tokensPerSecond?: number;
  api?: { url: string; model?: string };
  requests: { total: number; active: number; failed: number };
  /** --interactive only. */
  chat?: ChatState;
  /** The plan's predicted decode (and prefill) and the chain's measured decode, once tokens flowed. */
  speed?: { predictedDecodeTps: number; predictedPrefillTps?: number; measuredDecodeTps?: number; tokens?: number };
  /** The engine being built on this machine (until its build ends). */
  engineBuild?: { variant: string; progress: number; detail?: string };
  /** Requests in flight waiting for a lost rank to come back, while they wait (the head's own words). */
  resuming?: { requests: number; rank?: number; detail: string };
}

export const initialState: ClusterState = { rows: [], failures: [], finished: [], tokens: '', requests: { total: 0, active: 0, failed: 0 } };

const TOKEN_TAIL = 4000;
const CHAT_TURNS = 40;

function updateChat(s: ClusterState, f: (c: ChatState) => ChatState): ClusterState {
  return s.chat ? { ...s, chat: f(s.chat) } : s;
}

function appendToAnswer(c: ChatState, text: string): ChatState {
  const last = c.turns.at(-1);
  if (!c.busy || last?.role !== 'assistant') return c;
  return { ...c, turns: [...c.turns.slice(0, -1), { ...last, text: last.text + text }] };
}

function updateRow(s: ClusterState, rank: number, patch: Partial<RankRow>): ClusterState {
  return { ...s, rows: s.rows.map((r) => (r.rank === rank ? { ...r, ...patch } : r)) };
}

export function reduce(s: ClusterState, e: RelayEvent): ClusterState {
  switch (e.kind) {
    case 'rank-planned': {
      const row: RankRow = { rank: e.rank, node: e.node, role: e.role, layers: e.layers, phase: 'connect' };
      const rows = [...s.rows.filter((r) => r.rank !== e.rank), row].sort((a, b) => a.rank - b.rank);
      return { ...s, rows };
    }
    case 'node-phase': {
      const s2 = updateRow(s, e.rank, { phase: e.phase, progress: e.progress, detail: e.detail });
      // A rank that is up again clears its failure row.
      return e.phase === 'ready' ? { ...s2, failures: s2.failures.filter((f) => f.rank !== e.rank) } : s2;
    }
    case 'engine-build':
      return { ...s, engineBuild: { variant: e.variant, progress: e.progress, detail: e.detail } };
    case 'memory':
      return updateRow(s, e.rank, { rssBytes: e.rssBytes });
    case 'hop-time':
      return updateRow(s, e.rank, { hopMs: e.ms });
    case 'token': {
      const t = s.tokens + e.text;
      return updateChat({ ...s, tokens: t.length > TOKEN_TAIL ? t.slice(-TOKEN_TAIL) : t }, (c) => appendToAnswer(c, e.text));
    }
    case 'chat-ready':
      return { ...s, chat: { turns: [], busy: false, open: true } };
    case 'chat-user':
      return updateChat(s, (c) => ({
        ...c,
        busy: true,
        turns: [...c.turns, { role: 'user' as const, text: e.text }, { role: 'assistant' as const, text: '' }].slice(-CHAT_TURNS),
      }));
    case 'chat-done': {
      const s2 = { ...s, tokensPerSecond: e.tokens / Math.max(e.seconds, 1e-9) };
      return updateChat(s2, (c) => {
        const last = c.turns.at(-1);
        const turns = e.failed && last?.role === 'assistant' ? [...c.turns.slice(0, -1), { ...last, failed: true }] : c.turns;
        return { ...c, busy: false, turns };
      });
    }
    case 'chat-end':
      return updateChat(s, (c) => ({ ...c, busy: false, open: false }));
    case 'generation-done':
      return { ...s, tokensPerSecond: e.tokens / Math.max(e.seconds, 1e-9) };
    case 'api-listening':
      return { ...s, api: { url: e.url, model: e.model } };
    case 'requests':
      return { ...s, requests: { total: e.total, active: e.active, failed: e.failed } };
    case 'rank-exited': {
      const failure: Failure = { rank: e.rank, node: e.node, meaning: e.meaning, lastLines: e.lastLines.slice(-5), restarting: e.restarting };
      const s2 = updateRow(s, e.rank, { phase: 'failed', detail: e.meaning });
      return { ...s2, failures: [...s2.failures.filter((f) => f.rank !== e.rank), failure] };
    }
    case 'rank-moved': {
      const text = `rank ${e.rank} moved from ${e.from} to spare ${e.to} (${e.from} lost for ${e.lostSeconds.toFixed(0)} s)`;
      const s2 = updateRow(s, e.rank, { node: e.to, phase: 'load', detail: `replacing ${e.from}` });
      return { ...s2, failures: s2.failures.filter((f) => f.rank !== e.rank), finished: [...s2.finished, { id: s2.finished.length, text, tone: 'info' }] };
    }
    case 'resume': {
      const { resuming: was, ...rest } = s;
      if (e.phase === 'waiting') return { ...s, resuming: { requests: e.requests ?? 0, ...(e.rank !== undefined ? { rank: e.rank } : {}), detail: e.detail } };
      const after = was?.rank !== undefined ? ` after rank ${was.rank} was lost` : '';
      const line = e.phase === 'resumed'
        ? { text: `${e.detail}${after}`, tone: 'info' as const }
        : { text: `a request in flight failed: ${e.detail}`, tone: 'error' as const };
      return { ...rest, finished: [...s.finished, { id: s.finished.length, ...line }] };
    }
    case 'info':
      return { ...s, finished: [...s.finished, { id: s.finished.length, text: e.message, tone: 'info' }] };
    case 'error': {
      const text = [e.message, ...(e.next ?? []).map((n) => `  - ${n}`)].join('\n');
      return { ...s, finished: [...s.finished, { id: s.finished.length, text, tone: 'error' }] };
    }
    case 'decode-vs-predicted': {
      const { kind: _, ...speed } = e;
      return { ...s, speed: { ...s.speed, ...speed } };
    }
    case 'chain-stats':
    case 'generation-served':
      return s; // for /metrics
    case 'bench-config-start':
    case 'bench-process-ready':
    case 'bench-sample':
    case 'bench-config-done':
    case 'bench-config-failed':
      return s; // bench prints lines, not the TUI
    case 'log':
      return s; // Logs reach the screen only through failure rows; plain/--json renderers show them.
  }
}
