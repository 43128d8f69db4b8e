// How long a decoded token takes on a chain, from how fast each node reads weights. Decode on a CPU (and mostly on a
// GPU) is bound by memory bandwidth: a rank's compute per token is about the bytes of the weights it multiplies, times
// its node's seconds per byte. The head also multiplies the output matrix (lm_head; tied embeddings are that matrix).
// Pure; the speeds come from measurements (plan/speed-cache.ts).
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
  readonly secondsPerByte: number;
  /** The head's output norm + lm_head + sampling per token; where not measured, the output bytes at secondsPerByte. */
  readonly outputSeconds?: number;
}

/** A rank's compute seconds per decoded token on a node of speed `s`. */
export function rankSeconds(info: ModelInfo, layerStart: number, layerEnd: number, head: boolean, s: NodeSpeed): number {
  const output = head ? (s.outputSeconds ?? outputBytes(info) * s.secondsPerByte) : 0;
  return layerBytes(info, layerStart, layerEnd) * s.secondsPerByte + output;
}

export interface Prediction {
  /** Compute seconds per token per rank. */
  readonly rankSeconds: readonly number[];
  /** Link hops per token (a ring of n > 1 ranks: n; one node: 0). */
  readonly hops: number;
  readonly hopSeconds: number;
  /** One request at a time: every rank's compute plus every hop. */
  readonly tokenSeconds: number;
  readonly decodeTokensPerSecond: number;
  /** The slowest stage: what bounds decode with several requests in flight (pipelined). */
  readonly stageSeconds: number;
}

/**
 * The predicted decode time per token of `ranges` on nodes whose seconds per byte are `secondsPerByte` (rank order),
 * with `hopSeconds` per link; undefined when a node's speed is unknown.
 */
export function predictDecode(
  info: ModelInfo,
  ranges: readonly { layerStart: number; layerEnd: number }[],
  speeds: readonly (NodeSpeed | undefined)[],
  hopSeconds: number,
): Prediction | undefined {
  if (speeds.length !== ranges.length || speeds.some((s) => s === undefined)) return undefined;
  const perRank = ranges.map((r, i) => rankSeconds(info, r.layerStart, r.layerEnd, i === 0, speeds[i]!));
  const hops = ranges.length > 1 ? ranges.length : 0;
  const tokenSeconds = perRank.reduce((a, b) => a + b, 0) + hops * hopSeconds;
  return {
    rankSeconds: perRank,
    hops,
    hopSeconds,
    tokenSeconds,
    decodeTokensPerSecond: tokenSeconds > 0 ? 1 / tokenSeconds : Number.POSITIVE_INFINITY,
    stageSeconds: Math.max(...perRank.map((s) => s + (hops ? hopSeconds : 0))),
  };
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
