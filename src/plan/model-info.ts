// The hyperparameters the planner needs, read the way llama.cpp's loader reads them (llama-model.cpp load_hparams).
import { UserError } from '../errors.js';
import { fileTypeName } from '../gguf/file-types.js';
import type { GgufMetadata } from '../gguf/metadata.js';
import { isHeadTensor, tensorLayer } from '../gguf/slice.js';

export interface ModelInfo {
  readonly file: string;
  readonly arch: string;
  readonly name?: string;
  readonly nLayer: number;
  readonly nEmbd: number;
  readonly nVocab: number;
  readonly ctxTrain: number;
  readonly nFf: readonly number[];
  readonly nHead: readonly number[];
  readonly nHeadKv: readonly number[];
  readonly keyLength: readonly number[];
  readonly valueLength: readonly number[];
  /** Per layer: sliding-window attention. */
  readonly swa: readonly boolean[];
  readonly nSwa: number;
  readonly nExpert: number;
  readonly nExpertUsed: number;
  /** Per layer: bytes of recurrent state per sequence (0 for attention layers). */
  readonly recurrentState: readonly number[];
  /** BPE vocabularies carry a merges list, which costs memory at load time. */
  readonly vocabHasMerges: boolean;
  readonly fileType: string;
  /** Bytes of each layer's `blk.N.*` tensors. */
  readonly layerWeights: readonly number[];
  /** Bytes of each layer's tensors the CPU backend repacks into a second, anonymous copy (Q4_0, Q4_K, IQ4_NL). */
  readonly layerRepacked: readonly number[];
  /** token_embd*, output* (only the head holds them). */
  readonly headWeights: number;
  /**
   * Part of headWeights that stays mostly paged out: an untied token_embd is mmapped and read only at the rows of
   * the tokens in a batch (get_rows), so it barely shows in resident memory. 0 when embeddings are tied.
   */
  readonly pageableWeights: number;
  /** Other non-block tensors (e.g. rope_freqs): every rank holds them. */
  readonly sharedWeights: number;
}

/** Archs whose loader defaults sliding_window_pattern when the key is absent (period, dense_first). */
const SWA_DEFAULT_PERIOD: Record<string, number> = { gemma2: 2, gemma3: 6, cohere2: 4, gemma3n: 5 };

function perLayer(v: number | number[] | undefined, n: number, fallback: number): number[] {
  if (Array.isArray(v)) return Array.from({ length: n }, (_, i) => v[i] ?? fallback);
  return Array.from({ length: n }, () => v ?? fallback);
}

/** Types ggml-cpu's repack.cpp (x86 AVX2 / ARM) converts to an interleaved layout when rows come in groups of 8. */
const REPACKED_TYPES = new Set(['Q4_0', 'Q4_K', 'IQ4_NL']);

function isRepacked(t: { typeName?: string; dims?: readonly number[] }): boolean {
  return t.typeName !== undefined && REPACKED_TYPES.has(t.typeName) && (t.dims?.length ?? 0) >= 2 && (t.dims?.[1] ?? 0) % 8 === 0;
}

type TensorLike = { name: string; byteSize: number; typeName?: string; dims?: readonly number[] };

export function modelInfo(md: GgufMetadata, tensors: readonly TensorLike[]): ModelInfo {
  const arch = md.string('general.architecture');
  if (!arch) throw new UserError(`${md.file}: has no general.architecture key; is it a model GGUF?`);
  const k = (s: string) => `${arch}.${s}`;
  const nLayer = md.number(k('block_count'));
  const nEmbd = md.number(k('embedding_length'));
  if (!nLayer || !nEmbd) throw new UserError(`${md.file}: missing ${k('block_count')} or ${k('embedding_length')}`);
  const nVocab = md.number(k('vocab_size')) ?? md.arrayLength('tokenizer.ggml.tokens') ?? 0;
  const nHead = perLayer(md.numberOrArray(k('attention.head_count')), nLayer, 0);
  const nHeadKv = md.has(k('attention.head_count_kv')) ? perLayer(md.numberOrArray(k('attention.head_count_kv')), nLayer, 0) : [...nHead];
  const maxHead = Math.max(0, ...nHead);
  const headDim = maxHead > 0 ? nEmbd / maxHead : 0;
  const kFull = md.number(k('attention.key_length')) ?? headDim;
  const vFull = md.number(k('attention.value_length')) ?? headDim;
  const kSwa = md.number(k('attention.key_length_swa')) ?? kFull;
  const vSwa = md.number(k('attention.value_length_swa')) ?? vFull;

  const nSwa = md.number(k('attention.sliding_window')) ?? 0;
  let swa = Array.from({ length: nLayer }, () => false);
  if (nSwa > 0) {
    const pattern = md.numberOrArray(k('attention.sliding_window_pattern'));
    if (Array.isArray(pattern)) swa = swa.map((_, i) => Boolean(pattern[i]));
    else {
      const period = pattern ?? SWA_DEFAULT_PERIOD[arch] ?? 0;
      // llama_hparams::set_swa_pattern: every period-th layer (the last of each group) is full attention
      swa = swa.map((_, i) => period === 0 || i % period < period - 1);
    }
  }

  const ssmInner = md.number(k('ssm.inner_size')) ?? 0;
  const ssmState = md.number(k('ssm.state_size')) ?? 0;
  const ssmConv = md.number(k('ssm.conv_kernel')) ?? 0;
  const ssmGroups = md.number(k('ssm.group_count')) ?? 0;
  const stateBytes = ssmInner > 0 ? 4 * ((Math.max(ssmConv, 1) - 1) * (ssmInner + 2 * ssmGroups * ssmState) + ssmState * ssmInner) : 0;
  const recurrentState = nHeadKv.map((h) => (h === 0 && stateBytes > 0 ? stateBytes : 0));

  const nExpert = md.number(k('expert_count')) ?? 0;
  const nExpertUsed = md.number(k('expert_used_count')) ?? 0;
  let nFf = perLayer(md.numberOrArray(k('feed_forward_length')), nLayer, 0);
  const expertFf = md.number(k('expert_feed_forward_length'));
  // MoE: the activations that matter are those of the experts in use (llama.cpp defaults n_ff_exp to n_ff / n_expert_used)
  if (nExpert > 0 && nExpertUsed > 0) nFf = nFf.map((f) => (expertFf ?? f / nExpertUsed) * nExpertUsed);

  const layerWeights = Array.from({ length: nLayer }, () => 0);
  const layerRepacked = Array.from({ length: nLayer }, () => 0);
  let headWeights = 0;
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const pageableWeights = tied ? 0 : tensors.filter((t) => t.name === 'token_embd.weight').reduce((a, t) => a + t.byteSize, 0);
  let sharedWeights = 0;
  for (const t of tensors) {
    const l = tensorLayer(t.name);
    if (l !== undefined && l < nLayer) {
      layerWeights[l]! += t.byteSize;
      if (isRepacked(t)) layerRepacked[l]! += t.byteSize;
    }
    else if (l !== undefined) sharedWeights += t.byteSize; // e.g. MTP layers past block_count: every rank keeps them
    else if (isHeadTensor(t.name)) headWeights += t.byteSize;
    else sharedWeights += t.byteSize;
  }

  const info: ModelInfo = {
    file: md.file,
    arch,
    nLayer,
    nEmbd,
    nVocab,
    ctxTrain: md.number(k('context_length')) ?? 0,
    nFf,
    nHead,
    nHeadKv,
    keyLength: swa.map((s) => (s ? kSwa : kFull)),
    valueLength: swa.map((s) => (s ? vSwa : vFull)),
    swa,
    nSwa,
    nExpert,
    nExpertUsed,
    recurrentState,
    vocabHasMerges: md.has('tokenizer.ggml.merges'),
    fileType: fileTypeName(md.number('general.file_type')),
    layerWeights,
    layerRepacked,
    headWeights,
    pageableWeights,
    sharedWeights,
  };
  const name = md.string('general.name');
  return name === undefined ? info : { ...info, name };
}
