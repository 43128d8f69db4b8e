// bench: the delaying link relay against a real echo server on loopback (no mocks).
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { DelayRelay, isLoopback } from '../../src/bench/delay-relay.js';
import { nowMs, PreciseClock } from '../../src/bench/precise-clock.js';
import { UserError } from '../../src/errors.js';

const servers: net.Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function echoServer(): Promise<number> {
  const s = net.createServer((c) => c.pipe(c));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(c));
    c.once('error', reject);
  });
}

/** Sends `payload`, resolves with everything read until `payload.length` bytes came back. */
function roundTrip(c: net.Socket, payload: Buffer): Promise<{ data: Buffer; ms: number }> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let n = 0;
    const t0 = performance.now();
    const onData = (b: Buffer) => {
      got.push(b);
      n += b.length;
      if (n >= payload.length) {
        c.off('data', onData);
        resolve({ data: Buffer.concat(got), ms: performance.now() - t0 });
      }
    };
    c.on('data', onData);
    c.write(payload);
  });
}

describe('DelayRelay', () => {
  it('forwards without delay and counts bytes both ways', async () => {
    const relay = await DelayRelay.start({ name: 't', target: { host: '127.0.0.1', port: await echoServer() }, delayMs: 0 });
    try {
      const c = await connect(relay.port);
      const payload = Buffer.alloc(300_000, 7);
      const { data } = await roundTrip(c, payload);
      assert.ok(data.equals(payload));
      const k = relay.snapshot();
      assert.equal(k.forwardBytes, 300_000);
      assert.equal(k.backwardBytes, 300_000);
      assert.equal(k.connections, 1);
      assert.equal(k.heldChunks, 0);
      c.destroy();
    } finally {
      await relay.close();
    }
  });

  it('delays each direction by the latency and keeps the order of many small writes', async () => {
    const relay = await DelayRelay.start({ name: 't', target: { host: '127.0.0.1', port: await echoServer() }, delayMs: 15 });
    try {
      const c = await connect(relay.port);
      const { ms } = await roundTrip(c, Buffer.from('ping'));
      // A lower bound only: a loaded machine may add any amount on top of the two delays.
      assert.ok(ms >= 29, `round trip took ${ms} ms, want at least 2 x 15`);
      const got: Buffer[] = [];
      const all = new Promise<void>((resolve) => {
        let n = 0;
        c.on('data', (b: Buffer) => {
          got.push(b);
          if ((n += b.length) >= 4000) resolve();
        });
      });
      for (let i = 0; i < 1000; i++) c.write(Buffer.from(new Uint32Array([i]).buffer));
      await all;
      const back = Buffer.concat(got);
      for (let i = 0; i < 1000; i++) assert.equal(back.readUInt32LE(i * 4), i);
      const k = relay.snapshot();
      assert.ok(k.heldChunks > 0);
      assert.ok(k.heldMsSum / k.heldChunks >= 14.5); // the clock may wake up to 0.5 ms early
      c.destroy();
    } finally {
      await relay.close();
    }
  });

  it('ends the client when the upstream is not there, and close() ends live connections', async () => {
    const relay = await DelayRelay.start({ name: 't', target: { host: '127.0.0.1', port: await freePort() }, delayMs: 0 });
    const c = await connect(relay.port);
    await new Promise((r) => c.on('close', r));
    await relay.close();

    const live = await DelayRelay.start({ name: 't', target: { host: '127.0.0.1', port: await echoServer() }, delayMs: 5 });
    const d = await connect(live.port);
    await roundTrip(d, Buffer.from('x'));
    const closed = new Promise((r) => d.on('close', r));
    await live.close();
    await closed;
    await assert.rejects(connect(live.port));
  });

  it('closes itself when its signal aborts', async () => {
    const ac = new AbortController();
    const relay = await DelayRelay.start({ name: 't', target: { host: '127.0.0.1', port: await echoServer() }, delayMs: 0, signal: ac.signal });
    const c = await connect(relay.port);
    const closed = new Promise((r) => c.on('close', r));
    ac.abort();
    await closed;
    await assert.rejects(connect(relay.port));
  });

  it('only forwards to loopback and refuses a negative latency', async () => {
    assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost') && isLoopback('127.1.2.3'));
    assert.ok(!isLoopback('10.0.0.1') && !isLoopback('example.com'));
    await assert.rejects(DelayRelay.start({ name: 't', target: { host: '192.168.1.1', port: 80 }, delayMs: 0 }), UserError);
    await assert.rejects(DelayRelay.start({ name: 't', target: { host: '127.0.0.1', port: 80 }, delayMs: -1 }), UserError);
  });
});

describe('PreciseClock', () => {
  it('runs callbacks in due order, none long before its time', async () => {
    const clock = new PreciseClock();
    try {
      const t0 = nowMs();
      const seen: { i: number; at: number }[] = [];
      await new Promise<void>((resolve) => {
        for (const [i, d] of [[0, 6], [1, 2], [2, 4], [3, 4]] as const) {
          clock.at(t0 + d, () => {
            seen.push({ i, at: nowMs() - t0 });
            if (seen.length === 4) resolve();
          });
        }
      });
      assert.deepEqual(seen.map((s) => s.i), [1, 2, 3, 0]);
      const due = [2, 4, 4, 6];
      seen.forEach((s, k) => assert.ok(s.at >= due[k]! - 0.6, `callback ${s.i} ran at ${s.at} ms, due ${due[k]}`));
    } finally {
      clock.close();
    }
  });
});
