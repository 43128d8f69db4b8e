// `llama-relay bench` end to end on a tiny generated model: every configuration runs and reports positive
// numbers. Structure only, never timings (they depend on the machine).
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
import { linkArgs } from '../helpers/bench-links.js';

// This run's marker: every process the bench starts carries the dir, in its argv (the model) or its environment (TMPDIR).
const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-bench')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});


test('bench runs stock, chains 1..3, chain without pipelining and RPC, and writes table, JSON and SVG', { timeout: 600_000 }, async () => {
  const model = join(dir, 'bench.gguf');
  copyFileSync(await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256, seed: 505 }), model);
  const dirs = await binDirs();
  const json = join(dir, 'bench.json');
  const chart = join(dir, 'bench.svg');
  const p = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin/llama-relay.js'), 'bench', model,
      '-n', '3', '--prompt-tokens', '64', '--gen-tokens', '8', '--parallel', '1,2', '--repeat', '1', '--link-latency-ms', '1',
      // The default set but chain-3-nomb and chain-3-nogroups: bench-microbatch.test.ts runs those variants (with -n 2), so CI runs them once.
      '--only', 'stock,chain-1,chain-2,chain-3,chain-3-nopipe,chain-3-noenc,rpc-3',
      '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock, '--json', json, '--chart', chart, '--quiet',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } },
  );
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  // Positive control for the leftover check below: while the bench runs, the same query sees its servers.
  const seen = new Set<string>();
  // With a link latency every link goes through a relay: at no moment does a rank dial a listen port of the ranks
  // running then, or the RPC head a port its servers listen on (configurations run one after another).
  const direct: string[] = [];
  const dialled = { chain: 0, rpc: 0 };
  let running = true;
  void exited.then(() => (running = false));
  while (running) {
    const now = carrying(dir);
    for (const { args } of now) seen.add(/\/(llama-server|ggml-rpc-server) /.exec(args)?.[1] ?? '');
    const links = now.map(({ args }) => linkArgs(args));
    const listening = new Set(links.flatMap((l) => [l.listen, l.rpcServerPort === undefined ? undefined : `127.0.0.1:${l.rpcServerPort}`]));
    for (const l of links) {
      for (const to of [l.next, ...(l.rpcEndpoints ?? [])]) if (to !== undefined && listening.has(to)) direct.push(`${l.layers ?? 'rpc head'} -> ${to}`);
      // Positive controls: a rank seen with another rank up, the RPC head with a server up.
      if (l.next !== undefined && links.some((x) => x !== l && x.listen !== undefined)) dialled.chain++;
      if (l.rpcEndpoints && links.some((x) => x.rpcServerPort !== undefined)) dialled.rpc++;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await exited, 0, stderr);
  assert.ok(seen.has('llama-server') && seen.has('ggml-rpc-server'), `the marker query saw ${[...seen].join(', ')} while the bench ran`);
  assert.deepEqual(direct, [], 'links dialled without a relay at --link-latency-ms 1');
  assert.ok(dialled.chain > 0 && dialled.rpc > 0, `chain ranks and the RPC head were seen with their peers up: ${JSON.stringify(dialled)}`);

  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  const ids = ['stock', 'chain-1', 'chain-2', 'chain-3', 'chain-3-nopipe', 'chain-3-noenc', 'rpc-3'];
  assert.deepEqual(r.configs.map((c) => c.id), ids);
  for (const c of r.configs) {
    assert.equal(c.error, undefined, `${c.id}: ${c.error}`);
    assert.equal(c.nodes.length, c.ranks, c.id);
    for (const n of c.nodes) {
      positive(n.loadMs, `${c.id} rank ${n.rank} loadMs`);
      positive(n.peakRssBytes, `${c.id} rank ${n.rank} peakRssBytes`);
    }
    assert.deepEqual(c.measurements.map((m) => [m.promptTokens, m.parallel]), [[64, 1], [64, 2]]);
    for (const m of c.measurements) {
      const at = `${c.id} x${m.parallel}`;
      for (const k of ['prefillTps', 'aggregateDecodeTps', 'perRequestDecodeTps'] as const) positive(m[k].median, `${at} ${k}`);
      positive(m.ttftP50Ms, `${at} ttftP50Ms`);
      assert.ok(m.ttftP95Ms >= m.ttftP50Ms, at);
      positive(m.decodeMsPerToken, `${at} decodeMsPerToken`);
      assert.equal(m.samples.length, 1);
      const s = m.samples[0]!;
      assert.equal(s.generatedTokens, 8 * m.parallel);
      assert.equal(s.promptTokens, 64 * m.parallel);
      // One TTFT and one decode rate per request; the aggregate is the decode phase's tokens over its wall time.
      assert.equal(s.requestTtftMs.length, m.parallel, at);
      assert.equal(s.requestDecodeTps.length, m.parallel, at);
      for (const x of [...s.requestTtftMs, ...s.requestDecodeTps]) positive(x, at);
      positive(s.decodeWindowMs, `${at} decodeWindowMs`);
      assert.ok(Math.abs(s.aggregateDecodeTps - s.decodeWindowTokens / (s.decodeWindowMs / 1000)) < 1e-9 * s.aggregateDecodeTps, at);
      // Tokens counted from the server's own count: every stream's 7 after its first at most, the last stream's 7 at least.
      assert.ok(s.decodeWindowTokens >= 7 && s.decodeWindowTokens <= 7 * m.parallel, `${at} decodeWindowTokens = ${s.decodeWindowTokens}`);
      if (m.parallel === 1) {
        // One stream: its own rate is the aggregate one, by definition.
        assert.equal(s.decodeWindowTokens, 7, at);
        assert.ok(Math.abs(s.aggregateDecodeTps - s.requestDecodeTps[0]!) < 1e-9 * s.aggregateDecodeTps, at);
      }
    }
    // Every inter-node link is measured: here through the relay that delays it (at 0 ms, in the kernel's counters).
    assert.equal(c.networkMeasured, true, c.id);
    const links = c.kind === 'chain' ? (c.ranks > 1 ? c.ranks : 0) : c.kind === 'rpc' ? c.ranks - 1 : 0;
    assert.equal(c.links.length, links, `${c.id} links`);
    if (links) {
      positive(c.startBytes, `${c.id} startBytes`);
      for (const m of c.measurements) positive(m.decodeBytesPerToken, `${c.id} decodeBytesPerToken`);
      for (const l of c.links) positive(l.meanHeldMs, `${c.id} link ${l.name} meanHeldMs`);
    }
  }
  assert.ok(r.hopOverhead.some((h) => h.config === 'chain-3'));
  assert.equal(r.version, 3);
  // The scaling table: every configuration at both levels, stock's ratio 1 at each.
  assert.deepEqual(r.scaling.map((p) => `${p.config} x${p.parallel}`), ids.flatMap((id) => [`${id} x1`, `${id} x2`]));
  for (const p of r.scaling) assert.equal(p.vsStock, p.aggregateDecodeTps / r.scaling.find((x) => x.config === 'stock' && x.parallel === p.parallel)!.aggregateDecodeTps);
  // Engine features on / off: each variant next to chain-3 at both levels.
  assert.deepEqual(r.onOff.map((p) => `${p.on}/${p.off} x${p.parallel}`), ['chain-3/chain-3-nopipe x1', 'chain-3/chain-3-nopipe x2', 'chain-3/chain-3-noenc x1', 'chain-3/chain-3-noenc x2']);
  for (const p of r.onOff) positive(p.aggregateDecodeTps.ratio, `${p.off} ratio`);
  assert.match(stdout, /^config\s+prompt\s+par\s+TTFT p50 ms\s+TTFT p95 ms\s+prefill tok\/s\s+agg decode tok\/s\s+per-req decode tok\/s\s+ms\/tok/m);
  assert.match(stdout, /^ {2}agg decode tok\/s: aggregate decode/m);
  assert.match(stdout, /^Scaling, prompt 64: aggregate decode tok\/s/m);
  assert.match(stdout, /^chain-3\s+[\d.]+ \([\d.]+x\)\s+[\d.]+ \([\d.]+x\)$/m);
  assert.match(stdout, /^prefill pipelining\s+chain-3 \/ chain-3-nopipe\s+64\s+2\s/m);
  for (const name of ['chain-3 decode vs stock', 'chain-3 decode vs rpc-3', 'chain-3 prefill, pipelining on vs off']) {
    positive(r.findings.find((f) => f.name === name)?.value, name);
  }
  for (const id of ids) assert.match(stdout, new RegExp(`^${id}\\s`, 'm'));
  const svg = readFileSync(chart, 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
  for (const id of ids) assert.ok(svg.includes(`>${id}`), `chart has ${id}`);
  assert.deepEqual(await survivorsAfter(dir, 5_000), [], 'bench left processes running');
});
