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
  /** Tensor bytes this rank maps (exact). */
  readonly weights: number;
  /** Of those, bytes that stay mostly paged out (an untied token_embd on a chain head); not counted in total. */
  readonly pageable: number;
  /** Second copies of tensors the CPU backend repacks (Q4_0/Q4_K/IQ4_NL on x86 AVX2 and ARM). */
  readonly repack: number;
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

/**
 * Process overhead fitted on the pinned build: a single stock llama-server (which prefetches the whole mapped
 * file) ~13 MiB, a chain rank ~3 MiB; plus the vocabulary tables every rank loads (~110-130 bytes a token,
 * ~310 with BPE merges).
 */
export function overheadBytes(info: ModelInfo, chained = false): number {
  const perToken = info.vocabHasMerges ? 310 : chained ? 130 : 110;
  return (chained ? 3 : 13) * MiB + info.nVocab * perToken;
}

/**
 * `chained`: the rank is part of a multi-node chain. Stock llama-server prefetches the whole mapped file, so a
 * single node holds everything resident; chain ranks do not prefetch, so an untied token_embd stays paged out.
 */
export function rankMemory(
  info: ModelInfo,
  layerStart: number,
  layerEnd: number,
  head: boolean,
  p: RuntimeParams,
  chained = false,
): MemoryBreakdown {
  const layers = Array.from({ length: layerEnd - layerStart }, (_, i) => layerStart + i);
  const weights = layers.reduce((a, il) => a + (info.layerWeights[il] ?? 0), 0) + info.sharedWeights + (head ? info.headWeights : 0);
  const kv = layers.reduce((a, il) => a + kvBytes(info, il, p), 0);
  const recurrent = layers.reduce((a, il) => a + (info.recurrentState[il] ?? 0) * p.parallel, 0);
  const compute = computeBytes(info, layers, p);
  const repack = layers.reduce((a, il) => a + (info.layerRepacked[il] ?? 0), 0);
  const output = info.nVocab * 4 * p.parallel; // every rank allocates the logits buffer, used or not
  const overhead = overheadBytes(info, chained);
  // Lookups fault in rows plus kernel readahead (128 KiB a fault): budget ~64 faults' worth as resident.
  const pageable = head && chained ? Math.max(0, info.pageableWeights - 8 * MiB) : 0;
  const total = weights - pageable + repack + kv + recurrent + compute + output + overhead;
  return { weights, pageable, repack, kv, recurrent, compute, output, overhead, total };
}
