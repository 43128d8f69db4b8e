// The speed-aware planner and its prediction, table-style on synthetic models: measured speeds, budgets, a GPU node,
// an infeasible case, the single-node verdict; and the speed cache built from a real chain timing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rankMemory, type RuntimeParams } from '../../src/plan/memory.js';
import { MB, planModel as model, planRuntime as rt, spans } from '../helpers/plan-model.js';
import { offload, PlanError } from '../../src/plan/planner.js';
import { lookupSpeed, mergeRecords, recordsFromChainStats, type SpeedRecord } from '../../src/plan/speed-cache.js';
import { predictDecode, type NodeSpeed } from '../../src/plan/speed-model.js';
import { planOneSpeed, planOnSpeed, withPrediction, type SpeedNodeInput } from '../../src/plan/speed-planner.js';
import { planRanges } from '../../src/plan/planner.js';

const GB = 1e9;

// 1 ns a byte: a 100 MB layer takes 100 ms.
const FAST: NodeSpeed = { secondsPerByte: 1e-9 };
const SLOW: NodeSpeed = { secondsPerByte: 3e-9 };

/** Every contiguous split of L layers over 2 nodes, for brute-force checks. */
const allSplits2 = (L: number) => Array.from({ length: L - 1 }, (_, k) => [{ layerStart: 0, layerEnd: k + 1 }, { layerStart: k + 1, layerEnd: L }]);

describe('speed-aware planner', () => {
  it('table: speeds, budgets and the objective choose the split; predictions add up', () => {
    const info = model();
    const big = 100 * GB;
    const rows: { what: string; nodes: SpeedNodeInput[]; p?: Partial<RuntimeParams>; hop?: number; want: string; tokPerS?: number }[] = [
      // One request at a time: the fast node takes all it can; the slow one keeps the one layer it must.
      { what: 'fast head, slow worker', nodes: [{ name: 'a', speed: FAST }, { name: 'b', speed: SLOW }], want: '0:19,19:20', tokPerS: 1 / (0.4 + 1.9 + 0.3) },
      { what: 'slow head, fast worker', nodes: [{ name: 'a', speed: SLOW }, { name: 'b', speed: FAST }], want: '0:1,1:20' },
      // The head's output part counts: measured as 50 ms, the slow head is cheaper than by its bytes (1.2 s).
      { what: 'measured output part', nodes: [{ name: 'a', speed: { ...SLOW, outputSeconds: 0.05 } }, { name: 'b', speed: FAST }], want: '0:1,1:20', tokPerS: 1 / (0.3 + 0.05 + 1.9) },
      // A budget bounds the fast node: the rest goes to the slow one.
      {
        what: 'fast node over budget',
        nodes: [{ name: 'a', speed: FAST, memory: rankMemory(info, 0, 10, true, rt(), true).total }, { name: 'b', speed: SLOW, memory: big }],
        want: '0:10,10:20',
      },
      // Parallel slots (pipelined): the slowest stage decides: 0.4 + k*0.1 vs (20-k)*0.3 -> k = 14.
      { what: 'stage objective', nodes: [{ name: 'a', speed: FAST }, { name: 'b', speed: SLOW }], p: { parallel: 4 }, want: '0:14,14:20' },
      // Equal speeds, one request: any split costs the same; the tie goes to the balanced stages (head's output counted).
      { what: 'equal speeds', nodes: [{ name: 'a', speed: FAST }, { name: 'b', speed: FAST }], want: '0:8,8:20' },
      { what: 'hops add latency', nodes: [{ name: 'a', speed: FAST }, { name: 'b', speed: SLOW }], hop: 0.01, want: '0:19,19:20', tokPerS: 1 / (2.6 + 0.02) },
    ];
    for (const r of rows) {
      const runtime = rt(r.p);
      const plan = planOnSpeed(info, r.nodes, runtime, { hopSeconds: r.hop ?? 0, objective: runtime.parallel > 1 ? 'stage' : 'token' });
      assert.equal(spans(plan), r.want, r.what);
      assert.equal(plan.placement, 'speed');
      if (r.tokPerS !== undefined) assert.ok(Math.abs(plan.prediction!.decodeTokensPerSecond - r.tokPerS) < 1e-9, `${r.what}: ${plan.prediction!.decodeTokensPerSecond} vs ${r.tokPerS}`);
    }
  });

  it('the chosen split is the best of all splits by brute force (time per token, then the slowest stage)', () => {
    const info = model({ nLayer: 12, layerWeights: [30, 70, 50, 90, 20, 60, 80, 40, 10, 100, 55, 65].map((x) => x * MB) });
    for (const [a, b] of [[FAST, SLOW], [SLOW, FAST], [FAST, FAST], [{ secondsPerByte: 2e-9, outputSeconds: 0.01 }, FAST]] as const) {
      for (const parallel of [1, 2]) {
        const plan = planOnSpeed(info, [{ name: 'a', speed: a }, { name: 'b', speed: b }], rt({ parallel }), { hopSeconds: 0, objective: parallel > 1 ? 'stage' : 'token' });
        const key = (r: { layerStart: number; layerEnd: number }[]) => {
          const p = predictDecode(info, r, [a, b], 0)!;
          return parallel > 1 ? [p.stageSeconds, p.tokenSeconds] : [p.tokenSeconds, p.stageSeconds];
        };
        const got = key(plan.nodes.map((n) => ({ layerStart: n.layerStart, layerEnd: n.layerEnd })));
        for (const s of allSplits2(12)) {
          const k = key(s);
          const better = k[0]! < got[0]! * (1 - 1e-9) || (Math.abs(k[0]! - got[0]!) <= 1e-9 * got[0]! && k[1]! < got[1]! * (1 - 1e-9));
          assert.ok(!better, `parallel ${parallel}: ${s.map((x) => `${x.layerStart}:${x.layerEnd}`)} beats ${spans(plan)}`);
        }
      }
    }
  });

  it('one machine\'s ranks (relative speeds) get compute-balanced ranges and no tok/s prediction', () => {
    const plan = planOnSpeed(model(), [{ name: 'local', speed: { secondsPerByte: 1 } }, { name: 'local', speed: { secondsPerByte: 1 } }], rt(), { hopSeconds: 0, objective: 'token', relative: true });
    assert.equal(spans(plan), '0:8,8:20'); // head: 8 layers + the 400 MB output = 1.2 GB vs 12 layers = 1.2 GB
    assert.equal(plan.placement, 'compute');
    assert.equal(plan.prediction, undefined);
  });

  it('planOneSpeed (plan on one machine, every bench configuration): compute balanced, the head\'s output counted, at 1 and 4 slots', () => {
    for (const parallel of [1, 4]) {
      const plan = planOneSpeed(model(), [{ name: 'a' }, { name: 'b' }], rt({ parallel }));
      assert.equal(spans(plan), '0:8,8:20', `parallel ${parallel}`);
      assert.equal(plan.placement, 'compute');
    }
    assert.equal(spans(planOneSpeed(model(), [{ name: 'a' }, { name: 'b' }, { name: 'c' }], rt({ parallel: 4 }))), '0:4,4:12,12:20'); // head 4 + 4 (output) vs 8 vs 8
  });

  it('no split fits: the memory planner\'s message with the best split found', () => {
    const info = model();
    assert.throws(
      () => planOnSpeed(info, [{ name: 'a', speed: FAST, memory: 500 * MB }, { name: 'b', speed: SLOW, memory: 500 * MB }], rt(), { hopSeconds: 0, objective: 'token' }),
      (e: unknown) => e instanceof PlanError && /^the model does not fit: weights [\d.]+ GB/.test(e.message) && /node 1 \(b\): layers \d+ - 19 need/.test(e.message),
    );
  });

  it('single-node verdict: a node that holds the whole model alone and is faster than the split', () => {
    const info = model();
    const whole = rankMemory(info, 0, 20, true, rt()).total;
    // The fast node can hold everything: alone it does 2.4 s a token vs the split's 2.6 s.
    const plan = planOnSpeed(info, [{ name: 'a', speed: SLOW, memory: whole }, { name: 'gpu1', speed: FAST, memory: whole }], rt(), { hopSeconds: 0.001, objective: 'token' });
    assert.equal(spans(plan), '0:1,1:20');
    assert.deepEqual(plan.alone, { node: 'gpu1', decodeTokensPerSecond: 1 / 2.4 });
    assert.ok(plan.prediction!.decodeTokensPerSecond < 1 / 2.4);
    // Without a budget no node is known to hold it alone: no verdict.
    assert.equal(planOnSpeed(info, [{ name: 'a', speed: SLOW }, { name: 'b', speed: FAST }], rt(), { hopSeconds: 0, objective: 'token' }).alone, undefined);
    // A manual split gets the same prediction and verdict.
    const manual = withPrediction(planRanges(info, [{ name: 'a', memory: whole }, { name: 'gpu1', memory: whole }], [{ layerStart: 0, layerEnd: 10 }, { layerStart: 10, layerEnd: 20 }], rt()), info, [SLOW, FAST], 0);
    assert.ok(Math.abs(manual.prediction!.tokenSeconds - (3 * 0.4 + 3 + 1)) < 1e-9);
    assert.equal(manual.alone?.node, 'gpu1');
  });

  it('GPU node: the range\'s last layers go on the GPU up to its free memory, the rest stays in RAM', () => {
    const info = model();
    const gpu = (freeBytes: number) => ({ name: 'CUDA0', freeBytes, unified: false });
    const rows: [number, number][] = [[0, 0], [150 * MB, 0], [GB, 9], [10 * GB, 10]];
    for (const [free, want] of rows) {
      const o = offload(info, 10, 20, rt(), gpu(free));
      assert.equal(o.layers, want, `${free} bytes free`);
      assert.ok(o.bytes <= free);
    }
    const plan = planRanges(info, [{ name: 'cpu' }, { name: 'gpu1', gpu: gpu(GB), memory: 8 * GB }], [{ layerStart: 0, layerEnd: 10 }, { layerStart: 10, layerEnd: 20 }], rt());
    assert.equal(plan.nodes[0]!.offload, undefined);
    assert.deepEqual({ ...plan.nodes[1]!.offload, bytes: 0 }, { device: 'CUDA0', layers: 9, bytes: 0 });
  });
});

describe('speed cache', () => {
  // A real chain timing: `up gemma-3-270m --nodes local,local --max-tokens 128 --json` on this machine (layers 0:1, 1:18).
  const stats = { ranks: [{ rank: 0, computeMsPerToken: 1.874 }, { rank: 1, computeMsPerToken: 41.061 }], hopMs: 0.568, roundTripMsPerToken: 42.198 };
  const info = model({ nLayer: 18 });
  const key = { binary: '/b/llama-server', model: '/m.gguf (1 bytes)', at: '2026-12-04T20:00:00.000Z' };

  it('a calibration run becomes one record per node: seconds per byte of layers, the head\'s output part, the hop', () => {
    const recs = recordsFromChainStats(info, [{ node: 'a', layerStart: 0, layerEnd: 1 }, { node: 'b', layerStart: 1, layerEnd: 18 }], stats, 104.8, key);
    assert.equal(recs.length, 2);
    assert.ok(Math.abs(recs[0]!.secondsPerByte - 1.874e-3 / (100 * MB)) < 1e-18);
    assert.ok(Math.abs(recs[0]!.outputSeconds! - (104.8 - 1.874 - 42.198) / 1000) < 1e-12);
    assert.ok(Math.abs(recs[1]!.secondsPerByte - 41.061e-3 / (1700 * MB)) < 1e-18);
    assert.equal(recs[1]!.outputSeconds, undefined);
    assert.equal(recs[1]!.hopSeconds, 0.568 / 1000);
    // The prediction of the measured split gives back the measured decode time (less what the model does not see).
    const speeds = recs.map((r) => ({ secondsPerByte: r.secondsPerByte, ...(r.outputSeconds !== undefined ? { outputSeconds: r.outputSeconds } : {}) }));
    const p = predictDecode(info, [{ layerStart: 0, layerEnd: 1 }, { layerStart: 1, layerEnd: 18 }], speeds, 0.568e-3)!;
    assert.ok(Math.abs(p.tokenSeconds * 1000 - (104.8 - 42.198 + 41.061 + 2 * 0.568)) < 1e-6);
    // Two ranks on one node: one record, their compute over their bytes together.
    const same = recordsFromChainStats(info, [{ node: 'local', layerStart: 0, layerEnd: 1 }, { node: 'local', layerStart: 1, layerEnd: 18 }], stats, 104.8, key);
    assert.equal(same.length, 1);
    assert.equal(same[0]!.layers, '0:1,1:18');
    assert.ok(Math.abs(same[0]!.secondsPerByte - (1.874 + 41.061) / 1000 / (1800 * MB)) < 1e-18);
    // The run's batch gain goes on every node's record, where the run measured one.
    assert.ok(recs.every((r) => r.batchGain === undefined));
    const batched = recordsFromChainStats(info, [{ node: 'a', layerStart: 0, layerEnd: 1 }, { node: 'b', layerStart: 1, layerEnd: 18 }], stats, 104.8, key, { batchGain: 1.28 });
    assert.deepEqual(batched.map((r) => r.batchGain), [1.28, 1.28]);
  });

  it('lookup prefers the binary measured, else the newest; a fresh record replaces its (node, binary, model)', () => {
    const r = (node: string, binary: string, at: string, spb = 1e-9): SpeedRecord => ({ node, binary, model: 'm', secondsPerByte: spb, measuredAt: at, layers: '0:1', computeMsPerToken: 1 });
    const recs = [r('a', 'x', '2026-01-01'), r('a', 'y', '2026-02-01'), r('b', 'x', '2026-01-01')];
    assert.equal(lookupSpeed(recs, 'a', 'm', 'x')?.binary, 'x');
    assert.equal(lookupSpeed(recs, 'a', 'm')?.binary, 'y');
    assert.equal(lookupSpeed(recs, 'a', 'm', 'z')?.binary, 'y');
    assert.equal(lookupSpeed(recs, 'c', 'm'), undefined);
    assert.equal(lookupSpeed(recs, 'a', 'other'), undefined);
    const merged = mergeRecords(recs, [r('a', 'x', '2026-03-01', 5e-9)]);
    assert.equal(merged.length, 3);
    assert.equal(lookupSpeed(merged, 'a', 'm', 'x')?.secondsPerByte, 5e-9);
  });
});
