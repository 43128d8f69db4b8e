// `llama-relay up` provisions a remote node by itself: no --llama-server and no --layers, so the node (a real sshd)
// gets a copy of the local patched build and only its rank's slice, and the chain answers token-identically to stock.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { assertSameCompletion, binDirs, complete, startStock, type Server } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { carrying, processKinds, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { launchUp } from '../helpers/up-launcher.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
const work = mkdtempSync('/tmp/lr-provup-');
const marker = uniqueMarker('lrprov');
// What this test adds to the local cache (slices and the digest of its one-off model file) is removed afterwards.
const cacheDirs = ['slices', 'digests'].map((d) => join(homedir(), '.cache/llama-relay', d));
const before0 = new Map(cacheDirs.map((d) => [d, new Set(existsSync(d) ? readdirSync(d) : [])]));
let sshd: TestSshd;
let stock: Server | undefined;
let launcher: ChildProcessWithoutNullStreams | undefined;
let model = '';
const mounts: string[] = [];

before(async () => {
  sshd = await startSshd();
  await binDirs(); // the patched build exists before up asks for it
  const fixture = await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 });
  model = join(work, `${marker}.gguf`);
  symlinkSync(fixture, model);
});

after(async () => {
  if (launcher && launcher.exitCode === null) launcher.kill('SIGKILL');
  await stock?.stop();
  reap(work);
  await sshd?.stop();
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch {
      /* already gone */
    }
  }
  rmSync(work, { recursive: true, force: true });
  for (const d of cacheDirs) if (existsSync(d)) for (const f of readdirSync(d)) if (!before0.get(d)!.has(f)) rmSync(join(d, f), { force: true });
});

describe('up provisions a remote node', { timeout: 300_000 }, () => {
  it('copies the binary and pushes only the rank slice; the chain matches stock; teardown is clean', async () => {
    const apiPort = await getPort({ host: '127.0.0.1' });
    const base = 20_000 + Math.floor(Math.random() * 9000);
    const nodeCache = join(work, `${marker}-node-cache`);
    const up = launchUp(
      [
        model, '--nodes', `local,${sshd.alias}`, '--node-cache', nodeCache,
        '--ctx', '1024', '--threads', '1', '--server', '--json', '--api-port', String(apiPort), '--stage-port-base', String(base),
        '-F', sshd.configFile, '--run-dir', work, '--ready-timeout', '120', '--stage-timeout', '10',
      ],
      { TMPDIR: work },
    );
    launcher = up.child;
    const { events, exit, ready, show } = up;
    assert.ok(await waitFor(() => ready() || launcher!.exitCode !== null, 240_000, 250) && ready(), `chain never ready:\n${show()}`);

    const uploads = events.filter((e) => e.kind === 'node-phase' && e.phase === 'upload' && e.node === sshd.alias);
    assert.ok(uploads.some((e) => e.progress === 1 && String(e.detail) === 'llama-server'), `binary copy events:\n${show()}`);
    assert.ok(uploads.some((e) => e.progress === 1 && String(e.detail).startsWith('slice ')), `slice upload events:\n${show()}`);
    const slices = readdirSync(join(nodeCache, 'slices')).filter((f) => f.endsWith('.gguf'));
    assert.equal(slices.length, 1, 'one slice: the remote rank');
    const layers = events.find((e) => e.kind === 'rank-planned' && e.rank === 1)!.layers as number[];
    assert.ok(slices[0]!.endsWith(`-L${layers[0]}-${layers[1]}.gguf`), `${slices[0]} holds rank 1's layers ${layers}`);
    assert.ok(statSync(join(nodeCache, 'slices', slices[0]!)).size < statSync(model).size * 0.75);
    assert.equal(readdirSync(join(nodeCache, 'bin')).length, 1);
    // Positive control for the leftover check at the end: the same query sees both ranks (the remote one runs the
    // copied binary from the node cache) and the ssh master, which carries only TMPDIR.
    const running = carrying(work).map((p) => p.args);
    const kinds = processKinds(running);
    for (const k of ['rank', 'rank over ssh', 'ssh master']) assert.ok(kinds.has(k), `no ${k} carries ${work}:\n${running.join('\n')}`);
    assert.ok(running.some((a) => a.startsWith(join(nodeCache, 'bin'))), `the remote rank runs the copied binary:\n${running.join('\n')}`);

    stock = await startStock(model);
    const prompt = { prompt: 'Hello there', n_predict: 16 };
    assertSameCompletion(await complete(apiPort, prompt), await complete(stock.port, prompt), 1e-4, 'provisioned chain vs stock');

    await stock.stop();
    stock = undefined;
    launcher.kill('SIGTERM');
    await exit;
    assert.deepEqual(await survivorsAfter(work, 10_000), []);
  });

  it('a node whose cache disk is too small: exit 2, the node and what to do are named, nothing is left running', async () => {
    const tiny = join(work, `${marker}-tiny`);
    mkdirSync(tiny);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tiny]);
    mounts.push(tiny);
    const p = spawn(
      process.execPath,
      [cli, 'up', model, '--nodes', `local,${sshd.alias}`, '--node-cache', tiny, '--prompt', 'x', '--api-port', String(await getPort({ host: '127.0.0.1' })), '-F', sshd.configFile, '--run-dir', work],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TMPDIR: work } },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => p.on('exit', r));
    assert.equal(code, 2, err);
    assert.match(err, /node relaynode: needs [\d.]+ MB in .*-tiny but only [\d.]+ (kB|MB) is free there/);
    assert.match(err, /what to do:[\s\S]*node relaynode: free/);
    assert.deepEqual(readdirSync(tiny), [], 'nothing uploaded');
    assert.deepEqual(await survivorsAfter(work, 5000), []);
  });
});
