// Decode rates from streamed requests on the client's clock: each request's own, and all streams' together over the
// decode phase. Pure: the completion client records the traces, these functions read them.

/** One streamed request: after each frame that brought tokens, when it arrived and how many tokens the request had. */
export interface StreamTrace {
  /** performance.now() milliseconds, cumulative generated tokens; both increasing. */
  readonly arrivals: readonly { readonly at: number; readonly tokens: number }[];
}

/**
 * One request's decode tok/s: the tokens it received after its first frame, over the time from its first frame to
 * its last. NaN when it got fewer than two frames (nothing decoded after the first token).
 */
export function requestDecodeTps(t: StreamTrace): number {
  const first = t.arrivals[0];
  const last = t.arrivals.at(-1);
  if (!first || !last || last.tokens <= first.tokens || !(last.at > first.at)) return Number.NaN;
  return (last.tokens - first.tokens) / ((last.at - first.at) / 1000);
}

/** Tokens all streams received after `at` (performance.now() ms). */
export function tokensAfter(traces: readonly StreamTrace[], at: number): number {
  return traces.reduce((n, t) => n + (t.arrivals.at(-1)?.tokens ?? 0) - (t.arrivals.filter((a) => a.at <= at).at(-1)?.tokens ?? 0), 0);
}

export interface DecodePhase {
  /** From the moment every request has its first token (all prompts processed) to the last request's last token. */
  readonly windowMs: number;
  /** Tokens all streams received in that window. */
  readonly tokens: number;
  /** tokens / window, in tok/s: the aggregate decode rate (NaN for an empty window). */
  readonly tps: number;
}

/**
 * The aggregate decode rate of concurrent requests: all streams' tokens over the wall time of the decode phase, which
 * starts once the last request has its first token (so no prefill is inside it) and ends with the last token of all.
 * With one request it equals requestDecodeTps.
 */
export function decodePhase(traces: readonly StreamTrace[]): DecodePhase {
  const none = { windowMs: Number.NaN, tokens: 0, tps: Number.NaN };
  if (traces.length === 0 || traces.some((t) => t.arrivals.length === 0)) return none;
  const start = Math.max(...traces.map((t) => t.arrivals[0]!.at));
  const end = Math.max(...traces.map((t) => t.arrivals.at(-1)!.at));
  // Each stream's count when the phase starts: its last frame at or before then (its first frame is, by construction).
  const before = (t: StreamTrace) => t.arrivals.filter((a) => a.at <= start).at(-1)!.tokens;
  const tokens = traces.reduce((n, t) => n + t.arrivals.at(-1)!.tokens - before(t), 0);
  const windowMs = end - start;
  return { windowMs, tokens, tps: windowMs > 0 && tokens > 0 ? tokens / (windowMs / 1000) : Number.NaN };
}
