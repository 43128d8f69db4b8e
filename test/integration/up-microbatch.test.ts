// `llama-relay up --no-microbatch`, `--groups N`: the head rank (and only it) is started with --stage-no-microbatch or
// --stage-groups N; without the flags no rank gets them. Fixture ranks that log the engine switches they were given; two local nodes, one prompt.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';

const work = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-up-mb')}-`));
after(() => {
  reap(work);
  rmSync(work, { recursive: true, force: true });
});

async function up(extra: string[], o: { model?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; out: string }> {
  let model = o.model;
  if (!model) {
    model = join(work, 'model.gguf');
    writeFileSync(model, 'not a real model');
  }
  const args = [
    join(repoRoot, 'bin/llama-relay.js'), 'up', model, '--nodes', 'local,local', ...(o.model ? [] : ['--layers', '4']), '--llama-server', fixtureBin('fake-llama-server.mjs'),
    '--api-port', String(await getPort({ host: '127.0.0.1' })), '--run-dir', work, '--ready-timeout', '30', '--prompt', 'hi', '--max-tokens', '4', '--raw', '--verbose',
    ...extra,
  ];
  const p = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: work, ...o.env } });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  return { code, out };
}

describe('up --no-microbatch (fixture ranks)', { timeout: 120_000 }, () => {
  it('puts --stage-no-microbatch on the head only', async () => {
    const { code, out } = await up(['--no-microbatch']);
    assert.equal(code, 0, out);
    assert.match(out, /\[rank 0 local\] fake: stage switches \[--stage-no-microbatch\]/);
    assert.match(out, /\[rank 1 local\] fake: stage switches \[\]/);
    assert.deepEqual(await survivorsAfter(work, 5_000), []);
  });
  it('--groups N reaches the head only, as --stage-groups N; a bad N is refused naming the flag', async () => {
    const { code, out } = await up(['--groups', '1']);
    assert.equal(code, 0, out);
    assert.match(out, /\[rank 0 local\] fake: stage switches \[--stage-groups 1\]/);
    assert.match(out, /\[rank 1 local\] fake: stage switches \[\]/);
    const bad = await up(['--groups', '-2']);
    assert.equal(bad.code, 2, bad.out);
    assert.match(bad.out, /--groups must be a whole number >= 0, not -2/);
    assert.deepEqual(await survivorsAfter(work, 5_000), []);
  });
  it('--batch-groups N reaches the head only, as --stage-batch-groups N; a bad N is refused naming the flag', async () => {
    const { code, out } = await up(['--batch-groups', '8', '--groups', '2']);
    assert.equal(code, 0, out);
    assert.match(out, /\[rank 0 local\] fake: stage switches \[--stage-groups 2 --stage-batch-groups 8\]/);
    assert.match(out, /\[rank 1 local\] fake: stage switches \[\]/);
    for (const bad of ['-1', '2.5', '2000']) {
      const r = await up(['--batch-groups', bad]);
      assert.equal(r.code, 2, r.out);
      assert.match(r.out, new RegExp(`--batch-groups must be a whole number of requests from 0 to 1024, not ${bad.replace('.', '\\.')}`));
    }
    assert.deepEqual(await survivorsAfter(work, 5_000), []);
  });
  it('without --batch-groups, batches from 4 requests per rank where the last probe measured batching to pay', async () => {
    // A real GGUF (planning reads it) and a speed cache as `plan --probe` leaves it, with the run's batch gain.
    const model = await makeFixture({ arch: 'llama', layers: 4, embd: 64, heads: 4, headsKv: 2, ff: 128 });
    const cacheWith = (batchGain: number) => {
      const file = join(work, `speeds-${batchGain}.json`);
      const record = { node: 'local', binary: 'x', model: `${model} (${statSync(model).size} bytes)`, secondsPerByte: 1e-9, outputSeconds: 0.001, measuredAt: new Date().toISOString(), layers: '0:2,2:4', computeMsPerToken: 2, batchGain };
      writeFileSync(file, JSON.stringify({ version: 1, records: [record], links: [], devices: {} }));
      return { LLAMA_RELAY_SPEED_CACHE: file };
    };
    const pays = await up(['--parallel', '8'], { model, env: cacheWith(1.3) });
    assert.equal(pays.code, 0, pays.out);
    assert.match(pays.out, /batched groups: from 8 requests: a batch of 4 rows decodes at 1\.30x one row's rate/);
    assert.match(pays.out, /\[rank 0 local\] fake: stage switches \[--stage-batch-groups 8\]/);
    assert.match(pays.out, /\[rank 1 local\] fake: stage switches \[\]/);
    // Too few slots for 4 requests per rank, a gain under the bar, or --batch-groups 0: no switch, and the reason said.
    const few = await up(['--parallel', '4'], { model, env: cacheWith(1.3) });
    assert.match(few.out, /batched groups: off: .*4 slot\(s\) never hold the 8 requests/);
    const flat = await up(['--parallel', '8'], { model, env: cacheWith(1.05) });
    assert.match(flat.out, /batched groups: off: a batch of 4 rows decodes at 1\.05x one row's rate, under 1\.15x/);
    const asked = await up(['--parallel', '8', '--batch-groups', '0'], { model, env: cacheWith(1.3) });
    assert.match(asked.out, /batched groups: off \(--batch-groups 0\)/);
    for (const r of [few, flat, asked]) {
      assert.equal(r.code, 0, r.out);
      assert.equal((r.out.match(/fake: stage switches \[\]/g) ?? []).length, 2, r.out);
    }
    assert.deepEqual(await survivorsAfter(work, 5_000), []);
  });
  it('gives no rank the switch by default (micro-batched decode on)', async () => {
    const { code, out } = await up([]);
    assert.equal(code, 0, out);
    assert.equal((out.match(/fake: stage switches \[\]/g) ?? []).length, 2, out);
  });
});
