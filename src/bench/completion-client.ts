// Streams one /completion request from a llama-server head and times it: first token on the client's clock,
// prompt rate from the server's own `timings`, and every token's arrival (for the decode rates, stream-timing.ts).
// The stream is read by the runtime's one SSE reader.
import { performance } from 'node:perf_hooks';
import { freshFetch } from '../runtime/fresh-fetch.js';
import { ExternalError } from '../errors.js';
import { sseFields } from '../runtime/sse.js';
import type { StreamTrace } from './stream-timing.js';

export interface CompletionRequest {
  readonly prompt: readonly number[];
  readonly nPredict: number;
  readonly logitBias?: readonly (readonly [number, false])[];
}

export interface StreamedCompletion {
  readonly ttftMs: number;
  /** performance.now() when the first token arrived. */
  readonly firstTokenAt: number;
  readonly totalMs: number;
  readonly promptN: number;
  readonly promptPerSecond: number;
  readonly predictedN: number;
  readonly predictedPerSecond: number;
  /** When each frame with new tokens arrived, with the request's token count then. */
  readonly trace: StreamTrace;
}

interface Timings {
  prompt_n: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_per_second: number;
}

interface Frame {
  content?: string;
  stop?: boolean;
  /** Tokens generated so far (llama-server's n_decoded): a frame held back for an incomplete UTF-8 character carries two. */
  tokens_predicted?: number;
  timings?: Timings;
  error?: { message?: string } | string;
}

export async function tokenize(port: number, content: string, signal?: AbortSignal): Promise<number[]> {
  const r = await freshFetch(`http://127.0.0.1:${port}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content, add_special: false }),
    signal,
  });
  if (!r.ok) throw new ExternalError(`/tokenize on port ${port} answered HTTP ${r.status}: ${await r.text()}`);
  return ((await r.json()) as { tokens: number[] }).tokens;
}

export async function streamCompletion(
  port: number,
  req: CompletionRequest,
  opts: { signal?: AbortSignal; onFirstToken?: (at: number) => void; onTokens?: (tokens: number, at: number) => void } = {},
): Promise<StreamedCompletion> {
  const t0 = performance.now();
  const r = await freshFetch(`http://127.0.0.1:${port}/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: req.prompt,
      n_predict: req.nPredict,
      stream: true,
      cache_prompt: false,
      ignore_eos: true,
      temperature: 0,
      ...(req.logitBias?.length ? { logit_bias: req.logitBias } : {}),
    }),
    signal: opts.signal,
  });
  if (!r.ok || !r.body) throw new ExternalError(`/completion on port ${port} answered HTTP ${r.status}: ${await r.text()}`);
  let firstTokenAt: number | undefined;
  let timings: Timings | undefined;
  const arrivals: { at: number; tokens: number }[] = [];
  const onFrame = (json: string) => {
    const at = performance.now();
    const f = JSON.parse(json) as Frame;
    if (f.error) throw new ExternalError(`/completion stream on port ${port} failed: ${typeof f.error === 'string' ? f.error : f.error.message}`);
    if (firstTokenAt === undefined && !f.stop) {
      firstTokenAt = at;
      opts.onFirstToken?.(firstTokenAt);
    }
    if (f.timings && f.stop) timings = f.timings;
    const had = arrivals.at(-1)?.tokens ?? 0;
    const tokens = f.stop ? (f.timings?.predicted_n ?? had) : (f.tokens_predicted ?? had + 1);
    if (tokens > had) {
      arrivals.push({ at, tokens });
      opts.onTokens?.(tokens, at);
    }
  };
  for await (const f of sseFields(r.body as AsyncIterable<Uint8Array>)) onFrame(f.value);
  if (!timings) throw new ExternalError(`/completion stream on port ${port} ended without timings`);
  const end = performance.now();
  return {
    ttftMs: (firstTokenAt ?? end) - t0,
    firstTokenAt: firstTokenAt ?? end,
    totalMs: end - t0,
    promptN: timings.prompt_n,
    promptPerSecond: timings.prompt_per_second,
    predictedN: timings.predicted_n,
    predictedPerSecond: timings.predicted_per_second,
    trace: { arrivals },
  };
}
