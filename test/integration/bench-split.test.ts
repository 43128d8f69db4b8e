// `bench --split` end to end on a tiny generated model: the two-rank chain and RPC run on the ranges given (the report
// and the servers' own command lines say so), at link latency 0 with no relay between the processes and their bytes
// still counted; a bad split is refused before anything starts. Without a split, the speeds `plan --probe` left in
// the speed cache place the layers. Structure only, no timings.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { loadGgufModel } from '../../src/gguf/model.js';
import { DEFAULT_RUNTIME } from '../../src/plan/memory.js';
import { modelInfo } from '../../src/plan/model-info.js';
import { modelKey, type SpeedRecord } from '../../src/plan/speed-cache.js';
import { planOneSpeed } from '../../src/plan/speed-planner.js';
import { binDirs } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';
import { carrying, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';
import { linkArgs, type LinkArgs } from '../helpers/bench-links.js';
import { positive } from '../helpers/assert-number.js';

const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-bench-split')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});

// A speed cache of this test's own: the user's is never read or written.
const speedCache = join(dir, 'speeds.json');

function bench(args: string[]) {
  const env = { ...process.env, TMPDIR: dir, LLAMA_RELAY_SPEED_CACHE: speedCache };
  const p = spawn(process.execPath, [join(repoRoot, 'bin/llama-relay.js'), 'bench', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env });
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
  // 512 tokens: a decode well longer than reading the kernel's counters at the first token takes (12-17 ms, more on a
  // busy machine). 64 tokens of this tiny model could end inside that reading, leaving no decode bytes to count.
  const run = bench([
    model, '-n', '2', '--split', '0:1,1:6', '--only', 'chain-2,rpc-2', '--prompt-tokens', '32', '--gen-tokens', '512', '--parallel', '1', '--repeat', '1',
    '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock, '--json', json,
  ]);
  const ranges = new Set<string>();
  // Per process seen, what its command line says about its links (the default link latency, 0: no relays).
  const links = new Map<number, LinkArgs>();
  let running = true;
  void run.exit.then(() => (running = false));
  while (running) {
    for (const { pid, args } of carrying(dir)) {
      for (const m of args.matchAll(/--layer-range (\d+:\d+)/g)) ranges.add(m[1]!);
      links.set(pid, linkArgs(args));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await run.exit, 0, run.stderr());
  assert.match(run.stderr(), /the 2-rank configurations use the split given, 0:1,1:6/);
  assert.deepEqual([...ranges].sort(), ['0:1', '1:6'], 'the chain ranks\' own command lines');
  // At link latency 0 nothing sits between the ranks: each dials the other's listen port, the RPC head its servers' ports.
  const seen = [...links.values()];
  const rank = (layers: string) => seen.find((l) => l.layers === layers && l.listen !== undefined);
  const [head, tail] = [rank('0:1'), rank('1:6')];
  assert.ok(head && tail, `both chain ranks seen: ${JSON.stringify(seen)}`);
  assert.equal(head.next, tail.listen, 'the chain head dials rank 1 directly');
  assert.equal(tail.next, head.listen, 'rank 1 dials the head directly');
  const rpcPorts = seen.flatMap((l) => (l.rpcServerPort === undefined ? [] : [l.rpcServerPort]));
  const rpcHead = seen.find((l) => l.rpcEndpoints);
  assert.equal(rpcPorts.length, 1, 'one ggml-rpc-server seen');
  assert.deepEqual(rpcHead?.rpcEndpoints, [`127.0.0.1:${rpcPorts[0]}`], 'the RPC head dials its server directly');
  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  for (const c of r.configs) {
    assert.equal(c.error, undefined, `${c.id}: ${c.error}`);
    assert.deepEqual(c.nodes.map((n) => n.layers), [[0, 1], [1, 6]], c.id);
    // The bytes of the direct links come from the kernel's counters: still measured, and nothing held them.
    assert.equal(c.networkMeasured, true, c.id);
    assert.equal(c.links.length, c.kind === 'chain' ? 2 : 1, `${c.id} links`);
    positive(c.startBytes, `${c.id} startBytes`);
    for (const m of c.measurements) positive(m.decodeBytesPerToken, `${c.id} decodeBytesPerToken`);
    for (const l of c.links) assert.equal(l.meanHeldMs, 0, `${c.id} link ${l.name} meanHeldMs`);
  }
  // RPC pushes the servers' weights at start; a chain's ranks read their own layers.
  const startOf = (id: string) => r.configs.find((c) => c.id === id)!.startBytes;
  assert.ok(startOf('rpc-2') > startOf('chain-2'), `rpc-2 ${startOf('rpc-2')} B at start vs chain-2 ${startOf('chain-2')} B`);
  assert.deepEqual(await survivorsAfter(dir, 5000), []);

  const bad = bench([model, '-n', '2', '--layers-per-node', '1,4', '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock]);
  assert.equal(await bad.exit, 2);
  assert.match(bad.stderr(), /--layers-per-node 1,4 adds up to 5 layers but the model has 6/);
});

test('bench places the layers on the speeds plan --probe measured, as up does', { timeout: 600_000 }, async () => {
  const model = join(dir, 'measured.gguf');
  copyFileSync(await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256, seed: 507 }), model);
  const gguf = await loadGgufModel(model);
  const info = modelInfo(gguf.metadata, gguf.tensors);
  // By bytes the head's f32 output matrix outweighs layers; measured, it costs nothing: the measured plan halves the layers.
  const oneSpeed = planOneSpeed(info, [{ name: 'a' }, { name: 'b' }], { ...DEFAULT_RUNTIME, parallel: 1 }).nodes.map((n) => `${n.layerStart}:${n.layerEnd}`).join(',');
  assert.notEqual(oneSpeed, '0:3,3:6', 'the fixture must tell the two placements apart');
  const record: SpeedRecord = {
    node: 'local', binary: 'llama-server', model: modelKey(model, statSync(model).size), secondsPerByte: 1e-9, outputSeconds: 0,
    measuredAt: new Date().toISOString(), layers: '0:3,3:6', computeMsPerToken: 1,
  };
  writeFileSync(speedCache, JSON.stringify({ version: 1, records: [record], devices: {}, links: [] }));
  const dirs = await binDirs();
  const json = join(dir, 'measured.json');
  const args = ['--only', 'chain-2', '--prompt-tokens', '32', '--gen-tokens', '4', '--parallel', '1', '--repeat', '1', '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock];
  const run = bench([model, '-n', '2', ...args, '--json', json]);
  assert.equal(await run.exit, 0, run.stderr());
  assert.match(run.stderr(), /the 2-rank configurations use 0:3,3:6, balanced on the speeds plan --probe measured/);
  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  assert.deepEqual(r.configs.find((c) => c.id === 'chain-2')?.nodes.map((n) => n.layers), [[0, 3], [3, 6]]);

  // Without a record for this model: ranks of one speed, and the run says how to place on measured speeds.
  rmSync(speedCache);
  const plain = bench([model, '-n', '2', ...args, '--json', json]);
  assert.equal(await plain.exit, 0, plain.stderr());
  assert.match(plain.stderr(), new RegExp(`the 2-rank configurations use ${oneSpeed}, balanced over ranks of one speed \\(plan --probe first`));
  assert.deepEqual(await survivorsAfter(dir, 5000), []);
});
