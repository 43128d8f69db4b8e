// A slow node end to end: a real sshd on loopback whose processes run under a cgroup v1 cpu quota of a third of a core
// (every rank it starts inherits the limit), next to this machine at full speed. `plan --probe` measures both with the
// real engine and Gemma 3 270M; the speed-aware plan gives the slow node fewer layers than the memory plan did, and
// the chain on that split answers token for token as stock llama-server does. Speeds are printed, never asserted.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { startStock, type Server } from '../helpers/engine.js';
import { linkPatchedServer, postJson, realModelOrSkip, runCli, sshConfigIn, stagePortBase } from '../helpers/e2e-run.js';
import { inCi } from '../helpers/prereq.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const CPU = '/sys/fs/cgroup/cpu';
const group = join(CPU, `llama-relay-slow-${process.pid}`);
const work = makeWorkDir('lr-slow-node');
let sshd: TestSshd | undefined;
let stock: Server | undefined;
let llamaServer = '';
let sshConfig = '';
const env = () => ({ LLAMA_RELAY_SPEED_CACHE: join(work.path, 'speeds.json') });

before(async () => {
  if (!existsSync(join(CPU, 'cpu.cfs_quota_us'))) return;
  sshd = await startSshd();
  sshConfig = sshConfigIn(work, sshd);
  llamaServer = await linkPatchedServer(work);
  mkdirSync(group);
  writeFileSync(join(group, 'cpu.cfs_period_us'), '100000');
  writeFileSync(join(group, 'cpu.cfs_quota_us'), '33000'); // a third of one core
  writeFileSync(join(group, 'cgroup.procs'), readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim());
});
after(async () => {
  await stock?.stop();
  await sshd?.stop();
  work.remove();
  // Empty once sshd and what it started are gone.
  for (let i = 0; i < 50 && existsSync(group); i++) {
    try {
      rmdirSync(group);
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

const layersOf = (out: string, node: number) => {
  const m = new RegExp(`^Node ${node}: \\S+ (?:\\(embeddings, output\\) )?Layers: (\\d+) - (\\d+),`, 'm').exec(out);
  assert.ok(m, out);
  return Number(m[2]) - Number(m[1]) + 1;
};

describe('a slow node, real engine over real sshd', { timeout: 1_200_000 }, () => {
  it('plan --probe gives the slowed node fewer layers; the chain on that split answers as stock does', async (t) => {
    if (!sshd) {
      if (inCi()) throw new Error(`no cgroup v1 cpu controller at ${CPU}`);
      return t.skip(`no cgroup v1 cpu controller at ${CPU}`);
    }
    const m = await realModelOrSkip(t);
    if (!m) return;
    const nodes = ['--nodes', `local,${sshd.alias}`];
    const common = async () => ['--llama-server', llamaServer, '--threads', '1', '--ctx', '1024', '-F', sshConfig, '--run-dir', work.path, '--node-cache', join(work.path, 'node-cache'), '--stage-port-base', String(await stagePortBase(3))];

    const memory = runCli(work, ['plan', m, ...nodes, '--ctx', '1024'], env());
    assert.equal(await memory.exit, 0, memory.stderr());
    assert.match(memory.stdout(), /^Placement: balanced on memory/m);
    const slowBefore = layersOf(memory.stdout(), 1);

    // No --llama-server: the remote node gets its own provisioned copy, and that copy lists its devices.
    const probe = runCli(work, ['plan', m, ...nodes, '--probe', ...(await common()).slice(2)], env());
    assert.equal(await probe.exit, 0, probe.stderr());
    process.stderr.write(`memory plan:\n${memory.stdout()}\nplan --probe:\n${probe.stdout()}\n`);
    assert.match(probe.stdout(), /^Placement: balanced on measured speed$/m);
    assert.match(probe.stdout(), new RegExp(`^ {2}${sshd.alias}: CPU only; `, 'm'));
    const slowAfter = layersOf(probe.stdout(), 1);
    assert.ok(slowAfter < slowBefore, `the slow node keeps ${slowAfter} layers (memory plan: ${slowBefore})`);
    const cache = JSON.parse(readFileSync(join(work.path, 'speeds.json'), 'utf8')) as { records: { node: string; secondsPerByte: number; cpuQuotaCores?: number }[] };
    // The quota the slowed node's processes run under, as its probe read it from its cgroup. That quota is what slows
    // it: its secondsPerByte is its speed with the quota's stalls taken out (speed-cache.ts), and on one machine the two
    // nodes' are alike, so they are printed, not compared (once equal within the noise, 4.21e-10 vs 4.26e-10 s/byte).
    assert.equal(cache.records.find((r) => r.node === sshd!.alias)?.cpuQuotaCores, 0.33);
    process.stderr.write(`seconds per byte: ${JSON.stringify(Object.fromEntries(cache.records.map((r) => [r.node, r.secondsPerByte])))}\n`);

    // up plans on the cache: the same split; then the chain against stock.
    const apiPort = await getPort();
    const up = runCli(work, ['up', m, ...nodes, '--server', '--api-port', String(apiPort), ...(await common())], env());
    try {
      assert.ok(await up.waitFor(/API listening on/, 600_000), up.stderr());
      assert.match(up.stderr(), /placement: balanced on measured speed/);
      assert.match(up.stderr(), new RegExp(`rank 1 \\(worker\\) on ${sshd.alias}: layers ${18 - slowAfter}:18`));
      stock = await startStock(m);
      const body = { prompt: 'The history of the Roman Empire', n_predict: 32, temperature: 0, seed: 7, cache_prompt: false };
      const want = await postJson(`http://127.0.0.1:${stock.port}/completion`, body);
      const got = await postJson(`http://127.0.0.1:${apiPort}/completion`, body);
      assert.ok((want.content as string).length > 0, 'stock answered nothing');
      assert.equal(got.content, want.content);
      process.stderr.write(`speed split: head decode ${(got.timings?.predicted_per_second as number | undefined)?.toFixed(1)} tok/s\n`);
      await stock.stop();
      stock = undefined;
    } finally {
      up.child.kill('SIGTERM');
    }
    assert.equal(await up.exit, 0, up.stderr());
    assert.deepEqual(await work.survivors(15_000), []);
  });
});
