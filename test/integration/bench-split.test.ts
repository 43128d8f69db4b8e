// `bench --split` end to end on a tiny generated model: the two-rank chain and RPC run on the ranges given (the report
// and the servers' own command lines say so); a bad split is refused before anything starts. Structure only, no timings.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { binDirs } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';
import { carrying, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-bench-split')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});

function bench(args: string[]) {
  const p = spawn(process.execPath, [join(repoRoot, 'bin/llama-relay.js'), 'bench', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } });
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  p.stdout.resume();
  const exit = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return { exit, stderr: () => stderr };
}

test('bench --split runs the two-rank configurations on the ranges given', { timeout: 600_000 }, async () => {
  const model = join(dir, 'split.gguf');
  copyFileSync(await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256, seed: 506 }), model);
  const dirs = await binDirs();
  const json = join(dir, 'bench.json');
  const run = bench([
    model, '-n', '2', '--split', '0:1,1:6', '--only', 'chain-2,rpc-2', '--prompt-tokens', '32', '--gen-tokens', '4', '--parallel', '1', '--repeat', '1',
    '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock, '--json', json,
  ]);
  const ranges = new Set<string>();
  let running = true;
  void run.exit.then(() => (running = false));
  while (running) {
    for (const { args } of carrying(dir)) for (const m of args.matchAll(/--layer-range (\d+:\d+)/g)) ranges.add(m[1]!);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await run.exit, 0, run.stderr());
  assert.match(run.stderr(), /the 2-rank configurations use the split given, 0:1,1:6/);
  assert.deepEqual([...ranges].sort(), ['0:1', '1:6'], 'the chain ranks\' own command lines');
  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  for (const c of r.configs) {
    assert.equal(c.error, undefined, `${c.id}: ${c.error}`);
    assert.deepEqual(c.nodes.map((n) => n.layers), [[0, 1], [1, 6]], c.id);
  }
  assert.deepEqual(await survivorsAfter(dir, 5000), []);

  const bad = bench([model, '-n', '2', '--layers-per-node', '1,4', '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock]);
  assert.equal(await bad.exit, 2);
  assert.match(bad.stderr(), /--layers-per-node 1,4 adds up to 5 layers but the model has 6/);
});
