// Fuzzed, truncated and hostile GGUFs: each gives a GgufError naming the file, quickly and without big allocations.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MemoryByteReader } from '../../src/gguf/byte-reader.js';
import {
  GgufError,
  GgufFormatError,
  GgufLimitError,
  GgufMagicError,
  GgufReadError,
  GgufTruncatedError,
  GgufUnknownTypeError,
  GgufVersionError,
} from '../../src/gguf/errors.js';
import { readGgufHeader } from '../../src/gguf/model.js';
import { parseGguf } from '../../src/gguf/parser.js';
import { GgufValueType as T } from '../../src/gguf/types.js';
import { formatError } from '../../src/errors.js';
import { Prng } from '../../src/gguf/fixture/prng.js';
import { rawGguf, sampleGguf } from '../helpers/gguf-build.js';

const NAME = '/models/evil.gguf';
const tmp = await mkdtemp(join(tmpdir(), 'llama-relay-bad-'));
after(() => rm(tmp, { recursive: true, force: true }));

async function rejects(bytes: Uint8Array, cls: new (...a: never[]) => GgufError, problem: RegExp): Promise<void> {
  const err = await parseGguf(new MemoryByteReader(NAME, bytes)).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  assert.ok(err.message.startsWith(`${NAME}: `), err.message);
  assert.match(err.message, problem);
  assert.match(formatError(err), /^error: \/models\/evil\.gguf: /);
}

test('the sample parses with every value type intact', async () => {
  const h = await parseGguf(new MemoryByteReader(NAME, sampleGguf()));
  const v = Object.fromEntries(h.kvs.map((k) => [k.key, k.value]));
  assert.deepEqual(
    { ...v, strs: undefined, ints: undefined },
    {
      'general.architecture': 'llama', u8: 200, i8: -5, u16: 60000, i16: -300, u32: 4000000000, i32: -2000000000,
      f32: 0.5, bool: true, u64: 1n << 60n, i64: -(1n << 60n), f64: Math.PI, strs: undefined, ints: undefined,
    },
  );
  assert.deepEqual(v.strs, { itemType: T.STRING, items: ['a', 'bé', '\uFEFFbom'] });
  assert.deepEqual(v.ints, { itemType: T.INT32, items: [1, -2, 3] });
  assert.deepEqual(h.tensors.map((t) => [t.name, t.byteSize, t.offset]), [
    ['token_embd.weight', 128, 0],
    ['blk.0.attn_norm.weight', 32, 128],
    ['blk.0.ffn_down.weight', 68, 160],
  ]);
});

test('bad magic, v1, future versions and big-endian files are refused', async () => {
  await rejects(rawGguf({ magic: 0x4c4d4747 }), GgufMagicError, /not a GGUF file \(magic is "GGML"/);
  await rejects(rawGguf({ version: 1 }), GgufVersionError, /v1 is no longer supported/);
  await rejects(rawGguf({ version: 4 }), GgufVersionError, /unsupported GGUF version 4/);
  await rejects(rawGguf({ version: 0x03000000 }), GgufVersionError, /big-endian/);
  await rejects(new Uint8Array([0x47, 0x47]), GgufTruncatedError, /truncated/);
});

test('absurd counts and lengths are refused before allocating', async () => {
  await rejects(rawGguf({ nTensors: 1n << 60n }), GgufLimitError, /tensor count is 1152921504606846976/);
  await rejects(rawGguf({ nKv: (1n << 64n) - 1n }), GgufLimitError, /metadata key count/);
  // a 4 GB key string
  await rejects(rawGguf({ nKv: 1n, body: (s) => s.u64(4n << 30n), tail: 64 }), GgufLimitError, /key 0 claims 4294967296 bytes/);
  // a 4 GB string value
  await rejects(
    rawGguf({ nKv: 1n, body: (s) => { s.string('k'); s.u32(T.STRING); s.u64(4n << 30n); }, tail: 64 }),
    GgufLimitError,
    /value of key "k" claims 4294967296 bytes/,
  );
  // an array of 2^62 u32s
  await rejects(
    rawGguf({ nKv: 1n, body: (s) => { s.string('k'); s.u32(T.ARRAY); s.u32(T.UINT32); s.u64(1n << 62n); }, tail: 64 }),
    GgufLimitError,
    /item count of array "k"/,
  );
  // a tensor whose element count overflows
  await rejects(
    rawGguf({ nTensors: 1n, body: (s) => { s.string('t'); s.u32(4); for (let i = 0; i < 4; i++) s.u64(1n << 40n); s.u32(0); s.u64(0); }, tail: 64 }),
    GgufLimitError,
    /absurd number of elements/,
  );
});

test('unknown types and bad structure are named', async () => {
  const tensor = (type: number, dims = [32]) => rawGguf({
    nTensors: 1n,
    body: (s) => { s.string('blk.0.x'); s.u32(dims.length); for (const d of dims) s.u64(d); s.u32(type); s.u64(0); },
    tail: 256,
  });
  await rejects(tensor(31), GgufUnknownTypeError, /unknown ggml type 31 \(a type removed from ggml\)/);
  await rejects(tensor(99), GgufUnknownTypeError, /unknown ggml type 99/);
  await rejects(tensor(12, [100]), GgufFormatError, /not a multiple of the Q4_K block size 256/);
  await rejects(tensor(0, [1, 1, 1, 1, 1]), GgufFormatError, /5 dimensions/);
  await rejects(rawGguf({ nKv: 1n, body: (s) => { s.string('k'); s.u32(77); }, tail: 16 }), GgufFormatError, /invalid value type 77/);
  await rejects(
    rawGguf({ nKv: 2n, body: (s) => { s.kv('k', T.UINT8, 1); s.kv('k', T.UINT8, 2); } }),
    GgufFormatError,
    /duplicate metadata key "k"/,
  );
  await rejects(
    rawGguf({ nKv: 1n, body: (s) => s.kv('general.alignment', T.UINT32, 48) }),
    GgufFormatError,
    /power of two/,
  );
  await rejects(tensor(0, [1 << 20]), GgufTruncatedError, /data of tensor "blk.0.x"/);
});

test('every truncation of a valid file is reported as truncated, naming the file', async () => {
  const full = sampleGguf();
  for (let n = 0; n < full.length; n++) {
    const err = await parseGguf(new MemoryByteReader(NAME, full.subarray(0, n))).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof GgufError, `prefix ${n}: ${String(err)}`);
    assert.ok(err instanceof GgufTruncatedError || err instanceof GgufLimitError, `prefix ${n}: ${err.message}`);
    assert.ok(err.message.startsWith(NAME));
  }
});

test('random corruption never crashes, hangs or throws anything but a GgufError', async () => {
  const base = sampleGguf();
  const rng = new Prng(42);
  const started = Date.now();
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const b = base.slice();
    const flips = 1 + Math.floor(rng.next() * 6);
    for (let f = 0; f < flips; f++) {
      const at = Math.floor(rng.next() * b.length);
      b[at] = Math.floor(rng.next() * 256);
    }
    try {
      await parseGguf(new MemoryByteReader(NAME, b));
    } catch (e) {
      if (!(e instanceof GgufError)) throw new Error(`iteration ${i}: non-GGUF error ${String(e)}`, { cause: e });
      assert.ok(e.message.startsWith(NAME));
      refused++;
    }
  }
  assert.ok(refused > 500, `only ${refused} corruptions refused`);
  assert.ok(Date.now() - started < 30_000);
});

test('files: non-GGUF blobs, missing files and directories', async () => {
  const json = join(tmp, 'sha256-abc');
  await writeFile(json, '{"schemaVersion":2}');
  await assert.rejects(readGgufHeader(json), (e: unknown) => e instanceof GgufMagicError && e.message.startsWith(json) && /magic is "\{"sc"/.test(e.message));
  const missing = join(tmp, 'nope.gguf');
  await assert.rejects(readGgufHeader(missing), (e: unknown) => e instanceof GgufReadError && e.message === `${missing}: cannot read file: no such file`);
  const dir = join(tmp, 'dir.gguf');
  await mkdir(dir);
  await assert.rejects(readGgufHeader(dir), (e: unknown) => e instanceof GgufReadError && e.message.startsWith(dir));
  const empty = join(tmp, 'empty.gguf');
  await writeFile(empty, '');
  await assert.rejects(readGgufHeader(empty), (e: unknown) => e instanceof GgufTruncatedError && e.message.startsWith(empty));
});
