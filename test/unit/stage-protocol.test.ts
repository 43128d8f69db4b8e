// The TypeScript stage codec on its own: the AEAD against RFC 8439 §2.8.2, frames that round-trip and
// refuse alteration, replay and the wrong key, the handshake's both sides agreeing, and the payload
// codecs (DECODE, RESULT, MEMORY, STATE) round-tripping. Interop with the engine itself is shown by
// test/integration/engine-security.test.ts (a decrypting relay in the chain's links).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  FrameType,
  MemoryOp,
  StateOp,
  aeadOpen,
  aeadSeal,
  decodeClientHello,
  decodeDecodeFrame,
  decodeFrame,
  decodeMemory,
  decodeResult,
  decodeState,
  encodeClientHello,
  encodeDecodeMeta,
  encodeFrame,
  encodeMemory,
  encodeResult,
  encodeServerHello,
  encodeState,
  emptyTrailer,
  newClientHello,
  proof,
  sessionKeys,
  transcript,
} from '../helpers/stage-protocol.js';

describe('stage protocol codec', () => {
  it('seals the RFC 8439 §2.8.2 example', () => {
    const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex');
    const nonce = Buffer.from('070000004041424344454647', 'hex');
    const aad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex');
    const pt = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const { ct, tag } = aeadSeal(key, nonce, aad, pt);
    assert.equal(ct.subarray(0, 16).toString('hex'), 'd31a8d34648e60db7b86afbc53ef7ec2');
    assert.equal(tag.toString('hex'), '1ae10b594f09e26a7e902ecbd0600691');
    assert.deepEqual(aeadOpen(key, nonce, aad, ct, tag), pt);
    assert.equal(aeadOpen(key, nonce, Buffer.from('x'), ct, tag), undefined);
  });

  it('a handshake gives both sides the same per-direction keys; frames round-trip and refuse alteration, replay and the wrong key', () => {
    const hello = newClientHello({ encrypt: true, rank: 2, addr: '10.0.0.2:9000' });
    const ch = encodeClientHello(hello);
    assert.deepEqual(decodeClientHello(ch)?.hello, hello);
    const sh = encodeServerHello({ nonce: randomBytes(32), flags: 1 });
    const tr = transcript(ch, sh);
    assert.notDeepEqual(proof('s', 'client', tr), proof('s', 'server', tr));
    for (const encrypt of [true, false]) {
      const c = sessionKeys('s', true, tr, encrypt);
      const s = sessionKeys('s', false, tr, encrypt);
      assert.deepEqual(c.send, s.recv);
      assert.notDeepEqual(c.send, c.recv);
      const payload = Buffer.from('rank=0;layers=0:2;\n');
      const f = encodeFrame(c, 0n, FrameType.hello, payload);
      assert.equal(f.subarray(12, 12 + payload.length).equals(payload), !encrypt, 'the payload must be in clear only without encryption');
      assert.deepEqual(decodeFrame(s, 0n, f)?.payload, payload);
      assert.throws(() => decodeFrame(s, 1n, f), /integrity/); // replayed as the next frame
      const flipped = Buffer.from(f);
      flipped[14]! ^= 1;
      assert.throws(() => decodeFrame(s, 0n, flipped), /integrity/);
      assert.throws(() => decodeFrame(c, 0n, f), /integrity/); // the other direction's key
    }
    assert.throws(() => decodeClientHello(Buffer.from('GET / HTTP/1.1\r\n')), /not the llama-relay stage protocol/);
  });

  it('DECODE, RESULT, MEMORY and STATE payloads round-trip', () => {
    const meta = { nEmbd: 4, flags: 1, pos: [5, 6, 7], seqIds: [[0], [0, 1], [1]], output: [false, false, true] };
    const hidden = randomBytes(3 * 4 * 4);
    const d = decodeDecodeFrame(Buffer.concat([encodeDecodeMeta(meta), hidden, emptyTrailer()]));
    assert.deepEqual(d.meta, meta);
    assert.deepEqual(d.hidden, hidden);
    assert.equal(d.metaBytes % 4, 0);
    const r = decodeResult(encodeResult(1, 4, hidden.subarray(0, 16)));
    assert.deepEqual([r.rows, r.nEmbd, r.data], [1, 4, hidden.subarray(0, 16)]);
    assert.deepEqual(decodeMemory(encodeMemory(MemoryOp.seqCp, 0, 1, -1, 7)), [2, 0, 1, -1, 7]);
    assert.deepEqual(decodeState(encodeState(StateOp.restore, 1, 3, 0xfedcba9876543210n)), { op: 1, seq: 1, flags: 3, key: 0xfedcba9876543210n });
  });
});
