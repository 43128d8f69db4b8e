// One measured request batch: `prompts.length` concurrent streaming requests, with the relays' byte counters
// read at the start, when every request has its first token, and at the end.
import type { Sample } from './bench-result.js';
import { streamCompletion } from './completion-client.js';
import type { DelayRelay } from './delay-relay.js';
import { sum } from './stats.js';
import { decodePhase, requestDecodeTps } from './stream-timing.js';

/** NaN without relays (real links): the bytes are not measured, which is not zero. */
export function relayBytes(relays: readonly DelayRelay[] | undefined): number {
  if (!relays) return Number.NaN;
  return sum(relays.map((r) => {
    const c = r.snapshot();
    return c.forwardBytes + c.backwardBytes;
  }));
}

export async function measureBatch(
  port: number,
  prompts: readonly (readonly number[])[],
  nPredict: number,
  logitBias: readonly (readonly [number, false])[],
  relays: readonly DelayRelay[] | undefined,
  signal?: AbortSignal,
): Promise<Sample> {
  const b0 = relayBytes(relays);
  let firsts = 0;
  let b1: number | undefined;
  const results = await Promise.all(
    prompts.map((prompt) =>
      streamCompletion(
        port,
        { prompt, nPredict, logitBias },
        {
          signal,
          onFirstToken: () => {
            if (++firsts === prompts.length) b1 = relayBytes(relays);
          },
        },
      ),
    ),
  );
  const b2 = relayBytes(relays);
  const phase = decodePhase(results.map((r) => r.trace));
  return {
    requestTtftMs: results.map((r) => r.ttftMs),
    prefillTps: sum(results.map((r) => r.promptPerSecond)),
    aggregateDecodeTps: phase.tps,
    decodeWindowMs: phase.windowMs,
    decodeWindowTokens: phase.tokens,
    requestDecodeTps: results.map((r) => requestDecodeTps(r.trace)),
    promptTokens: sum(results.map((r) => r.promptN)),
    generatedTokens: sum(results.map((r) => r.predictedN)),
    prefillBytes: (b1 ?? b2) - b0,
    decodeBytes: b2 - (b1 ?? b2),
  };
}
