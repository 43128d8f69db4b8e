// How long a decoded token takes on a chain, from how fast each node reads weights. Decode on a CPU (and mostly on a
// GPU) is bound by memory bandwidth: a rank's compute per token is about the bytes of the weights it multiplies, times
// its node's seconds per byte. The head also multiplies the output matrix (lm_head; tied embeddings are that matrix).
// A node under a CPU quota (a cgroup) has one more bound (quotaSeconds). Prefill is predicted from the same bytes at a
// node's prefill speed (prefillSeconds). Pure; the speeds come from measurements (plan/speed-cache.ts).
import type { ModelInfo } from './model-info.js';

/** Bytes of weights a rank multiplies per decoded token. An untied token_embd is only looked up (one row), so it is left out. */
export function tokenBytes(info: ModelInfo, layerStart: number, layerEnd: number, head: boolean): number {
  return layerBytes(info, layerStart, layerEnd) + (head ? outputBytes(info) : 0);
}

export function layerBytes(info: ModelInfo, layerStart: number, layerEnd: number): number {
  let bytes = 0;
  for (let il = layerStart; il < layerEnd; il++) bytes += info.layerWeights[il] ?? 0;
  return bytes;
}

/** The head's output part (output norm, lm_head; a tied token_embd is the lm_head). */
export const outputBytes = (info: ModelInfo): number => Math.max(0, info.headWeights - info.pageableWeights);

/** A node's measured speed: seconds per byte of layer weights, and (measured as a head) its output part per token. */
export interface NodeSpeed {
  /** Decode, at the node's full speed (a CPU quota's stalls taken out: cpuShare). */
  readonly secondsPerByte: number;
  /** The head's output norm + lm_head + sampling per token; where not measured, the output bytes at secondsPerByte. */
  readonly outputSeconds?: number;
  /** Prefill: seconds per byte of layer weights per prompt token (a prompt's tokens are multiplied in batches). */
  readonly prefillSecondsPerByte?: number;
  /**
   * The fraction of wall time a rank here may compute: its cgroup's CPU quota in cores over the threads a rank runs
   * (a third of a core and 1 thread: 0.33). Undefined: no quota. See tokenSecondsOf.
   */
  readonly cpuShare?: number;
}

/** A rank's compute seconds per decoded token on a node of speed `s`. */
export function rankSeconds(info: ModelInfo, layerStart: number, layerEnd: number, head: boolean, s: NodeSpeed): number {
  const output = head ? (s.outputSeconds ?? outputBytes(info) * s.secondsPerByte) : 0;
  return layerBytes(info, layerStart, layerEnd) * s.secondsPerByte + output;
}

/**
 * The shortest time per token a rank's CPU quota allows: a rank that computes `seconds` per token at full speed but
 * may use only `cpuShare` of the wall time needs seconds / cpuShare a token on average. A quota is a budget per period
 * (cgroup cpu.cfs_quota_us per cpu.cfs_period_us), not a slower clock: while the rank waits for the rest of the chain
 * it uses none of it, so a rank whose share of the token time stays under its quota runs at full speed, and one above
 * it stalls until the period ends. Hence max(), not a slower secondsPerByte: calibrated at one split, a slower
 * secondsPerByte would mispredict every other split.
 */
export const quotaSeconds = (seconds: number, s: NodeSpeed): number => (s.cpuShare !== undefined && s.cpuShare > 0 ? seconds / s.cpuShare : 0);

/** One link's cost per token (rank i to rank i+1, the last back to the head), in seconds. */
export type LinkSeconds = number | readonly number[];
const linkList = (links: LinkSeconds, n: number): number[] => Array.from({ length: n }, (_, i) => (typeof links === 'number' ? links : (links[i] ?? 0)));

export interface Prediction {
  /** Compute seconds per token per rank. */
  readonly rankSeconds: readonly number[];
  /** Link hops per token (a ring of n > 1 ranks: n; one node: 0). */
  readonly hops: number;
  /** Per link (rank i to rank i+1, the last one back to the head): its cost per token. */
  readonly linkSeconds: readonly number[];
  /** Their mean. */
  readonly hopSeconds: number;
  /** One request at a time: every rank's compute plus every link, or a CPU quota's bound where that is longer. */
  readonly tokenSeconds: number;
  /** The head's output part (output norm, lm_head, sampling) within rankSeconds[0]: the head's chain timing leaves it out. */
  readonly headOutputSeconds: number;
  /** The rank whose CPU quota bounds the time per token, where one does. */
  readonly quotaBound?: { readonly rank: number; readonly seconds: number };
  readonly decodeTokensPerSecond: number;
  /** The slowest stage: what bounds decode with several requests in flight (pipelined). */
  readonly stageSeconds: number;
  /** Predicted prefill of a PREFILL_TOKENS prompt, where every node's prefill speed was measured. */
  readonly prefillTokensPerSecond?: number;
}

/** The prompt length `plan` and `up` predict prefill for (one default ubatch). */
export const PREFILL_TOKENS = 512;

/**
 * The predicted decode time per token of `ranges` on nodes whose seconds per byte are `secondsPerByte` (rank order),
 * with `hopSeconds` per link; undefined when a node's speed is unknown.
 */
export function predictDecode(
  info: ModelInfo,
  ranges: readonly { layerStart: number; layerEnd: number }[],
  speeds: readonly (NodeSpeed | undefined)[],
  links: LinkSeconds,
): Prediction | undefined {
  if (speeds.length !== ranges.length || speeds.some((s) => s === undefined)) return undefined;
  const perRank = ranges.map((r, i) => rankSeconds(info, r.layerStart, r.layerEnd, i === 0, speeds[i]!));
  const hops = ranges.length > 1 ? ranges.length : 0;
  const linkSeconds = linkList(links, hops);
  const sum = perRank.reduce((a, b) => a + b, 0) + linkSeconds.reduce((a, b) => a + b, 0);
  const bounds = perRank.map((s, i) => quotaSeconds(s, speeds[i]!));
  const top = bounds.reduce((best, b, i) => (b > (bounds[best] ?? 0) ? i : best), 0);
  const bound = bounds[top] ?? 0;
  const tokenSeconds = Math.max(sum, bound);
  const prefill = prefillSeconds(info, ranges, speeds as NodeSpeed[], linkSeconds, PREFILL_TOKENS);
  return {
    rankSeconds: perRank,
    hops,
    linkSeconds,
    hopSeconds: hops ? linkSeconds.reduce((a, b) => a + b, 0) / hops : 0,
    tokenSeconds,
    headOutputSeconds: speeds[0]!.outputSeconds ?? outputBytes(info) * speeds[0]!.secondsPerByte,
    ...(bound > sum ? { quotaBound: { rank: top, seconds: bound } } : {}),
    decodeTokensPerSecond: tokenSeconds > 0 ? 1 / tokenSeconds : Number.POSITIVE_INFINITY,
    stageSeconds: Math.max(...perRank.map((s, i) => Math.max(s + (linkSeconds[i] ?? 0), bounds[i]!))),
    ...(prefill !== undefined ? { prefillTokensPerSecond: PREFILL_TOKENS / prefill } : {}),
  };
}

/**
 * Seconds to prefill a prompt of `tokens` tokens: compute-bound, so each rank's time grows with the prompt. The
 * head pipelines ubatches of up to `ubatch` tokens down the chain, so the first ubatch passes every rank in turn and
 * the rest are bounded by the slowest rank; every link is crossed once more per ubatch, and only the first ubatch's
 * crossings are on the path. Undefined where a node's prefill speed was not measured.
 */
export function prefillSeconds(
  info: ModelInfo,
  ranges: readonly { layerStart: number; layerEnd: number }[],
  speeds: readonly NodeSpeed[],
  linkSeconds: readonly number[],
  tokens: number,
  ubatch = 512,
): number | undefined {
  if (speeds.some((s) => s.prefillSecondsPerByte === undefined)) return undefined;
  const perToken = ranges.map((r, i) => layerBytes(info, r.layerStart, r.layerEnd) * speeds[i]!.prefillSecondsPerByte!);
  const first = Math.min(tokens, ubatch);
  return first * perToken.reduce((a, b) => a + b, 0) + (tokens - first) * Math.max(...perToken) + linkSeconds.reduce((a, b) => a + b, 0);
}

/**
 * A node's seconds per byte from a measured rank: its layers' compute per token over their bytes. (The head's
 * /health compute covers its layers only; its output part is measured apart: decode time less the round trip.)
 */
export function secondsPerByteOf(info: ModelInfo, layerStart: number, layerEnd: number, computeMsPerToken: number): number | undefined {
  const bytes = layerBytes(info, layerStart, layerEnd);
  if (!(bytes > 0) || !(computeMsPerToken > 0)) return undefined;
  return computeMsPerToken / 1000 / bytes;
}
