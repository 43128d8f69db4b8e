// `llama-relay node`: three hand-started ranks (fixture llama-servers) agree on the plan and serve a prompt.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { parseStageAddresses } from '../../src/services/node.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'lr-node-'));
const marker = uniqueMarker();
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  reap(marker);
  rmSync(work, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}) {
  const p = spawn(process.execPath, [cli, 'node', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  procs.push(p);
  let out = '';
  let err = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  return { p, out: () => out, err: () => err, exit };
}

describe('llama-relay node', { timeout: 120_000 }, () => {
  it('parses stage addresses', () => {
    assert.deepEqual(parseStageAddresses('a:1, [::1]:2', 2), [{ host: 'a', port: 1 }, { host: '::1', port: 2 }]);
    assert.throws(() => parseStageAddresses('a:1', 2), /--world-size is 2/);
  });

  it('three ranks started by hand serve one prompt; workers stop on SIGTERM', async () => {
    const model = join(work, `${marker}.gguf`);
    writeFileSync(model, '');
    const ports = [await getPort(), await getPort(), await getPort()];
    const nodes = ports.map((p) => `127.0.0.1:${p}`).join(',');
    const common = ['--model', model, '--world-size', '3', '--nodes', nodes, '--layers', '9', '--llama-server', fixtureBin('fake-llama-server.mjs'), '--run-dir', work];
    const env = { LLAMA_RELAY_SECRET: 'shared-by-hand-0123456789abcdefghij' };
    const w2 = run([...common, '--rank', '2'], env);
    const w1 = run([...common, '--rank', '1'], env);
    const head = run([...common, '--rank', '0', '--api-port', String(await getPort()), '--prompt', 'hi', '--max-tokens', '4'], env);
    assert.equal(await head.exit, 0, head.err());
    assert.equal(head.out(), 'Hello from the relay\n');
    assert.match(head.err(), /rank0: layers 0:3, listening on 127\.0\.0\.1:\d+, next 127\.0\.0\.1:\d+/);
    assert.match(w1.err(), /rank1: layers 3:6/);
    for (const w of [w1, w2]) w.p.kill('SIGTERM');
    assert.deepEqual(await Promise.all([w1.exit, w2.exit]), [0, 0]);
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it('--layers-per-node places the hand-started ranks (the same text on each); a bad split is refused', async () => {
    const model = join(work, `${marker}.gguf`);
    writeFileSync(model, '');
    const ports = [await getPort(), await getPort(), await getPort()];
    const nodes = ports.map((p) => `127.0.0.1:${p}`).join(',');
    const common = ['--model', model, '--world-size', '3', '--nodes', nodes, '--layers', '9', '--llama-server', fixtureBin('fake-llama-server.mjs'), '--run-dir', work];
    const env = { LLAMA_RELAY_SECRET: 'shared-by-hand-0123456789abcdefghij' };
    const split = ['--layers-per-node', '1,6,2'];
    const w2 = run([...common, ...split, '--rank', '2'], env);
    const w1 = run([...common, ...split, '--rank', '1'], env);
    const head = run([...common, ...split, '--rank', '0', '--api-port', String(await getPort()), '--prompt', 'hi', '--max-tokens', '4'], env);
    assert.equal(await head.exit, 0, head.err());
    assert.match(head.err(), /rank0: layers 0:1, listening/);
    assert.match(w1.err(), /rank1: layers 1:7, listening/);
    assert.match(w2.err(), /rank2: layers 7:9, listening/);
    for (const w of [w1, w2]) w.p.kill('SIGTERM');
    assert.deepEqual(await Promise.all([w1.exit, w2.exit]), [0, 0]);
    const bad = run([...common, '--split', '0:3,3:9', '--rank', '1'], env);
    assert.equal(await bad.exit, 2);
    assert.match(bad.err(), /--split gives 2 ranges but there are 3 nodes/);
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  // A head-only switch given to both ranks by hand: the head's llama-server gets it, the worker's gets nothing.
  const headOnly = async (flag: string[], switches: string) => {
    const model = join(work, `${marker}.gguf`);
    writeFileSync(model, '');
    const ports = [await getPort(), await getPort()];
    const nodes = ports.map((p) => `127.0.0.1:${p}`).join(',');
    const common = ['--model', model, '--world-size', '2', '--nodes', nodes, '--layers', '4', '--llama-server', fixtureBin('fake-llama-server.mjs'), '--run-dir', work, '--verbose'];
    const env = { LLAMA_RELAY_SECRET: 'shared-by-hand-0123456789abcdefghij' };
    const w1 = run([...common, '--rank', '1', ...flag], env);
    const head = run([...common, '--rank', '0', ...flag, '--api-port', String(await getPort()), '--prompt', 'hi', '--max-tokens', '4'], env);
    assert.equal(await head.exit, 0, head.err());
    assert.match(head.err(), new RegExp(`\\[rank 0 local\\] fake: stage switches \\[${switches}\\]`));
    w1.p.kill('SIGTERM');
    assert.equal(await w1.exit, 0);
    assert.match(w1.err(), /\[rank 1 local\] fake: stage switches \[\]/, 'head-only: the worker never gets it');
    return { common, env };
  };

  it('--no-microbatch on the head turns micro-batched decode off there (--stage-no-microbatch); a worker gets no switch', async () => {
    await headOnly(['--no-microbatch'], '--stage-no-microbatch');
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it('--groups N on the head reaches it as --stage-groups N; a worker gets no switch; a bad N is refused naming the flag', async () => {
    const { common, env } = await headOnly(['--groups', '2'], '--stage-groups 2');
    for (const bad of ['-1', '1.5', 'many']) {
      const r = run([...common, '--rank', '0', '--groups', bad, '--api-port', String(await getPort())], env);
      assert.equal(await r.exit, 2, r.err());
      assert.match(r.err(), /--groups must be a whole number >= 0, not (-1|1\.5|NaN)/);
      assert.doesNotMatch(r.err(), /fake: stage switches/, 'refused before any rank starts');
    }
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it('--batch-groups N on the head reaches it as --stage-batch-groups N; a worker gets no switch; a bad N is refused naming the flag', async () => {
    const { common, env } = await headOnly(['--batch-groups', '8'], '--stage-batch-groups 8');
    for (const bad of ['-1', '2.5', '5000']) {
      const r = run([...common, '--rank', '0', '--batch-groups', bad, '--api-port', String(await getPort())], env);
      assert.equal(await r.exit, 2, r.err());
      assert.match(r.err(), new RegExp(`--batch-groups must be a whole number of requests from 0 to 1024, not ${bad.replace('.', '\\.')}`));
      assert.doesNotMatch(r.err(), /fake: stage switches/, 'refused before any rank starts');
    }
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it('ranks on hosts of their own busy-poll their links (--stage-poll 10000, or --link-poll US); ranks sharing a host do not; a bad --link-poll is refused', async () => {
    const model = join(work, `${marker}.gguf`);
    writeFileSync(model, '');
    const env = { LLAMA_RELAY_SECRET: 'shared-by-hand-0123456789abcdefghij' };
    // Two addresses of this machine's loopback stand for two machines; the same host twice is one machine.
    const pair = async (hosts: [string, string], flag: string[]) => {
      const nodes = `${hosts[0]}:${await getPort()},${hosts[1]}:${await getPort({ host: hosts[1] })}`;
      const common = ['--model', model, '--world-size', '2', '--nodes', nodes, '--layers', '4', '--llama-server', fixtureBin('fake-llama-server.mjs'), '--run-dir', work, '--verbose', ...flag];
      const w1 = run([...common, '--rank', '1'], env);
      const head = run([...common, '--rank', '0', '--api-port', String(await getPort()), '--prompt', 'hi', '--max-tokens', '4'], env);
      assert.equal(await head.exit, 0, head.err());
      w1.p.kill('SIGTERM');
      assert.equal(await w1.exit, 0);
      return [/\[rank 0 local\] fake: stage switches \[(.*)\]/.exec(head.err())?.[1], /\[rank 1 local\] fake: stage switches \[(.*)\]/.exec(w1.err())?.[1]];
    };
    assert.deepEqual(await pair(['127.0.0.1', '127.0.0.2'], []), ['--stage-poll 10000', '--stage-poll 10000']);
    assert.deepEqual(await pair(['127.0.0.1', '127.0.0.2'], ['--link-poll', '300']), ['--stage-poll 300', '--stage-poll 300']);
    assert.deepEqual(await pair(['127.0.0.1', '127.0.0.2'], ['--link-poll', '0']), ['', '']);
    assert.deepEqual(await pair(['127.0.0.1', '127.0.0.1'], []), ['', ''], 'one host: the ranks share its cores');
    const r = run(['--model', model, '--world-size', '1', '--nodes', `127.0.0.1:${await getPort()}`, '--layers', '4', '--llama-server', fixtureBin('fake-llama-server.mjs'), '--rank', '0', '--link-poll', '-5'], env);
    assert.equal(await r.exit, 2, r.err());
    assert.match(r.err(), /--link-poll must be a whole number of microseconds from 0 to 1000000, not -5/);
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it('refuses a --secret-file too short to hold 128 bits, saying how to make one', async () => {
    const weak = join(work, 'weak.secret');
    writeFileSync(weak, 'my secret\n', { mode: 0o600 });
    const r = run(['--model', 'm', '--rank', '0', '--world-size', '1', '--nodes', '127.0.0.1:1', '--layers', '1', '--secret-file', weak]);
    assert.equal(await r.exit, 2);
    assert.match(r.err(), /--secret-file .*weak\.secret is too short to hold 128 bits \(9 characters\)[\s\S]*head -c 32 \/dev\/urandom \| base64/);
  });

  it('refuses to start without the shared secret', async () => {
    const r = run(['--model', 'm', '--rank', '0', '--world-size', '1', '--nodes', '127.0.0.1:1', '--layers', '1'], { LLAMA_RELAY_SECRET: '' });
    assert.equal(await r.exit, 2);
    assert.match(r.err(), /every rank needs the same stage secret[\s\S]*head -c 32 \/dev\/urandom \| base64/);
  });
});
