// Per-rank memory estimates of a plan are within ±10% of each chain rank's measured peak RSS (patched engine).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadGgufModel } from '../../src/gguf/model.js';
import { DEFAULT_RUNTIME } from '../../src/plan/memory.js';
import { modelInfo } from '../../src/plan/model-info.js';
import { calculatePlan } from '../../src/plan/planner.js';
import { complete, startChain } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { realGemma3For } from '../helpers/real-model.js';

async function checkChain(model: string, nodes: number): Promise<void> {
  const g = await loadGgufModel(model);
  const info = modelInfo(g.metadata, g.tensors);
  const runtime = { ...DEFAULT_RUNTIME, ctx: 4096, parallel: 1 };
  const plan = calculatePlan(info, Array.from({ length: nodes }, (_, i) => ({ name: `n${i}` })), runtime);
  const ranges = plan.nodes.map((n) => [n.layerStart, n.layerEnd] as [number, number]);
  const chain = await startChain(model, ranges, ['-c', String(runtime.ctx), '--parallel', String(runtime.parallel)]);
  const errors: string[] = [];
  try {
    await complete(chain.port, { prompt: 'Once upon a time, in a land far away, there lived a', n_predict: 16 });
    for (const [i, r] of chain.ranks.entries()) {
      const status = readFileSync(`/proc/${r.proc.child.pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
      const est = plan.nodes[i]!.memory.total;
      const err = (est - hwm) / hwm;
      const line = `${info.arch} rank ${i} [${r.range.join(':')}]: est ${(est / 2 ** 20).toFixed(1)} MiB, peak RSS ${(hwm / 2 ** 20).toFixed(1)} MiB, ${(err * 100).toFixed(1)}%`;
      process.stderr.write(`${line}\n`);
      if (Math.abs(err) > 0.1) errors.push(line);
    }
  } finally {
    await chain.stop();
  }
  assert.deepEqual(errors, []);
}

test('per-rank estimates match chain ranks: llama fixture, 2 and 3 ranks', async () => {
  const f = await makeFixture({ arch: 'llama', layers: 8, embd: 512, heads: 8, headsKv: 4, ff: 1536, seed: 7 });
  await checkChain(f, 2);
  await checkChain(f, 3);
});

test('per-rank estimates match chain ranks: real Gemma 3 270M, 3 ranks', async (t) => {
  const real = await realGemma3For(t);
  if (!real) return;
  await checkChain(real, 3);
});
