// Repeats of one (prompt length, parallel) point summarized: medians, spreads, per-token costs. Pure.
import type { Measurement, Sample } from './bench-result.js';
import { spread, sum } from './stats.js';

export function summarize(promptTokens: number, parallel: number, samples: readonly Sample[]): Measurement {
  const decodeTps = spread(samples.map((s) => s.decodeTps));
  // Bytes after the first token belong to the remaining tokens of each stream.
  const decodedAfterFirst = sum(samples.map((s) => Math.max(0, s.generatedTokens - parallel)));
  return {
    promptTokens,
    parallel,
    samples,
    ttftMs: spread(samples.map((s) => s.ttftMs)),
    prefillTps: spread(samples.map((s) => s.prefillTps)),
    decodeTps,
    decodeMsPerToken: (1000 * parallel) / decodeTps.median,
    prefillBytesPerPromptToken: sum(samples.map((s) => s.prefillBytes)) / Math.max(1, sum(samples.map((s) => s.promptTokens))),
    decodeBytesPerToken: sum(samples.map((s) => s.decodeBytes)) / Math.max(1, decodedAfterFirst),
  };
}
