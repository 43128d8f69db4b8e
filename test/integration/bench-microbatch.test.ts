// `llama-relay bench` with micro-batched decode on and off (chain-2 vs chain-2-nomb) on a tiny generated model: the
// default configuration set of two nodes, the nomb head started with --stage-no-microbatch (and no other process),
// both measured under load and shown side by side. Needs an engine that knows --stage-no-microbatch (the `mb` patches)
// and --stage-groups (slot groups: the default set's chain-2-nogroups starts its head, and only it, with --stage-groups 1).
// Structure only, never timings.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { positive } from '../helpers/assert-number.js';
import { binDirs } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';
import { carrying, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-bench-mb')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});


test('bench: chain-2-nomb runs the head without micro-batched decode, chain-2-nogroups with --stage-groups 1, next to chain-2, at 1, 2 and 4 requests', { timeout: 600_000 }, async () => {
  const model = join(dir, 'bench-mb.gguf');
  copyFileSync(await makeFixture({ arch: 'llama', layers: 4, embd: 128, heads: 4, headsKv: 2, ff: 256, seed: 606 }), model);
  const dirs = await binDirs();
  const json = join(dir, 'bench.json');
  const p = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/llama-relay.js'), 'bench', model,
      '-n', '2', '--prompt-tokens', '48', '--gen-tokens', '8', '--parallel', '1,2,4', '--repeat', '1',
      '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock, '--json', json, '--quiet',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } },
  );
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  // Which processes carried the switch, seen while they ran: the nomb head, and only it (and --stage-groups: the nogroups head).
  const switched = new Set<string>();
  const grouped = new Set<string>();
  let running = true;
  void exited.then(() => (running = false));
  while (running) {
    for (const { args } of carrying(dir)) if (args.includes('--stage-no-microbatch')) switched.add(/--layer-range (\S+)/.exec(args)?.[1] ?? args);
    for (const { args } of carrying(dir)) {
      const groups = /--stage-groups (\S+)/.exec(args)?.[1];
      if (groups !== undefined) grouped.add(`${/--layer-range (\S+)/.exec(args)?.[1] ?? args} --stage-groups ${groups}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const code = await exited;
  // a failed configuration makes bench exit 1: name it (its error is in the report)
  const failed = (() => {
    try {
      return (JSON.parse(readFileSync(json, 'utf8')) as BenchReport).configs.filter((c) => c.error).map((c) => `${c.id}: ${c.error}`);
    } catch {
      return [];
    }
  })();
  assert.equal(code, 0, `${stderr}\n${failed.join('\n')}\n${stdout.slice(-2000)}`);
  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  // the 2-rank split is the planner's (the head's output layer counted), the same for every 2-rank configuration
  const head = r.configs.find((c) => c.id === 'chain-2')!.nodes[0]!.layers.join(':');
  assert.match(head, /^0:[1-3]$/);
  assert.deepEqual([...switched], [head], `only a head (layers ${head}) got --stage-no-microbatch`);
  assert.deepEqual([...grouped], [`${head} --stage-groups 1`], `only a head (layers ${head}) got --stage-groups, with 1`);

  assert.deepEqual(r.configs.map((c) => c.id), ['stock', 'chain-1', 'chain-2', 'chain-2-nopipe', 'chain-2-noenc', 'chain-2-nomb', 'chain-2-nogroups', 'rpc-2']);
  for (const c of r.configs) assert.equal(c.error, undefined, `${c.id}: ${c.error}`);
  const nomb = r.configs.find((c) => c.id === 'chain-2-nomb')!;
  assert.equal(nomb.microbatch, false);
  assert.deepEqual(nomb.measurements.map((m) => m.parallel), [1, 2, 4]);
  for (const m of nomb.measurements) {
    for (const k of ['aggregateDecodeTps', 'perRequestDecodeTps'] as const) positive(m[k].median, `nomb x${m.parallel} ${k}`);
    assert.equal(m.samples[0]!.generatedTokens, 8 * m.parallel);
  }
  const mb = r.onOff.filter((x) => x.off === 'chain-2-nomb');
  assert.deepEqual(mb.map((x) => [x.feature, x.on, x.parallel]), [['micro-batched decode', 'chain-2', 1], ['micro-batched decode', 'chain-2', 2], ['micro-batched decode', 'chain-2', 4]]);
  for (const x of mb) positive(x.aggregateDecodeTps.ratio, `on/off x${x.parallel}`);
  assert.ok(r.findings.some((f) => f.name === 'chain-2 aggregate decode, micro-batching on vs off, parallel 4' && f.value !== undefined));
  assert.match(stdout, /^micro-batched decode\s+chain-2 \/ chain-2-nomb\s+48\s+4\s/m);
  assert.match(stdout, /^chain-2-nomb\s+[\d.]+ \([\d.]+x\)\s+[\d.]+ \([\d.]+x\)\s+[\d.]+ \([\d.]+x\)$/m);
  // Slot groups on vs off, the same way (no target: a measurement).
  const nogroups = r.configs.find((c) => c.id === 'chain-2-nogroups')!;
  assert.equal(nogroups.groups, 1);
  assert.deepEqual(nogroups.measurements.map((m) => m.parallel), [1, 2, 4]);
  for (const m of nogroups.measurements) positive(m.aggregateDecodeTps.median, `nogroups x${m.parallel} aggregate decode`);
  const g = r.onOff.filter((x) => x.off === 'chain-2-nogroups');
  assert.deepEqual(g.map((x) => [x.feature, x.on, x.parallel]), [['slot groups', 'chain-2', 1], ['slot groups', 'chain-2', 2], ['slot groups', 'chain-2', 4]]);
  assert.ok(r.findings.some((f) => f.name === 'chain-2 aggregate decode, slot groups on vs off, parallel 4' && f.value !== undefined && f.target === undefined));
  assert.match(stdout, /^slot groups\s+chain-2 \/ chain-2-nogroups\s+48\s+4\s/m);
  assert.deepEqual(await survivorsAfter(dir, 5_000), [], 'bench left processes running');
});
