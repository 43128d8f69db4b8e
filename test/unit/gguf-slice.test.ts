// Rank slices: the right tensors, byte-identical data and metadata, from single files and split sets, in flat memory.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ByteReader } from '../../src/gguf/byte-reader.js';
import { FileByteReader } from '../../src/gguf/file-reader.js';
import { Prng } from '../../src/gguf/fixture/prng.js';
import { GgmlType } from '../../src/gguf/ggml-types.js';
import { loadGgufModel, readGgufHeader, type GgufModel } from '../../src/gguf/model.js';
import { rankNeedsTensor, SLICE_KEYS, writeRankSlice, type SliceSpec } from '../../src/gguf/slice.js';
import { splitPath } from '../../src/gguf/split.js';
import { GgufValueType as T, type GgufHeader } from '../../src/gguf/types.js';
import { COPY_CHUNK, kv, writeGguf, type KvEntry, type TensorEntry } from '../../src/gguf/writer.js';
import { makeFixture } from '../helpers/fixtures.js';

const tmp = await mkdtemp(join(tmpdir(), 'llama-relay-slice-'));
after(() => rm(tmp, { recursive: true, force: true }));

function randomTensor(name: string, dims: number[], type: number): TensorEntry {
  return {
    name,
    dims,
    type,
    source: {
      kind: 'chunks',
      chunks: function* () {
        const rng = new Prng(name.length * 7919 + dims[0]!);
        const bytes = (dims.reduce((a, b) => a * b, 1) / (type === GgmlType.Q8_0 ? 32 : 1)) * (type === GgmlType.Q8_0 ? 34 : 4);
        const b = new Uint8Array(bytes);
        for (let i = 0; i < b.length; i++) b[i] = Math.floor(rng.next() * 256);
        yield b;
      },
    },
  };
}

const LAYERS = 4;
const baseKvs: KvEntry[] = [
  kv('general.architecture', T.STRING, 'llama'),
  kv('general.alignment', T.UINT32, 64),
  kv('llama.block_count', T.UINT32, LAYERS),
  kv('tokenizer.ggml.tokens', T.ARRAY, { itemType: T.STRING, items: ['<s>', '\uFEFF', 'é'] }),
];
const tensors: TensorEntry[] = [
  randomTensor('token_embd.weight', [16, 50], GgmlType.F32),
  randomTensor('rope_freqs.weight', [8], GgmlType.F32),
  ...Array.from({ length: LAYERS }, (_, i) => [
    randomTensor(`blk.${i}.attn_norm.weight`, [16], GgmlType.F32),
    randomTensor(`blk.${i}.ffn_down.weight`, [64, 16], GgmlType.Q8_0),
  ]).flat(),
  randomTensor('output_norm.weight', [16], GgmlType.F32),
  randomTensor('output.weight', [16, 50], GgmlType.F32),
];

const single = join(tmp, 'model.gguf');
await writeGguf(single, { kvs: baseKvs, tensors, alignment: 64 });
const prefix = join(tmp, 'split');
const splitKvs = (no: number): KvEntry[] => [
  kv('split.no', T.UINT16, no),
  kv('split.count', T.UINT16, 2),
  kv('split.tensors.count', T.INT32, tensors.length),
];
await writeGguf(splitPath(prefix, 1, 2), { kvs: [...baseKvs, ...splitKvs(0)], tensors: tensors.slice(0, 5), alignment: 64 });
await writeGguf(splitPath(prefix, 2, 2), { kvs: splitKvs(1), tensors: tensors.slice(5), alignment: 64 });

async function tensorHashes(h: GgufHeader): Promise<Map<string, string>> {
  const r = await FileByteReader.open(h.file);
  try {
    const out = new Map<string, string>();
    for (const t of h.tensors) out.set(t.name, createHash('sha256').update(await r.read(t.fileOffset, t.byteSize)).digest('hex'));
    return out;
  } finally {
    await r.close();
  }
}

async function modelHashes(m: GgufModel): Promise<Map<string, string>> {
  const all = new Map<string, string>();
  for (const p of m.parts) for (const [k, v] of await tensorHashes(p)) all.set(k, v);
  return all;
}

const specs: SliceSpec[] = [
  { layerStart: 0, layerEnd: 2, head: true },
  { layerStart: 2, layerEnd: 4, head: false },
  { layerStart: 1, layerEnd: 2, head: false },
];

test('split set loads as one model', async () => {
  const m = await loadGgufModel(splitPath(prefix, 2, 2));
  assert.equal(m.path, splitPath(prefix, 1, 2));
  assert.equal(m.parts.length, 2);
  assert.deepEqual(m.tensors.map((t) => t.name), tensors.map((t) => t.name));
  assert.deepEqual(await modelHashes(m), await modelHashes(await loadGgufModel(single)));
});

for (const source of ['single', 'split'] as const) {
  for (const spec of specs) {
    test(`slice ${JSON.stringify(spec)} of a ${source} file: right tensors, identical bytes and metadata`, async () => {
      const model = await loadGgufModel(source === 'single' ? single : splitPath(prefix, 1, 2));
      const out = join(tmp, `${source}-${spec.layerStart}-${spec.layerEnd}.gguf`);
      await writeRankSlice(model, spec, out);
      const h = await readGgufHeader(out);

      const expected = [
        ...(spec.head ? ['token_embd.weight'] : []),
        'rope_freqs.weight',
        ...Array.from({ length: spec.layerEnd - spec.layerStart }, (_, k) => [
          `blk.${spec.layerStart + k}.attn_norm.weight`,
          `blk.${spec.layerStart + k}.ffn_down.weight`,
        ]).flat(),
        ...(spec.head ? ['output_norm.weight', 'output.weight'] : []),
      ];
      assert.deepEqual(h.tensors.map((t) => t.name), expected);
      assert.equal(h.alignment, 64);

      const src = await modelHashes(model);
      for (const [name, hash] of await tensorHashes(h)) assert.equal(hash, src.get(name), name);

      const bytes = await readFile(out);
      const srcFirst = await readFile(model.parts[0]!.file);
      const srcKvs = model.parts[0]!.kvs.filter((k) => !k.key.startsWith('split.'));
      const outKvs = h.kvs.filter((k) => !k.key.startsWith('llama_relay.'));
      assert.deepEqual(outKvs.map((k) => k.key), srcKvs.map((k) => k.key));
      for (const [i, k] of outKvs.entries()) {
        const s = srcKvs[i]!;
        assert.ok(Buffer.compare(bytes.subarray(k.range.offset, k.range.offset + k.range.length), srcFirst.subarray(s.range.offset, s.range.offset + s.range.length)) === 0, k.key);
      }
      const slice = Object.fromEntries(h.kvs.filter((k) => k.key.startsWith('llama_relay.')).map((k) => [k.key, [k.type, k.value]]));
      assert.deepEqual(slice, {
        [SLICE_KEYS.layerStart]: [T.UINT32, spec.layerStart],
        [SLICE_KEYS.layerEnd]: [T.UINT32, spec.layerEnd],
        [SLICE_KEYS.head]: [T.BOOL, spec.head],
      });
    });
  }
}

test('rankNeedsTensor table', () => {
  const head = { layerStart: 0, layerEnd: 3, head: true };
  const mid = { layerStart: 3, layerEnd: 6, head: false };
  const rows: [string, boolean, boolean][] = [
    ['token_embd.weight', true, false],
    ['output.weight', true, false],
    ['output_norm.weight', true, false],
    ['rope_freqs.weight', true, true],
    ['blk.0.attn_q.weight', true, false],
    ['blk.2.ffn_up_exps.weight', true, false],
    ['blk.3.attn_q.weight', false, true],
    ['blk.5.post_ffw_norm.weight', false, true],
    ['blk.6.attn_q.weight', false, false],
    ['blk.30.attn_q.weight', false, false],
  ];
  for (const [name, inHead, inMid] of rows) {
    assert.equal(rankNeedsTensor(name, head), inHead, `${name} head`);
    assert.equal(rankNeedsTensor(name, mid), inMid, `${name} mid`);
  }
});

test('slicing streams: bounded reads, only the needed bytes, flat memory', async () => {
  // token_embd and output are 512 x 32000 F32 = 65.5 MB each
  const big = await makeFixture({ arch: 'llama', layers: 2, embd: 512, heads: 8, headsKv: 8, ff: 512, vocab: 'llama-spm' });
  const model = await loadGgufModel(big);
  let maxRead = 0;
  let total = 0;
  const open = async (p: string): Promise<ByteReader> => {
    const r = await FileByteReader.open(p);
    return {
      name: r.name,
      size: r.size,
      close: () => r.close(),
      read: async (o, n) => {
        maxRead = Math.max(maxRead, n);
        total += n;
        return r.read(o, n);
      },
      readInto: async (o, target) => {
        maxRead = Math.max(maxRead, target.length);
        total += target.length;
        return r.readInto(o, target);
      },
    };
  };
  const metaBytes = model.parts[0]!.kvs.reduce((a, k) => a + k.range.length, 0);
  globalThis.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
  const spec = { layerStart: 0, layerEnd: 1, head: true };
  const r = await writeRankSlice(model, spec, join(tmp, 'big-head.gguf'), { open });
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.ok(r.bytes > 130e6);
  assert.ok(maxRead <= COPY_CHUNK, `largest read ${maxRead}`);
  assert.equal(total, r.bytes + metaBytes, 'read exactly the slice tensors plus metadata');
  const grew = peak - base;
  assert.ok(grew < 24e6, `RSS grew by ${(grew / 1e6).toFixed(1)} MB while copying ${(r.bytes / 1e6).toFixed(0)} MB`);
});
