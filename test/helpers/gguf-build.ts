// Hand-built GGUF bytes for tests that need exact control over every field, including invalid ones.
import { ByteSink } from '../../src/gguf/encode.js';
import { GGUF_MAGIC } from '../../src/gguf/parser.js';
import { GgufValueType as T } from '../../src/gguf/types.js';

export interface RawTensor {
  name: string;
  dims: number[];
  type: number;
  offset: number;
}

/** A header with the given counts (which may lie) followed by `tail` bytes. */
export function rawGguf(o: {
  magic?: number;
  version?: number;
  nTensors?: bigint;
  nKv?: bigint;
  body?: (s: ByteSink) => void;
  tail?: number;
}): Uint8Array {
  const s = new ByteSink();
  s.u32(o.magic ?? GGUF_MAGIC);
  s.u32(o.version ?? 3);
  s.u64(o.nTensors ?? 0n);
  s.u64(o.nKv ?? 0n);
  o.body?.(s);
  s.bytes(new Uint8Array(o.tail ?? 0));
  return s.result().slice();
}

/** A small valid GGUF with one of every value type, an array of strings, and three tensors with data. */
export function sampleGguf(): Uint8Array {
  const s = new ByteSink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(3);
  s.u64(14);
  s.kv('general.architecture', T.STRING, 'llama');
  s.kv('u8', T.UINT8, 200);
  s.kv('i8', T.INT8, -5);
  s.kv('u16', T.UINT16, 60000);
  s.kv('i16', T.INT16, -300);
  s.kv('u32', T.UINT32, 4000000000);
  s.kv('i32', T.INT32, -2000000000);
  s.kv('f32', T.FLOAT32, 0.5);
  s.kv('bool', T.BOOL, true);
  s.kv('u64', T.UINT64, 1n << 60n);
  s.kv('i64', T.INT64, -(1n << 60n));
  s.kv('f64', T.FLOAT64, Math.PI);
  s.kv('strs', T.ARRAY, { itemType: T.STRING, items: ['a', 'bé', '\uFEFFbom'] });
  s.kv('ints', T.ARRAY, { itemType: T.INT32, items: [1, -2, 3] });
  const tensors: RawTensor[] = [
    { name: 'token_embd.weight', dims: [8, 4], type: 0, offset: 0 },
    { name: 'blk.0.attn_norm.weight', dims: [8], type: 0, offset: 128 },
    { name: 'blk.0.ffn_down.weight', dims: [32, 2], type: 8, offset: 160 },
  ];
  for (const t of tensors) {
    s.string(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(t.type);
    s.u64(t.offset);
  }
  s.pad(32);
  const data = new Uint8Array(160 + 68);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 0xff;
  s.bytes(data);
  return s.result().slice();
}
