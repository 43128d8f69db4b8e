// Bad input never crashes or hangs a rank: wrong secrets, garbage, bad frames, mismatched settings,
// a rank that dies mid-generation (and comes back), and a rank that hangs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { headHealth } from '../../src/runtime/head-client.js';
import { FrameType } from '../helpers/stage-protocol.js';
import { complete, healthStatus, startChain, waitFor, type Chain } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { RawClient } from '../helpers/stage-client.js';

const RANGES: [number, number][] = [[0, 2], [2, 4], [4, 6]];
let model = '';

before(async () => {
  model = await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 });
});

const hasLog = (c: Chain, rank: number, re: RegExp) => c.ranks[rank]!.proc.log.some((l) => re.test(l));

describe('stage links refuse bad peers and keep serving', () => {
  let chain: Chain;
  let reference = '';
  before(async () => {
    chain = await startChain(model, RANGES, [], { timeoutS: 5 });
    reference = (await complete(chain.port, { prompt: 'Hello there', n_predict: 16 })).content;
  });
  after(async () => {
    await chain.stop();
  });

  const stillServes = async () => {
    await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'chain healthy again', 30_000);
    assert.equal((await complete(chain.port, { prompt: 'Hello there', n_predict: 16 })).content, reference);
  };

  test("the head's /health reports per-token timing for every rank", async () => {
    await complete(chain.port, { prompt: 'Hello there', n_predict: 8 });
    const h = JSON.parse((await healthStatus(chain.port)).body) as {
      status: string;
      chain: { ranks: { rank: number; layers: string; compute_ms_per_token: number }[]; tokens: number; round_trip_ms_per_token: number; hop_ms: number };
    };
    assert.equal(h.status, 'ok');
    assert.deepEqual(h.chain.ranks.map((r) => r.layers), RANGES.map(([a, b]) => `${a}:${b}`));
    assert.ok(h.chain.tokens >= 7, `only ${h.chain.tokens} decode tokens were timed`);
    assert.ok(h.chain.ranks.every((r) => r.compute_ms_per_token > 0));
    assert.ok(h.chain.round_trip_ms_per_token > 0 && h.chain.hop_ms >= 0);
    // the orchestrator's client reads the same numbers (they feed the TUI's hop-time column)
    const parsed = await headHealth(`http://127.0.0.1:${chain.port}`);
    assert.ok(parsed.ok && parsed.chain && parsed.chain.ranks.length === RANGES.length);
  });

  test('a wrong secret is refused and logged', async () => {
    const c = await RawClient.open(chain.ranks[1]!.listen);
    assert.equal(await c.handshake('not-the-secret'), false);
    c.close();
    await waitFor(() => hasLog(chain, 1, /refused connection from .*wrong or missing stage secret/), 'refusal logged', 10_000);
    await stillServes();
  });

  test('a connection that sends no secret at all is refused', async () => {
    const c = await RawClient.open(chain.ranks[2]!.listen);
    assert.ok(await c.closedWithin(10_000), 'the rank did not drop a silent client');
    await stillServes();
  });

  test('garbage bytes drop the connection', async () => {
    const c = await RawClient.open(chain.ranks[1]!.listen);
    c.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, 'x')));
    assert.ok(await c.closedWithin(10_000), 'the rank kept a garbage connection');
    await waitFor(() => hasLog(chain, 1, /does not speak the llama-relay stage protocol/), 'protocol refusal logged', 10_000);
    await stillServes();
  });

  test('the head refuses bad peers on its return link too', async () => {
    const c = await RawClient.open(chain.ranks[0]!.listen);
    assert.equal(await c.handshake('not-the-secret'), false);
    c.close();
    await waitFor(() => hasLog(chain, 0, /refused connection from/), 'head refusal logged', 10_000);
    await stillServes();
  });

  test('oversized, truncated and altered frames from an authenticated peer drop that connection', async () => {
    const secret = readFileSync(chain.secretFile, 'utf8').trim();
    // an oversized length field
    const big = await RawClient.open(chain.ranks[2]!.listen);
    assert.ok(await big.handshake(secret));
    big.sendFrame(FrameType.hello, Buffer.alloc(8), 1n << 40n);
    assert.ok(await big.closedWithin(10_000), 'oversized frame not dropped');
    await waitFor(() => hasLog(chain, 2, /frame of 1099511627776 bytes from .* exceeds the limit/), 'oversize logged', 10_000);
    // an altered frame: correctly sequenced (seq 0, the right key), one payload byte flipped on the way
    const bad = await RawClient.open(chain.ranks[2]!.listen);
    assert.ok(await bad.handshake(secret));
    const frame = bad.frame(FrameType.hello, Buffer.from('rank=0;layers=0:2;\n'));
    frame[12 + 3]! ^= 0x20;
    bad.write(frame);
    assert.ok(await bad.closedWithin(10_000), 'altered frame not dropped');
    await waitFor(() => hasLog(chain, 2, /no HELLO from upstream: frame 0 from .* failed its integrity check \(altered or injected\)/), 'the integrity failure logged', 10_000);
    // a truncated frame: a header that promises more than ever arrives
    const cut = await RawClient.open(chain.ranks[2]!.listen);
    assert.ok(await cut.handshake(secret));
    const hdr = Buffer.alloc(12);
    hdr.writeUInt32LE(FrameType.hello, 0);
    hdr.writeBigUInt64LE(1000n, 4);
    cut.write(Buffer.concat([hdr, Buffer.alloc(10)]));
    assert.ok(await cut.closedWithin(20_000), 'truncated frame not dropped');
    assert.ok(chain.ranks.every((r) => r.proc.child.exitCode === null), 'a rank died');
    // the authenticated intruders displaced the real session; the head reconnects by itself
    await stillServes();
  });
});

describe('handshake mismatch', () => {
  test('a rank with other settings is refused with a message naming both sides', async () => {
    const chain = await startChain(model, RANGES, [], {
      waitHealthy: false,
      perRankArgs: (i) => (i === 2 ? ['-ctk', 'q8_0'] : []),
    });
    try {
      let body = '';
      await waitFor(async () => {
        const h = await healthStatus(chain.port);
        body = h.body;
        return h.status === 503 && /type_k/.test(h.body);
      }, 'health to report the mismatch', 60_000);
      assert.match(body, /head .* has f16, rank 2 .* has q8_0/);
      assert.ok(hasLog(chain, 2, /refusing the chain: .*type_k/));
    } finally {
      await chain.stop();
    }
  });

  test('ranks that do not tile the layers are refused', async () => {
    const chain = await startChain(model, [[0, 2], [3, 6]], [], { waitHealthy: false });
    try {
      await waitFor(async () => /layer coverage broken/.test((await healthStatus(chain.port)).body), 'coverage error', 60_000);
    } finally {
      await chain.stop();
    }
  });
});

describe('a rank that dies or hangs', () => {
  let chain: Chain;
  before(async () => {
    // resume off (--stage-resume-timeout 0): these tests check the fail-fast path; engine-resume checks resuming
    chain = await startChain(model, RANGES, ['-c', '2048', '--stage-resume-timeout', '0'], { timeoutS: 4 });
  });
  after(async () => {
    await chain.stop();
  });

  test('death mid-generation: an error naming the rank, /health says so, recovery after restart', async () => {
    const want = await complete(chain.port, { prompt: 'Once upon a time', n_predict: 32 });
    // stream, and kill rank 1 once 5 tokens have arrived: the failure is mid-generation by construction
    const r = await fetch(`http://127.0.0.1:${chain.port}/completion`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'Tell me a long story', n_predict: 1500, temperature: 0, ignore_eos: true, stream: true }),
    });
    assert.equal(r.status, 200);
    const reader = r.body!.getReader();
    let body = '';
    let killed = false;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += Buffer.from(value).toString();
      const tokens = (body.match(/"content"/g) ?? []).length;
      if (!killed && tokens >= 5) {
        killed = true;
        chain.ranks[1]!.proc.child.kill('SIGKILL');
      }
    }
    assert.ok(killed, `the stream ended before 5 tokens: ${body.slice(0, 300)}`);
    const streamed = (body.match(/"content"/g) ?? []).length;
    assert.ok(streamed < 1500, 'the generation finished although a rank died');
    assert.match(body, /error[\s\S]*rank 1/);
    const h = await healthStatus(chain.port);
    assert.equal(h.status, 503);
    assert.match(h.body, /rank 1/);
    await chain.restartRank(1);
    await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'reconnection', 60_000);
    const again = await complete(chain.port, { prompt: 'Once upon a time', n_predict: 32 });
    assert.deepEqual(again.probs.map((p) => p.id), want.probs.map((p) => p.id));
    assert.ok(chain.ranks[0]!.proc.child.exitCode === null, 'the head restarted');
  });

  test('a hung rank is detected by the timeout, and the chain recovers when it wakes', async () => {
    const want = await complete(chain.port, { prompt: 'Hello', n_predict: 8 });
    const pid = chain.ranks[2]!.proc.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const r = await fetch(`http://127.0.0.1:${chain.port}/completion`, {
        method: 'POST',
        body: JSON.stringify({ prompt: 'Hello, a new prompt', n_predict: 8, temperature: 0 }),
      });
      const body = await r.text();
      assert.notEqual(r.status, 200);
      // the head waited its whole --stage-timeout (4 s) before giving up, and says so
      assert.match(body, /no answer from the chain within 4 s/);
      assert.ok(Date.now() - t0 >= 4000, `the request failed after ${Date.now() - t0} ms, before the 4 s timeout`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'recovery', 60_000);
    const again = await complete(chain.port, { prompt: 'Hello', n_predict: 8 });
    assert.deepEqual(again.probs.map((p) => p.id), want.probs.map((p) => p.id));
    assert.equal(again.content, want.content);
  });
});
