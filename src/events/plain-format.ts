// One plain text line per event, keyed by kind; null means "not shown in plain mode".
import type { EventOf, RelayEvent, RelayEventKind } from './events.js';

const pct = (p?: number) => (p === undefined ? '' : ` ${Math.round(p * 100)}%`);
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;

/** "min-max" of the finite values; "-" when a batch decoded nothing after its first tokens. */
const rateRange = (xs: readonly number[]) => {
  const f = xs.filter(Number.isFinite);
  return f.length ? `${Math.min(...f).toFixed(1)}-${Math.max(...f).toFixed(1)}` : '-';
};

type Formatters = { [K in RelayEventKind]: (e: EventOf<K>, o: { verbose: boolean }) => string | null };

const formatters: Formatters = {
  'rank-planned': (e) => `rank ${e.rank} (${e.role}) on ${e.node}: layers ${e.layers[0]}:${e.layers[1]}`,
  'node-phase': (e) => `rank ${e.rank} on ${e.node}: ${e.phase}${pct(e.progress)}${e.detail ? ` (${e.detail})` : ''}`,
  'engine-build': (e) => `building the ${e.variant} llama-server on this machine:${pct(e.progress)}${e.detail ? ` (${e.detail})` : ''}`,
  memory: (e, o) => (o.verbose ? `rank ${e.rank}: memory ${mib(e.rssBytes)}` : null),
  'hop-time': (e, o) => (o.verbose ? `rank ${e.rank}: hop ${e.ms.toFixed(1)} ms` : null),
  token: () => null, // Tokens go to stdout as raw text, not as status lines.
  'generation-done': (e) => `generated ${e.tokens} tokens in ${e.seconds.toFixed(1)} s (${(e.tokens / Math.max(e.seconds, 1e-9)).toFixed(1)} tok/s)`,
  'chat-ready': () => 'chat: type a message and press Enter; /exit, /quit or the end of input ends the session',
  'chat-user': () => null, // The user typed it; stdout carries only the answers.
  'chat-done': (e) => (e.failed ? 'the answer broke off; the message is not kept in the history' : `answered in ${e.tokens} tokens, ${e.seconds.toFixed(1)} s`),
  'chat-end': (e) => `chat ended (${e.reason === 'exit' ? '/exit' : 'end of input'})`,
  'api-listening': (e) => `API listening on ${e.url}${e.model ? ` (model ${e.model})` : ''}`,
  requests: (e, o) => (o.verbose ? `requests: ${e.total} total, ${e.active} active, ${e.failed} failed` : null),
  'chain-stats': () => null, // /metrics and the hop-time rows show it
  'decode-vs-predicted': (e, o) =>
    e.measuredDecodeTps === undefined
      ? `predicted decode: ${e.predictedDecodeTps.toFixed(1)} tok/s${e.predictedPrefillTps !== undefined ? `, prefill ${e.predictedPrefillTps.toFixed(1)} tok/s` : ''} (from the speeds measured on these nodes)`
      : o.verbose
        ? `decode: measured ${e.measuredDecodeTps.toFixed(1)} tok/s over ${e.tokens ?? 0} tokens (chain timing), predicted ${e.predictedDecodeTps.toFixed(1)} tok/s`
        : null,
  'generation-served': (e, o) => (o.verbose ? `served ${e.api}: ${e.promptTokens} tokens in, ${e.outputTokens} out` : null),
  log: (e, o) => (o.verbose ? `[rank ${e.rank} ${e.node}] ${e.line}` : null),
  'rank-exited': (e) =>
    [
      `rank ${e.rank} on ${e.node} exited: ${e.meaning}${e.restarting ? '; restarting' : ''}`,
      ...e.lastLines.map((l) => `  | ${l}`),
    ].join('\n'),
  resume: (e) => (e.phase === 'failed' ? `error: a request in flight failed: ${e.detail}` : e.detail),
  'rank-moved': (e) =>
    `rank ${e.rank} (layers ${e.layers[0]}:${e.layers[1]}) moved from ${e.from} to spare ${e.to}: ${e.from} was lost for ${e.lostSeconds.toFixed(0)} s` +
    (e.restarted.length ? `; restarting rank${e.restarted.length > 1 ? 's' : ''} ${e.restarted.join(', ')} to dial it` : ''),
  'bench-config-start': (e) => `[${e.id}] ${e.description}${e.round && e.round.of > 1 ? ` (round ${e.round.index + 1}/${e.round.of})` : ''}`,
  'bench-process-ready': (e) => `[${e.id}] ${e.label} ready in ${(e.loadMs / 1000).toFixed(2)} s`,
  'bench-sample': (e) =>
    `[${e.id}] prompt ${e.promptTokens} x${e.parallel} #${e.repeat + 1}: ttft max ${Math.max(...e.sample.requestTtftMs).toFixed(1)} ms, ` +
    `prefill ${e.sample.prefillTps.toFixed(1)} tok/s, decode ${e.sample.aggregateDecodeTps.toFixed(1)} tok/s aggregate, ` +
    `${rateRange(e.sample.requestDecodeTps)} tok/s per request`,
  'bench-config-done': (e) => `[${e.id}] done`,
  'bench-config-failed': (e) => `[${e.id}] FAILED: ${e.message}`,
  info: (e) => e.message,
  error: (e) => [`error: ${e.message}`, ...(e.next ?? []).map((s) => `  - ${s}`)].join('\n'),
};

export function formatPlain(e: RelayEvent, o: { verbose?: boolean } = {}): string | null {
  const f = formatters[e.kind] as (e: RelayEvent, o: { verbose: boolean }) => string | null;
  return f(e, { verbose: o.verbose ?? false });
}

export function formatJson(e: RelayEvent, now = Date.now()): string {
  return JSON.stringify({ time: new Date(now).toISOString(), ...e });
}
