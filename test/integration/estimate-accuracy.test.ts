// The planner's memory estimate for a whole-model rank is within ±10% of the stock llama-server's peak RSS.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { loadGgufModel } from '../../src/gguf/model.js';
import { DEFAULT_RUNTIME, rankMemory, type RuntimeParams } from '../../src/plan/memory.js';
import { modelInfo } from '../../src/plan/model-info.js';
import { makeFixture, type FixtureOptions } from '../helpers/fixtures.js';
import { realGemma3For } from '../helpers/real-model.js';
import { startStockServer } from '../helpers/stock-server.js';

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(m, 'VmHWM in /proc/<pid>/status');
  return Number(m[1]) * 1024;
}

async function check(model: string, rt: Partial<RuntimeParams>): Promise<void> {
  const g = await loadGgufModel(model);
  const info = modelInfo(g.metadata, g.tensors);
  const runtime = { ...DEFAULT_RUNTIME, ...rt };
  const est = rankMemory(info, 0, info.nLayer, true, runtime).total;
  const args = ['-c', String(runtime.ctx), '--parallel', String(runtime.parallel), '-t', '2'];
  if (runtime.kvUnified) args.push('--kv-unified');
  const server = await startStockServer(model, args);
  let rss: number;
  try {
    await server.completion('Once upon a time, in a land far away, there lived a', 16);
    rss = await peakRss(server.pid);
  } finally {
    await server.stop();
  }
  const err = (est - rss) / rss;
  process.stderr.write(`estimate ${info.arch} ${JSON.stringify(rt)}: est ${(est / 2 ** 20).toFixed(1)} MiB, peak RSS ${(rss / 2 ** 20).toFixed(1)} MiB, ${(err * 100).toFixed(1)}%\n`);
  assert.ok(Math.abs(err) <= 0.1, `estimate ${est} vs peak RSS ${rss}: ${(err * 100).toFixed(1)}%`);
}

const fixtures: [FixtureOptions, Partial<RuntimeParams>][] = [
  [{ arch: 'llama', layers: 8, embd: 256, heads: 4, headsKv: 2, ff: 512 }, { ctx: 4096 }],
  [{ arch: 'qwen2', layers: 4, embd: 128, heads: 4, headsKv: 2, ff: 256, type: 'f16' }, { ctx: 8192, parallel: 2 }],
  [{ arch: 'gemma3', layers: 12, embd: 256, heads: 4, headsKv: 1, ff: 512, headDim: 64, slidingWindow: 128 }, { ctx: 4096 }],
];

for (const [f, rt] of fixtures) {
  test(`memory estimate within 10% of stock llama-server: ${f.arch} fixture ${JSON.stringify(rt)}`, async () => {
    await check(await makeFixture(f), rt);
  });
}

test('memory estimate within 10% of stock llama-server: real Gemma 3 270M', async (t) => {
  const real = await realGemma3For(t);
  if (!real) return;
  await check(real, { ctx: 4096 });
  await check(real, { ctx: 16384, parallel: 2 });
});
