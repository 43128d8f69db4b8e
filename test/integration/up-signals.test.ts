// Stopping `llama-relay up` through the process the user started: `npx llama-relay …` (npx does not pass SIGTERM on)
// and the installed bin. SIGTERM, SIGHUP or the death of that process (SIGKILL) ends the launcher and every rank.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { repoRoot } from '../helpers/llama-src.js';
import { packedInstall } from '../helpers/packed-install.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';

const work = mkdtempSync('/tmp/lr-sig-');
const markers: string[] = [];
after(() => {
  markers.forEach(reap);
  rmSync(work, { recursive: true, force: true });
});

/** Starts `command … up` on fixture ranks and resolves once the chain is ready; the model path carries the marker. */
async function startUp(command: string, pre: string[]): Promise<{ child: ChildProcess; marker: string; out: () => string; apiPort: number }> {
  const marker = uniqueMarker('lrsig');
  markers.push(marker);
  const model = join(work, `${marker}.gguf`);
  writeFileSync(model, '');
  const apiPort = await getPort({ host: '127.0.0.1' });
  const args = [
    ...pre, 'up', model, '--nodes', 'local,local', '--layers', '8', '--llama-server', fixtureBin('fake-llama-server.mjs'),
    '--api-port', String(apiPort), '--run-dir', work, '--server', '--json',
  ];
  const child = spawn(command, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: work } });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const ready = await waitFor(() => out.includes('chain ready') || child.exitCode !== null, 120_000);
  assert.ok(ready && child.exitCode === null, `the chain did not come up:\n${out}`);
  return { child, marker, out: () => out, apiPort };
}

describe('stopping up through the process the user started (fixture ranks)', { timeout: 600_000 }, () => {
  it('SIGTERM to `npx llama-relay`: no launcher and no rank left within 10 s', async () => {
    const { child, marker, out } = await startUp('npx', ['--no-install', 'llama-relay']);
    child.kill('SIGTERM');
    assert.deepEqual(await survivorsAfter(marker, 10_000), [], out());
  });

  it('SIGKILL to `npx llama-relay` (the starter dies): nothing left within 10 s', async () => {
    const { child, marker, out } = await startUp('npx', ['--no-install', 'llama-relay']);
    child.kill('SIGKILL');
    assert.deepEqual(await survivorsAfter(marker, 10_000), [], out());
  });

  it('SIGTERM to the installed bin: nothing left within 10 s, and it reports the stop', async () => {
    const { bin } = await packedInstall();
    const { child, marker, out } = await startUp(bin, []);
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    assert.deepEqual(await survivorsAfter(marker, 10_000), [], out());
    await exited;
    assert.match(out(), /stopping all ranks/);
  });

  it('SIGHUP to the installed bin: nothing left within 10 s', async () => {
    const { bin } = await packedInstall();
    const { child, marker, out } = await startUp(bin, []);
    child.kill('SIGHUP');
    assert.deepEqual(await survivorsAfter(marker, 10_000), [], out());
  });

  it('two `up`s side by side (same user, run dir and port base): the second leaves the ranks of the first running', async () => {
    const first = await startUp('npx', ['--no-install', 'llama-relay']);
    const second = await startUp('npx', ['--no-install', 'llama-relay']);
    // Give a wrongly "stale" kill time to land and be noticed by the first launcher's supervisor.
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(first.child.exitCode, null, first.out());
    assert.doesNotMatch(second.out(), /stale run/, second.out());
    assert.doesNotMatch(first.out(), /"kind":"rank-exited"|"phase":"failed"|stale run/, first.out());
    const health = await fetch(`http://127.0.0.1:${first.apiPort}/health`);
    assert.equal(health.status, 200, first.out());
    first.child.kill('SIGTERM');
    second.child.kill('SIGTERM');
    assert.deepEqual(await survivorsAfter(first.marker, 10_000), [], first.out());
    assert.deepEqual(await survivorsAfter(second.marker, 10_000), [], second.out());
  });
});
