// Repeats of one (prompt length, parallel) point summarized: TTFT percentiles over every request, the decode rates
// (aggregate and per request) and prefill as medians with their spread over repeats, per-token costs. Pure.
import type { Measurement, Sample } from './bench-result.js';
import { median, percentile, spread, sum } from './stats.js';

export function summarize(promptTokens: number, parallel: number, samples: readonly Sample[]): Measurement {
  const perRequestDecodeTps = spread(samples.map((s) => median(s.requestDecodeTps.filter(Number.isFinite))));
  const ttfts = samples.flatMap((s) => s.requestTtftMs);
  // Decode bytes belong to the tokens after the first-token reading (older samples: after each stream's first token).
  const paying = sum(samples.map((s) => s.decodeBytesTokens ?? Math.max(0, s.generatedTokens - parallel)));
  // No token after the reading (decode ended before the kernel was read): the decode bytes are not measured.
  const unpaid = paying === 0 && samples.some((s) => s.decodeBytesTokens !== undefined);
  return {
    promptTokens,
    parallel,
    samples,
    ttftP50Ms: percentile(ttfts, 50),
    ttftP95Ms: percentile(ttfts, 95),
    prefillTps: spread(samples.map((s) => s.prefillTps)),
    aggregateDecodeTps: spread(samples.map((s) => s.aggregateDecodeTps)),
    perRequestDecodeTps,
    decodeMsPerToken: 1000 / perRequestDecodeTps.median,
    prefillBytesPerPromptToken: sum(samples.map((s) => s.prefillBytes)) / Math.max(1, sum(samples.map((s) => s.promptTokens))),
    decodeBytesPerToken: unpaid ? Number.NaN : sum(samples.map((s) => s.decodeBytes)) / Math.max(1, paying),
  };
}
