// The reader agrees with llama.cpp's own gguf-py on every key and tensor of fixtures and a real model.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readGgufHeader } from '../../src/gguf/model.js';
import { GgufValueType, isGgufArray, type GgufHeader, type GgufScalar } from '../../src/gguf/types.js';
import { makeFixture, type FixtureOptions } from '../helpers/fixtures.js';
import { ggufPyDump } from '../helpers/gguf-py.js';
import { realGemma3For } from '../helpers/real-model.js';

function norm(v: GgufScalar, t: GgufValueType): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v) === 'NaN' ? 'nan' : v > 0 ? 'inf' : '-inf';
  if (t === GgufValueType.BOOL) return Boolean(v);
  return v;
}

function ours(h: GgufHeader) {
  return {
    alignment: h.alignment,
    dataOffset: h.dataOffset,
    kvs: h.kvs.map((kv) =>
      isGgufArray(kv.value)
        ? { key: kv.key, type: kv.type, itemType: kv.value.itemType, value: kv.value.items.map((x) => norm(x, kv.value && isGgufArray(kv.value) ? kv.value.itemType : kv.type)) }
        : { key: kv.key, type: kv.type, value: norm(kv.value, kv.type) },
    ),
    tensors: h.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], fileOffset: t.fileOffset, byteSize: t.byteSize })),
  };
}

async function agree(path: string): Promise<void> {
  const [h, py] = await Promise.all([readGgufHeader(path), ggufPyDump(path)]);
  const o = ours(h);
  assert.equal(o.alignment, py.alignment);
  assert.equal(o.dataOffset, py.dataOffset);
  assert.deepEqual(o.kvs.map((k) => k.key), py.kvs.map((k) => k.key));
  for (const [i, k] of o.kvs.entries()) {
    const p = py.kvs[i]!;
    assert.equal(k.type, p.type, `type of ${k.key}`);
    if (Array.isArray(k.value) && Array.isArray(p.value)) {
      // item by item: a deepEqual diff of a 262k-token list takes minutes to render
      assert.equal(k.itemType, p.itemType, `item type of ${k.key}`);
      assert.equal(k.value.length, p.value.length, `length of ${k.key}`);
      for (let j = 0; j < k.value.length; j++) {
        if (k.value[j] !== p.value[j]) assert.fail(`${k.key}[${j}]: ours ${JSON.stringify(k.value[j])}, gguf-py ${JSON.stringify(p.value[j])}`);
      }
    } else {
      assert.deepEqual(k.value, p.value, `value of ${k.key}`);
    }
  }
  assert.deepEqual(o.tensors, py.tensors);
}

const cases: FixtureOptions[] = [
  { arch: 'llama' },
  { arch: 'qwen2', type: 'f16' },
  { arch: 'qwen3', layers: 3, vocab: 'llama-spm' },
  { arch: 'qwen3moe', layers: 2, experts: 4, expertsUsed: 2, expertFf: 32, vocab: 'llama-spm' },
  { arch: 'gemma3', layers: 6, headDim: 32, slidingWindow: 32, swaPattern: 3 },
];

for (const c of cases) {
  test(`gguf-py agrees on fixture ${JSON.stringify(c)}`, async () => {
    await agree(await makeFixture(c));
  });
}

test('gguf-py agrees on the real Gemma 3 270M Q4_K_M model', async (t) => {
  const path = await realGemma3For(t);
  if (!path) return;
  await agree(path);
});
