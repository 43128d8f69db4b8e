// Planner, memory estimate, node specs and sizes: table tests on synthetic models, plus one real header.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { loadGgufModel } from '../../src/gguf/model.js';
import { DEFAULT_RUNTIME, kvBytes, kvCells, rankMemory, type RuntimeParams } from '../../src/plan/memory.js';
import { modelInfo, type ModelInfo } from '../../src/plan/model-info.js';
import { parseNodeList, parseNodeSpec } from '../../src/plan/node-spec.js';
import { calculatePlan, PlanError } from '../../src/plan/planner.js';
import { formatBytes, parseByteSize } from '../../src/plan/size.js';
import { makeFixture } from '../helpers/fixtures.js';
import { realGemma3For } from '../helpers/real-model.js';

const GB = 1e9;

function synthetic(o: Partial<ModelInfo> & { nLayer: number; layerBytes?: number }): ModelInfo {
  const L = o.nLayer;
  const fill = <T>(v: T) => Array.from({ length: L }, () => v);
  return {
    file: '/m.gguf',
    arch: 'llama',
    nEmbd: 4096,
    nVocab: 32000,
    ctxTrain: 8192,
    nFf: fill(14336),
    nHead: fill(32),
    nHeadKv: fill(8),
    keyLength: fill(128),
    valueLength: fill(128),
    swa: fill(false),
    nSwa: 0,
    nExpert: 0,
    nExpertUsed: 0,
    recurrentState: fill(0),
    vocabHasMerges: false,
    fileType: 'Q4_K_M',
    layerWeights: fill(o.layerBytes ?? 0.5 * GB),
    layerRepacked: fill(0),
    headWeights: 1 * GB,
    pageableWeights: 0,
    sharedWeights: 0,
    ...o,
  };
}

const rt = (p: Partial<RuntimeParams> = {}): RuntimeParams => ({ ...DEFAULT_RUNTIME, ...p });
const ranges = (info: ModelInfo, nodes: { name: string; memory?: number }[], p = rt()) =>
  calculatePlan(info, nodes, p).nodes.map((n) => [n.layerStart, n.layerEnd - 1]);
const n = (k: number) => Array.from({ length: k }, (_, i) => ({ name: `n${i}` }));

test('plans are contiguous, cover every layer once, and put embeddings and output on node 0', () => {
  for (const L of [1, 2, 7, 32, 80]) {
    for (const k of [1, 2, 3, 5, 8]) {
      if (k > L) continue;
      const plan = calculatePlan(synthetic({ nLayer: L }), n(k), rt());
      let next = 0;
      for (const node of plan.nodes) {
        assert.equal(node.layerStart, next);
        assert.ok(node.layerEnd > node.layerStart);
        next = node.layerEnd;
        assert.equal(node.embeddings, node.index === 0);
        assert.equal(node.output, node.index === 0);
      }
      assert.equal(next, L);
    }
  }
});

test('without budgets the head takes fewer layers to carry its embeddings and lm_head', () => {
  // each layer ~0.5 GB + KV; the head also holds 1 GB of embeddings/output = ~2 layers' worth
  assert.deepEqual(ranges(synthetic({ nLayer: 32 }), n(2)), [[0, 14], [15, 31]]);
  assert.deepEqual(ranges(synthetic({ nLayer: 32, headWeights: 0 }), n(2)), [[0, 15], [16, 31]]);
  // the remaining layers are spread as evenly as possible
  const four = ranges(synthetic({ nLayer: 30 }), n(4)).map(([a, b]) => b! - a! + 1);
  assert.ok(four[0]! < four[1]!, JSON.stringify(four));
  assert.ok(Math.max(...four.slice(1)) - Math.min(...four.slice(1)) <= 1, JSON.stringify(four));
});

test('budgets steer the split and are respected', () => {
  const info = synthetic({ nLayer: 40 });
  const r = ranges(info, [{ name: 'big', memory: 24 * GB }, { name: 'small', memory: 8 * GB }]);
  const plan = calculatePlan(info, [{ name: 'big', memory: 24 * GB }, { name: 'small', memory: 8 * GB }], rt());
  for (const node of plan.nodes) assert.ok(node.memory.total <= node.budget!);
  assert.ok(r[0]![1]! - r[0]![0]! > r[1]![1]! - r[1]![0]!, `big node gets more layers: ${JSON.stringify(r)}`);
});

test('an impossible plan is refused with the numbers', () => {
  const info = synthetic({ nLayer: 40 });
  assert.throws(
    () => calculatePlan(info, [{ name: 'a', memory: 8 * GB }, { name: 'b', memory: 8 * GB }], rt()),
    (e: unknown) =>
      e instanceof PlanError &&
      /the model does not fit: weights 21\.0 GB, KV cache [\d.]+ (MB|GB) at ctx 4096 x 1 slot\(s\)/.test(e.message) &&
      /node 0 \(a\): layers 0 - \d+ need ~[\d.]+ GB of 8\.0 GB/.test(e.message) &&
      /against 16\.0 GB of budgets/.test(e.message) &&
      e.next.length > 0,
  );
  assert.throws(() => calculatePlan(synthetic({ nLayer: 2 }), n(3), rt()), /3 nodes but the model has only 2 layers/);
  assert.throws(() => calculatePlan(synthetic({ nLayer: 8, arch: 'gemma3n' }), n(2), rt()), /cannot be split across nodes: per-layer embeddings/);
  assert.throws(() => calculatePlan(synthetic({ nLayer: 8, arch: 'mamba' }), n(2), rt()), /architecture "mamba" cannot be split across nodes: its graph does not follow the common decoder layer loop/);
  // one node needs no splitting support
  assert.equal(calculatePlan(synthetic({ nLayer: 8, arch: 'mamba' }), n(1), rt()).nodes.length, 1);
});

test('KV cache: per-layer head_count_kv, key/value lengths, SWA layers, streams and slots', () => {
  const info = synthetic({ nLayer: 4, nHeadKv: [8, 0, 4, 8], swa: [true, false, false, true], nSwa: 1024 });
  // f16: cells * n_head_kv * (k + v) * 2
  assert.equal(kvBytes(info, 2, rt({ ctx: 4096 })), 4096 * 4 * 256 * 2);
  assert.equal(kvBytes(info, 1, rt()), 0, 'a layer without KV heads has no cache');
  // SWA: window + ubatch, padded to 256, capped by the context
  assert.equal(kvCells(info, 0, rt({ ctx: 8192 })), 1536);
  assert.equal(kvCells(info, 0, rt({ ctx: 1000 })), 1024);
  assert.equal(kvCells(info, 0, rt({ ctx: 8192, swaFull: true })), 8192);
  // 4 slots, not unified: 4 streams of 2048 cells, each with its own window
  assert.equal(kvCells(info, 0, rt({ ctx: 8192, parallel: 4 })), 4 * 1536);
  // unified: one stream whose window covers all slots
  assert.equal(kvCells(info, 0, rt({ ctx: 8192, parallel: 4, kvUnified: true })), 4608);
  assert.equal(kvCells(info, 1, rt({ ctx: 8192, parallel: 4 })), 8192);
  // q8_0 cache
  assert.equal(kvBytes(info, 2, rt({ ctx: 4096, kvElementBytes: 34 / 32 })), 4096 * 4 * 256 * (34 / 32));
  // The parts against hand-computed values, and the total through what each input adds to it (not a restated sum).
  const p4k = rt({ ctx: 4096, parallel: 1 });
  const m = rankMemory(info, 0, 4, true, p4k);
  assert.equal(m.weights, 4 * 0.5 * GB + 1 * GB, 'four 0.5 GB layers and the 1 GB head');
  assert.equal(m.kv, (1536 * 8 + 0 + 4096 * 4 + 1536 * 8) * 256 * 2, 'SWA layers 1536 cells, the full layer 4096, f16 K+V');
  assert.equal(m.output, 32000 * 4, 'one slot of f32 logits');
  const added = (o: Partial<ModelInfo>, head = true) => rankMemory({ ...info, ...o }, 0, 4, head, p4k).total - m.total;
  assert.equal(added({ layerWeights: [0.5 * GB + 1e6, 0.5 * GB, 0.5 * GB, 0.5 * GB] }), 1e6, 'a layer weight counts once');
  assert.equal(added({ layerRepacked: [0, 2e6, 0, 0] }), 2e6, 'repacked copies count on top');
  assert.equal(added({ recurrentState: [3e6, 0, 0, 0] }), 3e6, 'recurrent state, one slot');
  assert.equal(added({}, false), -1 * GB, 'a rank without the head drops exactly the head weights');
  assert.equal(rankMemory(info, 0, 4, true, rt({ ctx: 8192, parallel: 1 })).kv - m.kv, 4096 * 4 * 256 * 2, 'double context: only the full layer grows');
  // an untied token_embd stays paged out on a chain head (no prefetch), but is resident on a single node
  const untied = { ...info, pageableWeights: 0.4 * GB };
  assert.equal(rankMemory(untied, 0, 4, true, rt(), true).pageable, 0.4 * GB - 8 * 2 ** 20);
  assert.equal(rankMemory(untied, 0, 4, true, rt(), false).pageable, 0);
  assert.ok(rankMemory(untied, 0, 4, false, rt(), true).overhead < rankMemory(untied, 0, 4, false, rt(), false).overhead);
});

test('model info from a real header: weights are exact, gemma3 SWA pattern as llama.cpp sets it', async (t) => {
  const f = await makeFixture({ arch: 'gemma3', layers: 7, swaPattern: 3, slidingWindow: 32 });
  const m = await loadGgufModel(f);
  const info = modelInfo(m.metadata, m.tensors);
  assert.deepEqual(info.swa, [true, true, false, true, true, false, true]);
  assert.equal(info.layerWeights.reduce((a, b) => a + b, 0) + info.headWeights + info.sharedWeights, m.tensorBytes);
  const two = calculatePlan(info, n(2), rt());
  assert.equal(two.nodes.reduce((a, x) => a + x.memory.weights, 0), m.tensorBytes);

  const moe = await loadGgufModel(await makeFixture({ arch: 'qwen3moe', layers: 2, experts: 4, expertsUsed: 2, expertFf: 32, vocab: 'llama-spm' }));
  const mi = modelInfo(moe.metadata, moe.tensors);
  assert.deepEqual([mi.nExpert, mi.nExpertUsed, mi.nFf], [4, 2, [64, 64]]);

  const real = await realGemma3For(t);
  if (real) {
    const g = await loadGgufModel(real);
    const gi = modelInfo(g.metadata, g.tensors);
    // no sliding_window_pattern key: gemma3 defaults to 6 (5 SWA layers, then 1 full)
    assert.deepEqual(gi.swa.map((s) => (s ? 's' : 'F')).join(''), 'sssssFsssssFsssssF');
    assert.deepEqual([gi.nLayer, gi.nHeadKv[0], gi.keyLength[0], gi.nSwa, gi.fileType], [18, 1, 256, 512, 'Q4_K_M']);
  }
});

test('node specs', () => {
  assert.deepEqual(parseNodeSpec('alice@gpu1:2222=24G'), { user: 'alice', host: 'gpu1', port: 2222, memory: 24e9, spec: 'alice@gpu1:2222=24G' });
  assert.deepEqual(parseNodeSpec('10.0.0.5'), { host: '10.0.0.5', spec: '10.0.0.5' });
  assert.deepEqual(parseNodeSpec('[fe80::1]:22=512MiB'), { host: 'fe80::1', port: 22, memory: 512 * 1024 ** 2, spec: '[fe80::1]:22=512MiB' });
  assert.deepEqual(parseNodeList('a=1G, b ,c:23').map((x) => x.host), ['a', 'b', 'c']);
  for (const bad of ['', 'a b', 'a:0', 'a:99999', 'a=lots', 'u@@h', 'a=-1G']) {
    assert.throws(() => parseNodeList(bad), UserError, bad);
  }
});

test('byte sizes', () => {
  const rows: [string, number | undefined][] = [
    ['24G', 24e9], ['24GB', 24e9], ['24GiB', 24 * 1024 ** 3], ['1.5T', 1.5e12], ['512M', 512e6], ['100', 100], ['0G', undefined], ['x', undefined], ['5Q', undefined],
  ];
  for (const [s, want] of rows) assert.equal(parseByteSize(s), want, s);
  assert.equal(formatBytes(9.5e9), '9.5 GB');
  assert.equal(formatBytes(123), '123 B');
});
