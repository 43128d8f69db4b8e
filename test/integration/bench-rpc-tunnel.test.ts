// `bench --nodes` never exposes ggml-rpc-server (no authentication) on a network address (issue 14 item 5): every
// server binds its node's loopback, and the RPC head reaches it through ssh (a forward from this machine, a reverse
// forward to a remote head, or both chained). Over a real sshd on loopback, on a tiny generated model; structure only.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { binDirs } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { sshConfigIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-benchrpc');
const cacheDirs = ['slices', 'digests'].map((d) => join(homedir(), '.cache/llama-relay', d));
const before0 = new Map(cacheDirs.map((d) => [d, new Set(existsSync(d) ? readdirSync(d) : [])]));
let sshd: TestSshd;
/** The test's ssh config: the sshd's, plus a second alias for the same server (a second "remote node"). */
let sshConfig = '';
let model = '';
let bins = { patched: '', stock: '' };

before(async () => {
  sshd = await startSshd();
  sshConfig = sshConfigIn(work, sshd, ['relaynode-b']);
  const dirs = await binDirs();
  // The binaries and the model are reached through the work dir, so every process the bench starts carries its path.
  bins = { patched: join(work.path, 'patched'), stock: join(work.path, 'stock') };
  symlinkSync(dirs.patched, bins.patched);
  symlinkSync(dirs.stock, bins.stock);
  model = join(work.path, 'model.gguf');
  symlinkSync(await makeFixture({ arch: 'llama', layers: 4, embd: 64, heads: 4, headsKv: 2, ff: 128, seed: 707 }), model);
});

after(async () => {
  work.remove();
  await sshd?.stop();
  for (const d of cacheDirs) if (existsSync(d)) for (const f of readdirSync(d)) if (!before0.get(d)!.has(f)) rmSync(join(d, f), { force: true });
});

const args = (nodes: string) => [
  join(repoRoot, 'bin/llama-relay.js'), 'bench', model, '--nodes', nodes, '--parallel', '1', '--only', 'rpc-2',
  '--patched-bin-dir', bins.patched, '--stock-bin-dir', bins.stock, '-F', sshConfig, '--accept-new-host-keys',
  '--node-cache', join(work.path, 'node-cache'), '--run-dir', work.path, '--ready-timeout', '120',
];

/** Listening TCP sockets of `pid` ("addr:port"), from ss. */
function listensOf(pid: number): string[] {
  const out = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[3]!);
}

function pidOf(what: RegExp): number[] {
  return work
    .processes()
    .filter((l) => what.test(l))
    .map((l) => Number(l.split(' ')[0]));
}

/** Runs rpc-2 long enough to look at it, checks where its server listens and how the head reaches it, then stops it. */
async function inspectRun(nodes: string, expectTunnel: RegExp) {
  const p = spawn(process.execPath, [...args(nodes), '--prompt-tokens', '32,40', '--gen-tokens', '20000', '--repeat', '1'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TMPDIR: work.path },
  });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  const end = Date.now() + 180_000;
  while (!/\[rpc-2\] prompt 32 x1 #1:/.test(err) && p.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  assert.equal(p.exitCode, null, err);
  assert.match(err, /\[rpc-2\] prompt 32 x1 #1:/, err);
  try {
    const servers = pidOf(/^\d+ \S*\/ggml-rpc-server -H /);
    assert.equal(servers.length, 1, `one ggml-rpc-server expected:\n${work.processes().join('\n')}`);
    const listens = listensOf(servers[0]!);
    assert.ok(listens.length > 0, 'the server listens');
    for (const a of listens) assert.match(a, /^127\.0\.0\.1:\d+$/, `ggml-rpc-server listens on ${a}`);
    const head = work.processes().find((l) => /^\d+ \S*\/llama-server -m .* --rpc /.test(l));
    assert.ok(head, 'rpc head not found');
    const dialled = /--rpc (\S+)/.exec(head)![1]!;
    assert.match(dialled, /^127\.0\.0\.1:\d+$/);
    assert.notEqual(dialled.split(':')[1], listens[0]!.split(':')[1], 'the head dials a tunnel, not the server port');
    const tunnels = work.processes().filter((l) => expectTunnel.test(l));
    assert.ok(tunnels.length > 0, `no ssh tunnel like ${expectTunnel}:\n${work.processes().join('\n')}`);
  } finally {
    p.kill('SIGINT');
    await exit;
  }
  assert.deepEqual(await work.survivors(15_000), []);
}

describe('bench --nodes: ggml-rpc-server on loopback only, reached through ssh', { timeout: 900_000 }, () => {
  it('a full rpc-2 run with the server on the ssh node measures, and leaves nothing running', async () => {
    const json = join(work.path, 'rpc.json');
    await promisify(execFile)(process.execPath, [...args(`local,${sshd.alias}`), '--prompt-tokens', '32', '--gen-tokens', '4', '--repeat', '1', '--json', json, '--quiet'], {
      cwd: repoRoot,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, TMPDIR: work.path },
    });
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    const c = r.configs.find((x) => x.id === 'rpc-2')!;
    assert.equal(c.error, undefined, c.error);
    assert.equal(c.nodes.find((n) => n.role === 'rpc-server')!.node, sshd.alias);
    const m = c.measurements[0]!;
    assert.equal(m.samples[0]!.generatedTokens, 4);
    assert.ok(m.aggregateDecodeTps.median > 0);
    assert.deepEqual(await work.survivors(10_000), []);
  });

  it('local head, server on the ssh node: a forward (ssh -L) from this machine', async () => {
    await inspectRun(`local,${sshd.alias}`, /^\d+ ssh .*-L /);
  });

  it('head on the ssh node, server here: a reverse forward (ssh -R) to the head', async () => {
    await inspectRun(`${sshd.alias},local`, /^\d+ ssh .*-R /);
  });

  it('head and server on two ssh nodes: a forward and a reverse forward chained through this machine', async () => {
    await inspectRun(`${sshd.alias},relaynode-b`, /^\d+ ssh .*-R /);
  });
});
