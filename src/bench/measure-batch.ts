// One measured request batch: `prompts.length` concurrent streaming requests, with the links' byte counters
// read at the start, when every request has its first token, and at the end.
import { performance } from 'node:perf_hooks';
import type { Sample } from './bench-result.js';
import { streamCompletion } from './completion-client.js';
import type { LinkCounter } from './link-counter.js';
import { sum } from './stats.js';
import { decodePhase, requestDecodeTps, tokensAfter } from './stream-timing.js';

/** NaN without counters (real links) or when one cannot tell: the bytes are not measured, which is not zero. */
export async function linkBytes(links: readonly LinkCounter[] | undefined): Promise<number> {
  if (!links) return Number.NaN;
  const counts = await Promise.all(links.map((l) => l.snapshot()));
  return sum(counts.map((c) => c.forwardBytes + c.backwardBytes));
}

export async function measureBatch(
  port: number,
  prompts: readonly (readonly number[])[],
  nPredict: number,
  logitBias: readonly (readonly [number, false])[],
  links: readonly LinkCounter[] | undefined,
  signal?: AbortSignal,
): Promise<Sample> {
  const b0 = await linkBytes(links);
  let firsts = 0;
  // Started at the last first token. The kernel's counters are read some ms later while decode goes on: the reading
  // is placed midway through ss's run, and the decode bytes are paid by the tokens that arrived after it.
  let b1: Promise<{ bytes: number; at: number }> | undefined;
  const results = await Promise.all(
    prompts.map((prompt) =>
      streamCompletion(
        port,
        { prompt, nPredict, logitBias },
        {
          signal,
          onFirstToken: () => {
            if (++firsts === prompts.length) {
              const asked = performance.now();
              b1 = linkBytes(links).then((bytes) => ({ bytes, at: (asked + performance.now()) / 2 }));
            }
          },
        },
      ),
    ),
  );
  const b2 = await linkBytes(links);
  const r1 = b1 ? await b1 : { bytes: b2, at: Number.POSITIVE_INFINITY };
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
    prefillBytes: r1.bytes - b0,
    decodeBytes: b2 - r1.bytes,
    decodeBytesTokens: tokensAfter(results.map((r) => r.trace), r1.at),
  };
}
