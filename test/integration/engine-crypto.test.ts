// Known-answer tests of the engine's own link cryptography (src/llama-stage-crypto.cpp in the patches),
// through `llama-server --stage-selftest`: SHA-256 (FIPS 180-4 examples), HMAC-SHA256 (RFC 4231),
// ChaCha20, Poly1305 and AEAD_CHACHA20_POLY1305 (RFC 8439 §2.x and appendix A), then random inputs
// against node's OpenSSL, which must agree with the engine byte for byte.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { aeadSeal } from '../helpers/stage-protocol.js';
import { binDirs } from '../helpers/engine.js';

let server = '';
before(async () => {
  server = join((await binDirs()).patched, 'llama-server');
});

/** Sends command lines to the engine's self-test and returns one answer per line. */
async function selftest(lines: string[]): Promise<string[]> {
  const p = spawn(server, ['--stage-selftest'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stdin.end(lines.join('\n') + '\n');
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  assert.equal(code, 0);
  const answers = out.trim().split('\n');
  assert.equal(answers.length, lines.length, out);
  return answers;
}

const hex = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s).toString('hex') || '-';
const rep = (b: number, n: number) => Buffer.alloc(n, b).toString('hex');

describe('SHA-256 (FIPS 180-4 examples)', () => {
  test('abc, the empty string, the 448- and 896-bit messages, one million a', async () => {
    const got = await selftest([
      `sha256 ${hex('abc')}`,
      'sha256 -',
      `sha256 ${hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')}`,
      `sha256 ${hex('abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu')}`,
      `sha256-repeat ${hex('a')} 1000000`,
    ]);
    assert.deepEqual(got, [
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    ]);
  });
});

describe('SHA-256 and HMAC-SHA256 at the block boundaries, against OpenSSL', () => {
  test('every message length 0..200 (padding at 55/56, 64, 119/120, ...) and keys of 1..64..200 bytes', async () => {
    const lines: string[] = [];
    const want: string[] = [];
    for (let n = 0; n <= 200; n++) {
      const msg = randomBytes(n);
      lines.push(`sha256 ${hex(msg)}`);
      want.push(createHash('sha256').update(msg).digest('hex'));
    }
    // keys shorter than, equal to and longer than the 64-byte block (longer ones are hashed first)
    for (const k of [1, 20, 32, 63, 64, 65, 100, 128, 131, 200]) {
      const key = randomBytes(k);
      const msg = randomBytes(randomInt(0, 300));
      lines.push(`hmac ${hex(key)} ${hex(msg)}`);
      want.push(createHmac('sha256', key).update(msg).digest('hex'));
    }
    assert.deepEqual(await selftest(lines), want);
  });
});

describe('HMAC-SHA256 (RFC 4231)', () => {
  test('test cases 1-7', async () => {
    const big = rep(0xaa, 131);
    const got = await selftest([
      `hmac ${rep(0x0b, 20)} ${hex('Hi There')}`,
      `hmac ${hex('Jefe')} ${hex('what do ya want for nothing?')}`,
      `hmac ${rep(0xaa, 20)} ${rep(0xdd, 50)}`,
      `hmac 0102030405060708090a0b0c0d0e0f10111213141516171819 ${rep(0xcd, 50)}`,
      `hmac ${rep(0x0c, 20)} ${hex('Test With Truncation')}`,
      `hmac ${big} ${hex('Test Using Larger Than Block-Size Key - Hash Key First')}`,
      `hmac ${big} ${hex('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.')}`,
    ]);
    assert.deepEqual(got.map((h, i) => (i === 4 ? h.slice(0, 32) : h)), [
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
      '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
      'a3b6167473100ee06e0c796c2955552b', // truncated to 128 bits, as the RFC gives it
      '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    ]);
  });
});

describe('ChaCha20-Poly1305 (RFC 8439)', () => {
  test('ChaCha20 block function: §2.3.2 and appendix A.1 #1, #2', async () => {
    const got = await selftest([
      'chacha20-block 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 000000090000004a00000000 1',
      `chacha20-block ${rep(0, 32)} ${rep(0, 12)} 0`,
      `chacha20-block ${rep(0, 32)} ${rep(0, 12)} 1`,
    ]);
    assert.deepEqual(got, [
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4ed2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e',
      '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586',
      '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f',
    ]);
  });

  test('Poly1305: §2.5.2 and the appendix A.3 vectors, including the carry and wrap-around cases', async () => {
    const z = rep(0, 16);
    const r2 = '02' + rep(0, 15);
    const r1 = '01' + rep(0, 15);
    const r14 = '0100000000000000' + '0400000000000000';
    const cases: [string, string, string][] = [
      ['85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b', hex('Cryptographic Forum Research Group'), 'a8061dc1305136c6c22b8baf0c0127a9'],
      [rep(0, 32), rep(0, 64), z], // A.3 #1
      [z + '36e5f6b5c5e06070f0efca96227a863e', hex('Any submission to the IETF intended by the Contributor for publication'), '36e5f6b5c5e06070f0efca96227a863e'], // #2: r = 0
      [r2 + z, rep(0xff, 16), '03' + rep(0, 15)], // #5
      [r2 + rep(0xff, 16), '02' + rep(0, 15), '03' + rep(0, 15)], // #6
      [r1 + z, rep(0xff, 16) + 'f0' + rep(0xff, 15) + '11' + rep(0, 15), '05' + rep(0, 15)], // #7
      [r1 + z, rep(0xff, 16) + 'fb' + rep(0xfe, 15) + rep(0x01, 16), z], // #8
      [r2 + z, 'fd' + rep(0xff, 15), 'fa' + rep(0xff, 15)], // #9
      [r14 + z, 'e33594d7505e43b9' + rep(0, 8) + '3394d7505e4379cd01' + rep(0, 7) + rep(0, 16) + '01' + rep(0, 15), '1400000000000000' + '5500000000000000'], // #10
      [r14 + z, 'e33594d7505e43b9' + rep(0, 8) + '3394d7505e4379cd01' + rep(0, 7) + rep(0, 16), '13' + rep(0, 15)], // #11
    ];
    assert.deepEqual(await selftest(cases.map(([k, m]) => `poly1305 ${k} ${m}`)), cases.map((c) => c[2]));
  });

  test('AEAD: the §2.8.2 sunscreen example, and the appendix A.5 decryption (also refused when altered)', async () => {
    const key = '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f';
    const pt = hex("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const k5 = '1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0';
    const ct5 =
      '64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b';
    const tag5 = 'eead9d67890cbb22392336fea1851f38';
    const flipped = (ct5.slice(0, 10) + (ct5[10] === '0' ? '1' : '0') + ct5.slice(11));
    const [sealed, opened, refused, badTag] = await selftest([
      `aead-seal ${key} 070000004041424344454647 50515253c0c1c2c3c4c5c6c7 ${pt}`,
      `aead-open ${k5} 000000000102030405060708 f33388860000000000004e91 ${ct5} ${tag5}`,
      `aead-open ${k5} 000000000102030405060708 f33388860000000000004e91 ${flipped} ${tag5}`,
      `aead-open ${k5} 000000000102030405060708 f33388860000000000004e90 ${ct5} ${tag5}`,
    ]);
    assert.equal(
      sealed,
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' +
        '1ae10b594f09e26a7e902ecbd0600691',
    );
    assert.match(Buffer.from(opened!, 'hex').toString('latin1'), /^Internet-Drafts are draft documents valid for a maximum of six months/);
    assert.equal(refused, 'FAIL');
    assert.equal(badTag, 'FAIL');
  });

  test('random keys, nonces, lengths and counters agree with OpenSSL (streamed in uneven pieces)', async () => {
    const lines: string[] = [];
    const want: string[] = [];
    for (let i = 0; i < 120; i++) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const aad = randomBytes(randomInt(0, 40));
      const pt = randomBytes(i < 70 ? i : randomInt(70, 3000));
      const { ct, tag } = aeadSeal(key, nonce, aad, pt);
      lines.push(`aead-seal ${key.toString('hex')} ${nonce.toString('hex')} ${hex(aad)} ${hex(pt)}`);
      want.push(ct.toString('hex') + tag.toString('hex'));
      // raw ChaCha20 from an arbitrary counter, against OpenSSL's (iv = counter | nonce)
      const counter = randomInt(0, 2 ** 31);
      const iv = Buffer.alloc(16);
      iv.writeUInt32LE(counter, 0);
      nonce.copy(iv, 4);
      const c = createCipheriv('chacha20', key, iv);
      lines.push(`chacha20 ${key.toString('hex')} ${nonce.toString('hex')} ${counter} ${hex(pt)}`);
      want.push(hex(c.update(pt)));
      lines.push(`sha256 ${hex(pt)}`);
      want.push(createHash('sha256').update(pt).digest('hex'));
      lines.push(`hmac ${hex(aad.length ? aad : Buffer.from([1]))} ${hex(pt)}`);
      want.push(createHmac('sha256', aad.length ? aad : Buffer.from([1])).update(pt).digest('hex'));
    }
    assert.deepEqual(await selftest(lines), want);
  });

  test('nonces come from the kernel: two draws differ', async () => {
    const [a, b] = await selftest(['random 32', 'random 32']);
    assert.match(a!, /^[0-9a-f]{64}$/);
    assert.notEqual(a, b);
  });
});
