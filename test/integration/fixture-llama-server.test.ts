// Fixture models and full-range rank slices load in the stock llama-server of the pinned commit and generate.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadGgufModel } from '../../src/gguf/model.js';
import { writeRankSlice } from '../../src/gguf/slice.js';
import { makeFixture, type FixtureOptions } from '../helpers/fixtures.js';
import { startStockServer } from '../helpers/stock-server.js';

const tmp = await mkdtemp(join(tmpdir(), 'llama-relay-fixture-'));
after(() => rm(tmp, { recursive: true, force: true }));

const cases: FixtureOptions[] = [
  { arch: 'llama' },
  { arch: 'qwen2', type: 'f16' },
  { arch: 'qwen3', vocab: 'llama-spm' },
  { arch: 'qwen3moe', layers: 2, vocab: 'llama-spm' },
  { arch: 'gemma3', layers: 6, slidingWindow: 16, swaPattern: 3 },
];

for (const c of cases) {
  test(`stock llama-server loads and runs fixture ${JSON.stringify(c)}`, async () => {
    const path = await makeFixture(c);
    const server = await startStockServer(path);
    try {
      const r = await server.completion('Hello world, this is a test', 8);
      assert.equal(r.tokens_predicted, 8, server.log());
      assert.ok(r.content.length > 0);
    } finally {
      await server.stop();
    }
  });
}

test('a head slice holding every layer runs exactly like the full model', async () => {
  const full = await makeFixture({ arch: 'qwen3', layers: 3, vocab: 'llama-spm', seed: 5 });
  const model = await loadGgufModel(full);
  const slice = join(tmp, 'all-layers.gguf');
  await writeRankSlice(model, { layerStart: 0, layerEnd: 3, head: true }, slice);
  const outputs: unknown[] = [];
  for (const m of [full, slice]) {
    const server = await startStockServer(m);
    try {
      const r = await server.completion('The quick brown fox', 12);
      assert.ok(Array.isArray(r.completion_probabilities) && r.completion_probabilities.length === 12, 'n_probs output');
      outputs.push({ content: r.content, probs: r.completion_probabilities });
    } finally {
      await server.stop();
    }
  }
  assert.deepEqual(outputs[1], outputs[0]);
});
