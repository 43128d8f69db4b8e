// Per-rank memory estimate for llama-server on CPU, calibrated on the pinned build:
// weights (exact) + KV cache + recurrent state + compute buffer + output buffer + process overhead.
import type { ModelInfo } from './model-info.js';

export interface RuntimeParams {
  /** Total context (llama-server -c). */
  readonly ctx: number;
  /** Slots (llama-server --parallel). */
  readonly parallel: number;
  /** --kv-unified: one KV stream shared by all slots. */
  readonly kvUnified: boolean;
  /** --swa-full: SWA layers get a full-size cache. */
  readonly swaFull: boolean;
  readonly ubatch: number;
  /** Bytes per KV element (f16 = 2, q8_0 = 34/32). */
  readonly kvElementBytes: number;
}

export const DEFAULT_RUNTIME: RuntimeParams = {
  ctx: 4096,
  parallel: 1,
  kvUnified: false,
  swaFull: false,
  ubatch: 512,
  kvElementBytes: 2,
};

export interface MemoryBreakdown {
  readonly weights: number;
  readonly kv: number;
  readonly recurrent: number;
  readonly compute: number;
  readonly output: number;
  readonly overhead: number;
  readonly total: number;
}

const MiB = 1024 * 1024;
const pad = (n: number, to: number) => Math.ceil(n / to) * to;

/** KV cells a layer gets (llama-context / llama-kv-cache-iswa sizing). */
export function kvCells(info: ModelInfo, il: number, p: RuntimeParams): number {
  const ctx = pad(p.ctx, 256);
  if (!info.swa[il] || p.swaFull) return ctx;
  const streams = p.kvUnified ? 1 : p.parallel;
  const perStream = ctx / streams;
  const swaPerStream = pad(Math.min(perStream, info.nSwa * (p.kvUnified ? p.parallel : 1) + p.ubatch), 256);
  return swaPerStream * streams;
}

export function kvBytes(info: ModelInfo, il: number, p: RuntimeParams): number {
  const hkv = info.nHeadKv[il] ?? 0;
  if (hkv === 0) return 0;
  const row = hkv * ((info.keyLength[il] ?? 0) + (info.valueLength[il] ?? 0));
  return kvCells(info, il, p) * row * p.kvElementBytes;
}

/**
 * Scratch memory for one ubatch: the f16 KQ mask over one stream's cells plus activations, fitted on the
 * pinned CPU build (flash attention on): ~4.24 floats per FFN unit and ~0.64 per embedding unit per token.
 */
export function computeBytes(info: ModelInfo, layers: readonly number[], p: RuntimeParams): number {
  const streams = p.kvUnified ? 1 : p.parallel;
  const cells = Math.max(0, ...layers.filter((il) => (info.nHeadKv[il] ?? 0) > 0).map((il) => kvCells(info, il, p)));
  const mask = (cells / streams) * p.ubatch * 2;
  const ff = Math.max(0, ...layers.map((il) => info.nFf[il] ?? 0));
  const act = p.ubatch * 4 * (4.24 * ff + 0.64 * info.nEmbd);
  return mask + act; // logits are not here: measured compute buffers do not grow with the vocabulary
}

/** Process overhead measured on the stock llama-server: ~12 MiB of binary, ~1 MiB base, vocabulary tables. */
export function overheadBytes(info: ModelInfo): number {
  return 13 * MiB + info.nVocab * (info.vocabHasMerges ? 310 : 110);
}

export function rankMemory(info: ModelInfo, layerStart: number, layerEnd: number, head: boolean, p: RuntimeParams): MemoryBreakdown {
  const layers = Array.from({ length: layerEnd - layerStart }, (_, i) => layerStart + i);
  const weights = layers.reduce((a, il) => a + (info.layerWeights[il] ?? 0), 0) + info.sharedWeights + (head ? info.headWeights : 0);
  const kv = layers.reduce((a, il) => a + kvBytes(info, il, p), 0);
  const recurrent = layers.reduce((a, il) => a + (info.recurrentState[il] ?? 0) * p.parallel, 0);
  const compute = computeBytes(info, layers, p);
  const output = head ? info.nVocab * 4 * p.parallel : 0;
  const overhead = overheadBytes(info);
  return { weights, kv, recurrent, compute, output, overhead, total: weights + kv + recurrent + compute + output + overhead };
}
