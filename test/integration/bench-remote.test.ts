// `llama-relay bench` on a remote node through a real sshd on loopback, on a tiny generated model: the chain, RPC
// and stock configurations run with the remote node's processes under the wrapper, report the remote node's peak
// RSS, say network bytes are not measured on real links, and leave nothing running. Structure only, never timings.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { positive } from '../helpers/assert-number.js';
import { binDirs } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';
import { reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

const work = mkdtempSync('/tmp/lr-benchssh-');
// Every process the bench starts carries the work dir in its command line: the model, the binaries (symlinked dirs) and
// the node cache carry the marker, and ssh's control sockets (TMPDIR) live there too.
const marker = uniqueMarker('lrbench');
const cacheDirs = ['slices', 'digests'].map((d) => join(homedir(), '.cache/llama-relay', d));
const before0 = new Map(cacheDirs.map((d) => [d, new Set(existsSync(d) ? readdirSync(d) : [])]));
let sshd: TestSshd;
let model = '';
let bins = { patched: '', stock: '' };

before(async () => {
  sshd = await startSshd();
  const dirs = await binDirs();
  bins = { patched: join(work, `${marker}-patched`), stock: join(work, `${marker}-stock`) };
  symlinkSync(dirs.patched, bins.patched);
  symlinkSync(dirs.stock, bins.stock);
  const fixture = await makeFixture({ arch: 'llama', layers: 4, embd: 64, heads: 4, headsKv: 2, ff: 128, seed: 606 });
  model = join(work, `${marker}.gguf`);
  symlinkSync(fixture, model);
});

after(async () => {
  reap(work);
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
  for (const d of cacheDirs) if (existsSync(d)) for (const f of readdirSync(d)) if (!before0.get(d)!.has(f)) rmSync(join(d, f), { force: true });
});


const commonArgs = (nodes: string) => [
  join(repoRoot, 'bin/llama-relay.js'), 'bench', model, '--nodes', nodes, '--parallel', '1',
  '--patched-bin-dir', bins.patched, '--stock-bin-dir', bins.stock, '-F', sshd.configFile,
  '--node-cache', join(work, `${marker}-node-cache`), '--run-dir', work, '--ready-timeout', '120',
];

async function bench(nodes: string, extra: string[] = []): Promise<{ report: BenchReport; stdout: string; svg: string }> {
  const name = nodes.replace(/\W/g, '_').slice(-40);
  const json = join(work, `${name}.json`);
  const chart = join(work, `${name}.svg`);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...commonArgs(nodes), '--prompt-tokens', '32', '--gen-tokens', '4', '--repeat', '1', '--json', json, '--chart', chart, '--quiet', ...extra],
    { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TMPDIR: work } },
  );
  return { report: JSON.parse(readFileSync(json, 'utf8')) as BenchReport, stdout, svg: readFileSync(chart, 'utf8') };
}

function checkStructure(r: BenchReport, ids: string[], remote: string): void {
  assert.deepEqual(r.configs.map((c) => c.id), ids);
  for (const c of r.configs) {
    assert.equal(c.error, undefined, `${c.id}: ${c.error}`);
    assert.equal(c.nodes.length, c.ranks, c.id);
    for (const n of c.nodes) {
      positive(n.loadMs, `${c.id} rank ${n.rank} loadMs`);
      positive(n.peakRssBytes, `${c.id} rank ${n.rank} (${n.node}) peakRssBytes`);
    }
    assert.equal(c.measurements.length, 1, c.id);
    const m = c.measurements[0]!;
    for (const k of ['prefillTps', 'aggregateDecodeTps', 'perRequestDecodeTps'] as const) positive(m[k].median, `${c.id} ${k}`);
    positive(m.ttftP95Ms, `${c.id} ttftP95Ms`);
    assert.equal(m.samples[0]!.generatedTokens, 4);
    // No relay sits in a real link: bytes are reported as not measured (null in JSON), never as 0.
    if (c.ranks > 1) {
      assert.equal(c.networkMeasured, false, c.id);
      assert.equal(c.links.length, 0, c.id);
      assert.equal(c.startBytes, null, c.id);
      assert.equal(m.decodeBytesPerToken, null, c.id);
    }
  }
  const onRemote = r.configs.flatMap((c) => c.nodes.filter((n) => n.node === remote));
  assert.ok(onRemote.length > 0, `some process ran on ${remote}`);
}

describe('bench on a remote node over ssh', { timeout: 600_000 }, () => {
  it('local head, remote second node: stock, chains, chain without pipelining and RPC; nothing left running', async () => {
    // chain-2-nomb and chain-2-nogroups run in bench-microbatch.test.ts (once in CI); the other variants here.
    const { report, stdout, svg } = await bench(`local,${sshd.alias}`, ['--only', 'stock,chain-1,chain-2,chain-2-nopipe,chain-2-noenc,rpc-2']);
    checkStructure(report, ['stock', 'chain-1', 'chain-2', 'chain-2-nopipe', 'chain-2-noenc', 'rpc-2'], sshd.alias);
    assert.deepEqual(report.settings.nodes, ['local0', sshd.alias]);
    const rpcServer = report.configs.find((c) => c.id === 'rpc-2')!.nodes.find((n) => n.role === 'rpc-server')!;
    assert.equal(rpcServer.node, sshd.alias);
    assert.match(stdout, /^chain-2\s.*n\/m/m);
    assert.match(stdout, /network bytes not measured/);
    assert.match(svg, /network bytes not measured/);
    assert.deepEqual(await survivorsAfter(work, 10_000), []);
  });

  it('remote head (nodes from a cluster file): the stock and RPC heads get the whole model there, the chain head its slice', async () => {
    const cluster = join(work, 'cluster.txt');
    writeFileSync(cluster, `# remote head first\n${sshd.alias} mem=1G\nlocal\n`);
    const { report } = await bench(`@${cluster}`, ['--only', 'stock,chain-2,rpc-2']);
    checkStructure(report, ['stock', 'chain-2', 'rpc-2'], sshd.alias);
    for (const c of report.configs) assert.equal(c.nodes.find((n) => n.rank === 0)!.node, sshd.alias, c.id);
    assert.deepEqual(await survivorsAfter(work, 10_000), []);
  });

  /**
   * Starts a long chain-2 run and resolves once it measures: both ranks up, rank 1 under the wrapper on the ssh node.
   * One round (each round restarts the ranks): after the short first point, the second generates for a long while.
   */
  async function measuringRun() {
    const p = spawn(process.execPath, [...commonArgs(`local,${sshd.alias}`), '--only', 'chain-2', '--prompt-tokens', '32,40', '--gen-tokens', '20000', '--repeat', '1'], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, TMPDIR: work },
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const exit = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    assert.ok(await waitFor(() => /\[chain-2\] prompt 32 x1 #1:/.test(err) || p.exitCode !== null, 120_000), err);
    assert.equal(p.exitCode, null, err);
    return { p, exit, stderr: () => err };
  }

  it('Ctrl-C while a configuration runs on the remote node: the bench stops and leaves nothing running there or here', async () => {
    const run = await measuringRun();
    run.p.kill('SIGINT');
    assert.notEqual(await run.exit, 0, run.stderr());
    assert.match(run.stderr(), /interrupted/);
    assert.deepEqual(await survivorsAfter(work, 15_000), []);
  });

  it('a dropped ssh connection: the configuration fails with the node named, and the wrapper stops the remote rank', async () => {
    const run = await measuringRun();
    assert.ok(sshd.dropConnections() > 0);
    assert.equal(await run.exit, 1, run.stderr());
    assert.match(run.stderr(), /\[chain-2\] FAILED: chain-2 rank 1 on relaynode exited during the measurement/);
    assert.doesNotMatch(run.stderr(), /command: ssh /, 'the server command is shown, not the ssh wrapper');
    assert.deepEqual(await survivorsAfter(work, 20_000), []);
  });
});
