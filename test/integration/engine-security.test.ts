// The stage links against someone on the network and against a peer that holds the secret:
// - an eavesdropper between the ranks sees neither the prompt's token ids nor the hidden states;
// - a flipped ciphertext byte is refused and logged, and the chain recovers;
// - malformed frames from an authenticated peer (seq ids beyond n_seq_max in DECODE, MEMORY and
//   STATE, RESULT dims that would overflow) are refused and logged, no rank crashes, the chain serves again
//   (a request whose RESULT was refused resumes on the re-formed chain);
// - ranks that disagree on encryption refuse each other;
// - idle TCP connections to the listeners keep the chain neither from forming nor from re-forming.
// A man-in-the-middle relay with the secret (test/helpers/stage-relay.ts) decodes and re-encodes every
// frame with the TypeScript codec: the chain computing exact results through it proves the codec.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  FrameType,
  MemoryOp,
  StateOp,
  decodeDecodeFrame,
  decodeResult,
  emptyTrailer,
  encodeDecodeMeta,
  encodeMemory,
  encodeState,
} from '../helpers/stage-protocol.js';
import { ASCII_GRAMMAR, complete, healthStatus, startChain, waitFor, type Chain } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { StageRelay } from '../helpers/stage-relay.js';

const RANGES: [number, number][] = [[0, 3], [3, 6]];
const EMBD = 128;
const NP = ['-np', '2']; // n_seq_max = 2 on every rank
const PROMPT = 'The quick brown fox jumps over the lazy dog near the river bank';
let model = '';

before(async () => {
  model = await makeFixture({ arch: 'llama', layers: 6, embd: EMBD, heads: 4, headsKv: 2, ff: 256 });
});

const hasLog = (c: Chain, rank: number, re: RegExp) => c.ranks[rank]!.proc.log.some((l) => re.test(l));
const alive = (c: Chain) => c.ranks.every((r) => r.proc.child.exitCode === null && r.proc.child.signalCode === null);

async function tokenize(port: number, content: string): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${port}/tokenize`, { method: 'POST', body: JSON.stringify({ content }) });
  return ((await r.json()) as { tokens: number[] }).tokens;
}

const i32s = (xs: number[]) => {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeInt32LE(x, 4 * i));
  return b;
};

/** 16-byte windows of the plaintext hidden states and output rows the relays decrypted. */
function plaintextWindows(relays: StageRelay[]): Buffer[] {
  const out: Buffer[] = [];
  for (const r of relays) {
    for (const f of r.frames) {
      const rows = f.type === FrameType.decode ? decodeDecodeFrame(f.payload).hidden : f.type === FrameType.result ? decodeResult(f.payload).data : undefined;
      if (!rows) continue;
      for (let o = 0; o + 16 <= rows.length && out.length < 4000; o += 64) {
        const w = rows.subarray(o, o + 16);
        if (w.some((b) => b !== 0)) out.push(Buffer.from(w));
      }
    }
  }
  return out;
}

async function relayedChain(encrypt: boolean, extra: string[] = []) {
  const relays: StageRelay[] = [];
  const chain = await startChain(model, RANGES, [...NP, ...extra, ...(encrypt ? [] : ['--stage-no-encrypt'])], {
    timeoutS: 5,
    via: async (i, next, secret) => {
      const r = await StageRelay.start(next, secret, encrypt);
      relays[i] = r;
      return r.listen;
    },
  });
  return { chain, relays };
}

describe('an encrypted chain, with a decrypting relay on every link', () => {
  let chain: Chain;
  let relays: StageRelay[];
  let reference = '';
  before(async () => {
    ({ chain, relays } = await relayedChain(true));
    reference = (await complete(chain.port, { prompt: 'Hello there', n_predict: 12 })).content;
  });
  after(async () => {
    await chain.stop();
    await Promise.all(relays.map((r) => r.stop()));
  });

  // the head re-forms the chain after a refusal: a new connection through the first relay, then healthy
  let connectionsBefore = 0;
  const servesAgain = async () => {
    await waitFor(() => relays[0]!.connections > connectionsBefore, 'the head to reconnect', 60_000);
    await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'chain healthy again', 60_000);
    assert.equal((await complete(chain.port, { prompt: 'Hello there', n_predict: 12 })).content, reference);
    assert.ok(alive(chain), 'a rank died');
  };

  test('the wire shows neither the token ids nor the hidden states; every frame type decodes with the TS codec', async () => {
    // more distinct prompts than slots: a slot's cached prompt is saved to the RAM prompt cache (a STATE frame)
    for (const prompt of [PROMPT, 'Another, different prompt about something else entirely', 'A third one, to push a slot out', PROMPT]) {
      await complete(chain.port, { prompt, n_predict: 8 });
    }
    const tokens = await tokenize(chain.port, PROMPT);
    assert.ok(tokens.length >= 6, `the prompt has only ${tokens.length} tokens`);
    const needle = i32s(tokens.slice(1, 5));
    const wire = Buffer.concat(relays.map((r) => r.captured()));
    assert.ok(wire.length > 10_000, `only ${wire.length} bytes captured`);
    assert.equal(wire.indexOf(needle), -1, 'the prompt token ids are on the wire');
    // workers start from the hidden state: the token ids are not even inside the encryption
    const decrypted = Buffer.concat(relays.flatMap((r) => r.frames.map((f) => f.payload)));
    assert.equal(decrypted.indexOf(needle), -1, 'token ids are still sent to the workers');
    const windows = plaintextWindows(relays);
    assert.ok(windows.length > 100, `only ${windows.length} hidden-state windows decrypted`);
    assert.ok(decrypted.indexOf(windows[0]!) >= 0, 'positive control: the window is in the decrypted data');
    const leaked = windows.filter((w) => wire.indexOf(w) >= 0).length;
    assert.equal(leaked, 0, `${leaked} of ${windows.length} plaintext hidden-state windows appear on the wire`);
    const types = new Set(relays.flatMap((r) => r.frames.map((f) => f.type)));
    for (const t of [FrameType.hello, FrameType.decode, FrameType.result, FrameType.memory, FrameType.state]) {
      assert.ok(types.has(t), `no frame of type ${t} was relayed (seen: ${[...types].join(',')})`);
    }
    for (const f of relays[0]!.frames.filter((x) => x.type === FrameType.decode)) {
      const d = decodeDecodeFrame(f.payload);
      assert.equal(d.meta.nEmbd, EMBD);
      assert.equal(d.hidden.length, d.meta.pos.length * EMBD * 4);
      assert.equal(d.trailer.length, 4 + 8 * d.trailer.readUInt32LE(0));
    }
  });

  test('a flipped ciphertext byte is refused and logged, and the chain recovers', async () => {
    connectionsBefore = relays[0]!.connections;
    relays[0]!.flipNext('down');
    await fetch(`http://127.0.0.1:${chain.port}/completion`, { method: 'POST', body: JSON.stringify({ prompt: 'Hello', n_predict: 4 }) });
    await waitFor(() => hasLog(chain, 1, /frame \d+ from .* failed its integrity check \(altered or injected\)/), 'the integrity failure logged', 20_000);
    await servesAgain();
  });

  const injected: [string, () => Buffer, number, RegExp][] = [
    [
      'DECODE with n_seq_id > n_seq_max',
      () => Buffer.concat([encodeDecodeMeta({ nEmbd: EMBD, flags: 0, pos: [0, 1, 2, 3], seqIds: [[0, 1, 1], [0], [0], [0]], output: [false, false, false, true] }), Buffer.alloc(4 * EMBD * 4), emptyTrailer()]),
      FrameType.decode,
      /refusing a frame from .*: malformed DECODE frame from upstream: DECODE frame has n_seq_id 3 for token 0 \(n_seq_max is 2\)/,
    ],
    [
      'DECODE with a seq id beyond n_seq_max',
      () => Buffer.concat([encodeDecodeMeta({ nEmbd: EMBD, flags: 0, pos: [0], seqIds: [[7]], output: [true] }), Buffer.alloc(EMBD * 4), emptyTrailer()]),
      FrameType.decode,
      /refusing a frame from .*: malformed DECODE frame from upstream: DECODE frame has seq id 7 \(n_seq_max is 2\)/,
    ],
    ['MEMORY seq_rm of sequence 9', () => encodeMemory(MemoryOp.seqRm, 9, 0, -1), FrameType.memory, /refusing a frame from .*: seq_rm of sequence 9 \(n_seq_max is 2\)/],
    ['MEMORY seq_cp to sequence -3', () => encodeMemory(MemoryOp.seqCp, 0, -3, 0, -1), FrameType.memory, /refusing a frame from .*: seq_cp of sequence 0 to -3/],
    ['MEMORY seq_div by zero', () => encodeMemory(MemoryOp.seqDiv, 0, 0, -1, 0), FrameType.memory, /refusing a frame from .*: seq_div by 0/],
    ['STATE restore of sequence 99', () => encodeState(StateOp.restore, 99, 0, 1n), FrameType.state, /refusing a frame from .*: STATE frame names sequence 99 \(n_seq_max is 2\)/],
  ];
  for (const [name, payload, type, logged] of injected) {
    test(`an authenticated peer's ${name} is refused and logged; no crash, the chain serves again`, async () => {
      connectionsBefore = relays[0]!.connections;
      relays[0]!.inject('down', type, payload());
      await waitFor(() => hasLog(chain, 1, logged), `the refusal logged (${logged})`, 20_000);
      await servesAgain();
    });
  }

  test("RESULT dims that would overflow the head's size arithmetic are refused and logged", async () => {
    let done = false;
    connectionsBefore = relays[0]!.connections;
    relays[1]!.rewrite = (f) => {
      if (done || f.type !== FrameType.result) return [f];
      done = true;
      const p = Buffer.from(f.payload);
      p.writeUInt32LE(0xffffffff, 0);
      p.writeUInt32LE(0xffffffff, 4);
      return [{ ...f, payload: p }];
    };
    // Greedy and printable, as complete() asks: a random-weight model's sampled bytes can end mid-character, which the
    // server's own output parser refuses (a 500 that has nothing to do with the refusal under test).
    const body = { prompt: 'Hello', n_predict: 4, temperature: 0, grammar: ASCII_GRAMMAR };
    const r = await fetch(`http://127.0.0.1:${chain.port}/completion`, { method: 'POST', body: JSON.stringify(body) });
    assert.ok(done, 'no RESULT was rewritten');
    assert.ok(hasLog(chain, 0, /malformed RESULT frame from the last rank: 4294967295 x 4294967295 values/), 'the head did not log the refusal');
    // The refusal drops the link, so the request in flight resumes once the chain re-forms (patch 0007) instead of failing.
    assert.equal(r.status, 200, await r.text());
    assert.ok(hasLog(chain, 0, /resuming 1 request\(s\) after /), 'the head did not resume the request');
    relays[1]!.rewrite = undefined;
    await servesAgain();
    // the refusals travelled upstream as ERROR frames, which the codec decoded too
    assert.ok(relays[0]!.frames.some((f) => f.dir === 'up' && f.type === FrameType.error));
  });
});

describe('link encryption off (--stage-no-encrypt), the positive control', () => {
  test('the same capture shows the hidden states in clear', async () => {
    const { chain, relays } = await relayedChain(false);
    try {
      await complete(chain.port, { prompt: PROMPT, n_predict: 8 });
      const wire = Buffer.concat(relays.map((r) => r.captured()));
      const windows = plaintextWindows(relays);
      assert.ok(windows.length > 50);
      assert.ok(windows.filter((w) => wire.indexOf(w) >= 0).length > windows.length / 2, 'the capture check could never fail');
      assert.match((await healthStatus(chain.port)).body, /"encrypted":false/);
    } finally {
      await chain.stop();
      await Promise.all(relays.map((r) => r.stop()));
    }
  });

  test('a rank that disagrees on encryption is refused, naming both modes', async () => {
    const chain = await startChain(model, RANGES, NP, { waitHealthy: false, perRankArgs: (i) => (i === 1 ? ['--stage-no-encrypt'] : []) });
    try {
      await waitFor(async () => /every rank must agree/.test((await healthStatus(chain.port)).body), 'health to report the mismatch', 60_000);
      assert.match((await healthStatus(chain.port)).body, /uses unencrypted links \(--stage-no-encrypt\), this rank uses encrypted links/);
      await waitFor(() => hasLog(chain, 1, /refused connection from .*uses encrypted links, this rank uses unencrypted links/), 'the worker logs it', 20_000);
    } finally {
      await chain.stop();
    }
  });
});

describe('idle connections', () => {
  const idle: Socket[] = [];
  const openIdle = async (listen: string, n: number) => {
    const [host, port] = listen.split(':');
    for (let i = 0; i < n; i++) {
      const s = connect(Number(port), host);
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      idle.push(s);
    }
  };
  after(() => {
    for (const s of idle) s.destroy();
  });

  test('16 idle TCP connections to a worker (and the head) keep the chain neither from forming nor from re-forming', async () => {
    const chain = await startChain(model, [[0, 2], [2, 4], [4, 6]], NP, {
      timeoutS: 5,
      waitHealthy: false,
      onRankReady: (_i, listen) => openIdle(listen, 16),
    });
    try {
      // the ring closes within its 30 s deadline although every worker's backlog starts with 16 silent clients
      await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'the chain to form', 30_000);
      await openIdle(chain.ranks[0]!.listen, 16);
      await chain.restartRank(1); // onRankReady opens 16 more idle connections to the new rank 1
      await waitFor(async () => (await healthStatus(chain.port)).status === 200 && hasLog(chain, 1, /session started/), 'the chain to re-form', 30_000);
      assert.ok((await complete(chain.port, { prompt: 'Hello there', n_predict: 4 })).probs.length > 0);
      assert.ok(hasLog(chain, 1, /refused connection from .*(did not finish within|dropped while authenticating)/), 'the idle connections were never refused');
    } finally {
      await chain.stop();
    }
  });
});
