// Rank slices: a GGUF with all of a model's metadata but only the tensors one rank of a plan needs,
// tensor bytes copied unchanged and streamed from the source in bounded chunks.
import type { ByteReader } from './byte-reader.js';
import { FileByteReader } from './file-reader.js';
import type { GgufModel, ModelTensor } from './model.js';
import { GgufValueType } from './types.js';
import { writeGguf, type KvEntry, type TensorEntry } from './writer.js';

export interface SliceSpec {
  /** First layer (inclusive). */
  readonly layerStart: number;
  /** Last layer (exclusive). */
  readonly layerEnd: number;
  /** The head rank also holds token embeddings, the output norm and the lm_head. */
  readonly head: boolean;
}

export const SLICE_KEYS = {
  layerStart: 'llama_relay.slice.layer_start',
  layerEnd: 'llama_relay.slice.layer_end',
  head: 'llama_relay.slice.head',
} as const;

const BLOCK_RE = /^blk\.(\d+)\./;

/** Layer index of a per-layer tensor (`blk.N.*`), or undefined for a non-block tensor. */
export function tensorLayer(name: string): number | undefined {
  const m = BLOCK_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Non-block tensors only the head holds: embeddings in, norm and lm_head out (token_embd*, output*). */
export function isHeadTensor(name: string): boolean {
  return tensorLayer(name) === undefined && (name.startsWith('token_embd') || name.startsWith('output'));
}

/** Whether a rank with this spec needs the tensor. Other non-block tensors (e.g. rope_freqs) go to every rank. */
export function rankNeedsTensor(name: string, spec: SliceSpec): boolean {
  const layer = tensorLayer(name);
  if (layer !== undefined) return layer >= spec.layerStart && layer < spec.layerEnd;
  return isHeadTensor(name) ? spec.head : true;
}

export function rankTensors<T extends { name: string }>(tensors: readonly T[], spec: SliceSpec): T[] {
  return tensors.filter((t) => rankNeedsTensor(t.name, spec));
}

/** Writes the slice for `spec` to `outPath`. Keys `split.*` are dropped: a slice is always a single file. */
export async function writeRankSlice(
  model: GgufModel,
  spec: SliceSpec,
  outPath: string,
  opts: { open?: (path: string) => Promise<ByteReader> } = {},
): Promise<{ tensors: number; bytes: number }> {
  const openReader = opts.open ?? ((p: string) => FileByteReader.open(p));
  const readers = await Promise.all(model.parts.map((p) => openReader(p.file)));
  try {
    const first = model.parts[0]!;
    const r0 = readers[0]!;
    const kvs: KvEntry[] = [];
    for (const kv of first.kvs) {
      if (kv.key.startsWith('split.') || kv.key.startsWith('llama_relay.slice.')) continue;
      kvs.push({ key: kv.key, raw: await r0.read(kv.range.offset, kv.range.length) });
    }
    kvs.push(
      { key: SLICE_KEYS.layerStart, type: GgufValueType.UINT32, value: spec.layerStart },
      { key: SLICE_KEYS.layerEnd, type: GgufValueType.UINT32, value: spec.layerEnd },
      { key: SLICE_KEYS.head, type: GgufValueType.BOOL, value: spec.head },
    );
    const picked: ModelTensor[] = rankTensors(model.tensors, spec);
    const tensors: TensorEntry[] = picked.map((t) => ({
      name: t.name,
      dims: t.dims,
      type: t.type,
      source: { kind: 'copy', reader: readers[t.part]!, offset: t.fileOffset },
    }));
    await writeGguf(outPath, { kvs, tensors, alignment: first.alignment });
    return { tensors: picked.length, bytes: picked.reduce((a, t) => a + t.byteSize, 0) };
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}
