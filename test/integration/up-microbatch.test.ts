// `llama-relay up --no-microbatch`, `--groups N`: the head rank (and only it) is started with --stage-no-microbatch or
// --stage-groups N; without the flags no rank gets them. Fixture ranks that log the engine switches they were given; two local nodes, one prompt.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { repoRoot } from '../helpers/llama-src.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';

const work = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-up-mb')}-`));
after(() => {
  reap(work);
  rmSync(work, { recursive: true, force: true });
});

async function up(extra: string[]): Promise<{ code: number | null; out: string }> {
  const model = join(work, 'model.gguf');
  writeFileSync(model, 'not a real model');
  const args = [
    join(repoRoot, 'bin/llama-relay.js'), 'up', model, '--nodes', 'local,local', '--layers', '4', '--llama-server', fixtureBin('fake-llama-server.mjs'),
    '--api-port', String(await getPort({ host: '127.0.0.1' })), '--run-dir', work, '--ready-timeout', '30', '--prompt', 'hi', '--max-tokens', '4', '--raw', '--verbose',
    ...extra,
  ];
  const p = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: work } });
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
  it('gives no rank the switch by default (micro-batched decode on)', async () => {
    const { code, out } = await up([]);
    assert.equal(code, 0, out);
    assert.equal((out.match(/fake: stage switches \[\]/g) ?? []).length, 2, out);
  });
});
