// `llama-relay bench` end to end on a tiny generated model: every configuration runs and reports positive
// numbers. Structure only, never timings (they depend on the machine).
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

// This run's marker: every process the bench starts carries the dir, in its argv (the model) or its environment (TMPDIR).
const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-bench')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});

const positive = (x: unknown, what: string) => assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${what} = ${String(x)}`);

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
  let running = true;
  void exited.then(() => (running = false));
  while (running) {
    for (const { args } of carrying(dir)) seen.add(/\/(llama-server|ggml-rpc-server) /.exec(args)?.[1] ?? '');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await exited, 0, stderr);
  assert.ok(seen.has('llama-server') && seen.has('ggml-rpc-server'), `the marker query saw ${[...seen].join(', ')} while the bench ran`);

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
      for (const k of ['ttftMs', 'prefillTps', 'decodeTps'] as const) positive(m[k].median, `${c.id} ${k}`);
      positive(m.decodeMsPerToken, `${c.id} decodeMsPerToken`);
      assert.equal(m.samples.length, 1);
      assert.equal(m.samples[0]!.generatedTokens, 8 * m.parallel);
      assert.equal(m.samples[0]!.promptTokens, 64 * m.parallel);
    }
    // Every inter-node link goes through a relay that counts its bytes.
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
  for (const name of ['chain-3 decode vs stock', 'chain-3 decode vs rpc-3', 'chain-3 prefill, pipelining on vs off']) {
    positive(r.findings.find((f) => f.name === name)?.value, name);
  }
  for (const id of ids) assert.match(stdout, new RegExp(`^${id}\\s`, 'm'));
  const svg = readFileSync(chart, 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
  for (const id of ids) assert.ok(svg.includes(`>${id}`), `chart has ${id}`);
  assert.deepEqual(await survivorsAfter(dir, 5_000), [], 'bench left processes running');
});
