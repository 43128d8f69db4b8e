// bench: bytes on direct local links from the kernel's TCP counters. The parser on captured `ss -tin` text; the
// counter on real loopback connections through the real ss; a missing ss gives NaN ("not measured"), said once.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { KernelLinkCounters, TcpInfoReader } from '../../src/bench/kernel-link-counter.js';
import { linkBytes } from '../../src/bench/measure-batch.js';
import { EMPTY_TALLY, parseSsTcpInfo, portCounts, tallyReading, type TcpConnection } from '../../src/bench/ss-tcp-info.js';

const captured = readFileSync(new URL('../fixtures/ss/established-loopback.txt', import.meta.url), 'utf8');

describe('parseSsTcpInfo on captured ss output', () => {
  const conns = parseSsTcpInfo(captured);
  const at = (local: string) => conns.filter((c) => c.local === local);

  it('reads one connection per socket, with both addresses (IPv6 in brackets)', () => {
    assert.equal(conns.length, 14);
    assert.deepEqual(at('127.0.0.1:43131').map((c) => [c.peer, c.localPort]), [['127.0.0.1:38864', 43131]]);
    assert.deepEqual(at('[::1]:41035').map((c) => [c.peer, c.localPort]), [['[::1]:41580', 41035]]);
  });

  it('reads the server end: bytes received from the client, bytes sent back', () => {
    assert.deepEqual(at('127.0.0.1:43131').map((c) => [c.bytesReceived, c.bytesSent]), [[70000, 210000]]);
    assert.deepEqual(at('[::1]:41035').map((c) => [c.bytesReceived, c.bytesSent]), [[1234, 3702]]);
    // The client end of the same connection, mirrored.
    assert.deepEqual(at('127.0.0.1:38864').map((c) => [c.bytesReceived, c.bytesSent]), [[210000, 70000]]);
  });

  it('takes a counter ss left out (it omits zeros) as 0, and bytes_acked where there is no bytes_sent', () => {
    assert.deepEqual(at('127.0.0.1:44495').map((c) => [c.bytesReceived, c.bytesSent]), [[0, 0]]);
    assert.deepEqual(at('127.0.0.1:50102').map((c) => [c.bytesReceived, c.bytesSent]), [[0, 1]]);
    const [old] = parseSsTcpInfo('0 0 127.0.0.1:9000 127.0.0.1:50000\n\t cubic rto:204 bytes_acked:17 bytes_received:5 segs_out:4\n');
    assert.deepEqual([old?.bytesReceived, old?.bytesSent], [5, 17]);
  });

  it('reads output with a State column (no state filter), and nothing from empty output', () => {
    const [c] = parseSsTcpInfo('ESTAB 0 0 127.0.0.1:9000 127.0.0.1:50000\n\t bytes_sent:3 bytes_received:4\n');
    assert.deepEqual([c?.localPort, c?.bytesReceived, c?.bytesSent], [9000, 4, 3]);
    assert.deepEqual(parseSsTcpInfo(''), []);
  });

  it('sums a link over every connection its server port holds', () => {
    const t = tallyReading(EMPTY_TALLY, conns, new Set([46761, 43131]));
    // Four clients on 127.0.0.1:46761 in the capture.
    assert.deepEqual(portCounts(t, 46761), { forwardBytes: 625 + 623 + 621 + 623, backwardBytes: 6067 + 6041 + 6053 + 6120, connections: 4, heldChunks: 0, heldMsSum: 0 });
    assert.equal(portCounts(t, 43131).forwardBytes, 70000);
    assert.deepEqual(portCounts(t, 41035), { forwardBytes: 0, backwardBytes: 0, connections: 0, heldChunks: 0, heldMsSum: 0 }, 'a port not tallied');
  });
});

describe('tallyReading', () => {
  const conn = (peerPort: number, received: number, sent: number): TcpConnection => ({
    local: '127.0.0.1:9000', peer: `127.0.0.1:${peerPort}`, localPort: 9000, bytesReceived: received, bytesSent: sent,
  });
  const ports = new Set([9000]);

  it('keeps what a closed connection carried, so a link never counts backwards (a restarted rank reconnects)', () => {
    let t = tallyReading(EMPTY_TALLY, [conn(1, 100, 10)], ports);
    t = tallyReading(t, [conn(2, 5, 1)], ports);
    assert.deepEqual(portCounts(t, 9000), { forwardBytes: 105, backwardBytes: 11, connections: 2, heldChunks: 0, heldMsSum: 0 });
  });

  it('takes counters that went down on the same addresses for a new connection', () => {
    let t = tallyReading(EMPTY_TALLY, [conn(1, 100, 10)], ports);
    t = tallyReading(t, [conn(1, 7, 3)], ports);
    assert.equal(portCounts(t, 9000).forwardBytes, 107);
    t = tallyReading(t, [conn(1, 9, 3)], ports);
    assert.equal(portCounts(t, 9000).forwardBytes, 109, 'growing counters are one connection');
  });
});

describe('KernelLinkCounters on real loopback connections', () => {
  const servers: net.Server[] = [];
  const sockets: net.Socket[] = [];
  after(() => {
    sockets.forEach((s) => s.destroy());
    servers.forEach((s) => s.close());
  });

  /** A server that answers every chunk with twice its bytes. */
  async function doubler(): Promise<number> {
    const s = net.createServer((c) => {
      sockets.push(c);
      c.on('data', (d) => c.write(Buffer.alloc(d.length * 2)));
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as net.AddressInfo).port;
  }

  async function exchange(port: number, bytes: number): Promise<void> {
    const c = net.connect({ host: '127.0.0.1', port });
    sockets.push(c);
    await new Promise<void>((resolve) => {
      let got = 0;
      c.on('connect', () => c.write(Buffer.alloc(bytes)));
      c.on('data', (d) => {
        got += d.length;
        if (got >= 2 * bytes) resolve();
      });
    });
  }

  it('counts what the client sent as forward and what the server answered as backward, per server port', async () => {
    const messages: string[] = [];
    const kernel = new KernelLinkCounters(new TcpInfoReader((m) => messages.push(m)));
    const [a, b] = [await doubler(), await doubler()];
    const links = [kernel.counter(a), kernel.counter(b)];
    assert.equal(await linkBytes(links), 0, 'nothing connected yet');
    await exchange(a, 50_000);
    await exchange(b, 300);
    await exchange(b, 700);
    const [ca, cb] = await Promise.all(links.map((l) => l.snapshot()));
    assert.deepEqual(ca, { forwardBytes: 50_000, backwardBytes: 100_000, connections: 1, heldChunks: 0, heldMsSum: 0 });
    assert.deepEqual(cb, { forwardBytes: 1000, backwardBytes: 2000, connections: 2, heldChunks: 0, heldMsSum: 0 });
    assert.equal(await linkBytes(links), 153_000);
    assert.deepEqual(messages, []);
  });

  it('without ss the bytes are NaN (not measured, never 0), and the run is told once', async () => {
    const messages: string[] = [];
    const reader = new TcpInfoReader((m) => messages.push(m), ['ss-not-installed-here', '-tinH']);
    const port = await doubler();
    await exchange(port, 100);
    for (const config of [new KernelLinkCounters(reader), new KernelLinkCounters(reader)]) {
      const c = await config.counter(port).snapshot();
      assert.ok(Number.isNaN(c.forwardBytes) && Number.isNaN(c.backwardBytes), JSON.stringify(c));
      assert.ok(Number.isNaN(await linkBytes([config.counter(port)])));
    }
    assert.equal(messages.length, 1, messages.join('\n'));
    assert.match(messages[0]!, /not measured: ss is not installed/);
  });
});
