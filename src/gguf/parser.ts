// Pure GGUF header parser over a ByteReader. Every count and length is checked against the bytes left
// in the file before anything is allocated, so hostile input cannot make it hang or exhaust memory.
import type { ByteReader } from './byte-reader.js';
import {
  GgufFormatError,
  GgufLimitError,
  GgufMagicError,
  GgufTruncatedError,
  GgufUnknownTypeError,
  GgufVersionError,
} from './errors.js';
import { GGML_TYPE_COUNT, ggmlTypeInfo, tensorByteSize } from './ggml-types.js';
import {
  GgufValueType,
  type GgufArray,
  type GgufHeader,
  type GgufKv,
  type GgufScalar,
  type GgufTensorInfo,
  type GgufValue,
} from './types.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
const GGML_MAX_DIMS = 4;
/** Longest string we accept (chat templates and embedded tokenizer JSON are well below this). */
export const MAX_STRING_BYTES = 64 * 1024 * 1024;
/** Most array items we accept; real token lists are ~10^5-10^6. */
export const MAX_ARRAY_ITEMS = 1 << 26;
const WINDOW = 1 << 20;

/** Fixed byte size of a scalar GGUF value type, or 0 for strings/arrays. */
export function scalarSize(t: GgufValueType): number {
  switch (t) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
    case GgufValueType.FLOAT64:
      return 8;
    default:
      return 0;
  }
}

/** Reads little-endian values sequentially, refilling a bounded window from the ByteReader. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  private bufStart = 0;
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true }); // keep a leading U+FEFF: it is part of some token strings

  constructor(private readonly reader: ByteReader) {}

  get file(): string {
    return this.reader.name;
  }
  get remaining(): number {
    return this.reader.size - this.pos;
  }

  private async ensure(n: number, what: string): Promise<number> {
    if (n > this.remaining) throw new GgufTruncatedError(this.file, what, this.pos);
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    const want = Math.min(Math.max(n, WINDOW), this.remaining);
    const got = await this.reader.read(this.pos, want);
    if (got.length < n) throw new GgufTruncatedError(this.file, what, this.pos);
    this.buf = got;
    this.view = new DataView(got.buffer, got.byteOffset, got.byteLength);
    this.bufStart = this.pos;
    return 0;
  }

  async u8(what: string): Promise<number> {
    const r = await this.ensure(1, what);
    this.pos += 1;
    return this.view.getUint8(r);
  }
  async u32(what: string): Promise<number> {
    const r = await this.ensure(4, what);
    this.pos += 4;
    return this.view.getUint32(r, true);
  }
  async i32(what: string): Promise<number> {
    const r = await this.ensure(4, what);
    this.pos += 4;
    return this.view.getInt32(r, true);
  }
  async u64(what: string): Promise<bigint> {
    const r = await this.ensure(8, what);
    this.pos += 8;
    return this.view.getBigUint64(r, true);
  }

  async scalar(t: GgufValueType, what: string): Promise<GgufScalar> {
    if (t === GgufValueType.STRING) return this.string(what);
    const size = scalarSize(t);
    const r = await this.ensure(size, what);
    this.pos += size;
    const v = this.view;
    switch (t) {
      case GgufValueType.UINT8:
        return v.getUint8(r);
      case GgufValueType.INT8:
        return v.getInt8(r);
      case GgufValueType.BOOL:
        return v.getUint8(r) !== 0;
      case GgufValueType.UINT16:
        return v.getUint16(r, true);
      case GgufValueType.INT16:
        return v.getInt16(r, true);
      case GgufValueType.UINT32:
        return v.getUint32(r, true);
      case GgufValueType.INT32:
        return v.getInt32(r, true);
      case GgufValueType.FLOAT32:
        return v.getFloat32(r, true);
      case GgufValueType.UINT64:
        return v.getBigUint64(r, true);
      case GgufValueType.INT64:
        return v.getBigInt64(r, true);
      case GgufValueType.FLOAT64:
        return v.getFloat64(r, true);
      default:
        throw new GgufFormatError(this.file, `${what} has invalid value type ${t}`, this.pos - size);
    }
  }

  async string(what: string): Promise<string> {
    const at = this.pos;
    const len = await this.u64(`length of ${what}`);
    if (len > BigInt(this.remaining)) {
      throw new GgufLimitError(this.file, `${what} claims ${len} bytes but only ${this.remaining} remain in the file`, at);
    }
    if (len > BigInt(MAX_STRING_BYTES)) {
      throw new GgufLimitError(this.file, `${what} is ${len} bytes long, over the ${MAX_STRING_BYTES}-byte limit`, at);
    }
    const n = Number(len);
    const r = await this.ensure(n, what);
    this.pos += n;
    return this.decoder.decode(this.buf.subarray(r, r + n));
  }
}

function checkCount(c: Cursor, count: bigint, minItemBytes: number, what: string, at: number): number {
  const fits = BigInt(c.remaining) / BigInt(Math.max(1, minItemBytes));
  if (count > fits) {
    throw new GgufLimitError(
      c.file,
      `${what} is ${count}, but the ${c.remaining} bytes left in the file hold at most ${fits}`,
      at,
    );
  }
  return Number(count);
}

async function readValue(c: Cursor, key: string): Promise<{ type: GgufValueType; value: GgufValue }> {
  const typeAt = c.pos;
  const type = await c.u32(`type of key "${key}"`);
  if (type === GgufValueType.ARRAY) {
    const itemType = await c.u32(`item type of key "${key}"`);
    if (itemType === GgufValueType.ARRAY || !(itemType in GgufValueType)) {
      throw new GgufFormatError(c.file, `key "${key}" is an array of invalid type ${itemType}`, typeAt + 4);
    }
    const countAt = c.pos;
    const count = await c.u64(`item count of key "${key}"`);
    const minBytes = itemType === GgufValueType.STRING ? 8 : scalarSize(itemType);
    const n = checkCount(c, count, minBytes, `item count of array "${key}"`, countAt);
    if (n > MAX_ARRAY_ITEMS) {
      throw new GgufLimitError(c.file, `array "${key}" has ${n} items, over the ${MAX_ARRAY_ITEMS}-item limit`, countAt);
    }
    const items: GgufScalar[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = await c.scalar(itemType, `item ${i} of "${key}"`);
    const value: GgufArray = { itemType: itemType as GgufArray['itemType'], items };
    return { type, value };
  }
  if (!(type in GgufValueType)) {
    throw new GgufFormatError(c.file, `key "${key}" has invalid value type ${type}`, typeAt);
  }
  return { type, value: await c.scalar(type, `value of key "${key}"`) };
}

export async function parseGguf(reader: ByteReader): Promise<GgufHeader> {
  const c = new Cursor(reader);
  const file = reader.name;
  if (reader.size < 4) throw new GgufTruncatedError(file, 'the 4-byte magic', 0);
  const magic = await c.u32('magic');
  if (magic !== GGUF_MAGIC) throw new GgufMagicError(file, await reader.read(0, 4));

  const version = await c.u32('version');
  if ((version & 0xffff) === 0 && version !== 0) {
    throw new GgufVersionError(file, `version field is ${version}: this looks like a big-endian GGUF, which is not supported`);
  }
  if (version === 1) throw new GgufVersionError(file, 'GGUF v1 is no longer supported');
  if (version === 0 || version > 3) throw new GgufVersionError(file, `unsupported GGUF version ${version} (supported: 2, 3)`);

  const ntAt = c.pos;
  const nTensorsRaw = await c.u64('tensor count');
  const nkvAt = c.pos;
  const nKvRaw = await c.u64('metadata key count');
  // Smallest possible entries: a kv is 8 (key length) + 1 (key) + 4 (type) + 1 (u8 value) bytes;
  // a tensor info is 8 + 1 (name) + 4 (n_dims) + 4 (type) + 8 (offset).
  const nKv = checkCount(c, nKvRaw, 14, 'metadata key count', nkvAt);
  const nTensors = checkCount(c, nTensorsRaw, 25, 'tensor count', ntAt);

  const kvs: GgufKv[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nKv; i++) {
    const start = c.pos;
    const key = await c.string(`key ${i}`);
    if (key.length === 0) throw new GgufFormatError(file, `metadata key ${i} is empty`, start);
    if (seen.has(key)) throw new GgufFormatError(file, `duplicate metadata key "${key}"`, start);
    seen.add(key);
    const { type, value } = await readValue(c, key);
    kvs.push({ key, type, value, range: { offset: start, length: c.pos - start } });
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignKv = kvs.find((kv) => kv.key === 'general.alignment');
  if (alignKv) {
    const a = alignKv.value;
    if (alignKv.type !== GgufValueType.UINT32 || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      throw new GgufFormatError(file, `general.alignment must be a u32 power of two, got ${String(a)}`, alignKv.range.offset);
    }
    alignment = a;
  }

  const infos: { name: string; dims: number[]; type: number; typeName: string; offset: number; byteSize: number; at: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = await c.string(`name of tensor ${i}`);
    if (names.has(name)) throw new GgufFormatError(file, `duplicate tensor name "${name}"`, at);
    names.add(name);
    const nDims = await c.u32(`dimension count of tensor "${name}"`);
    if (nDims > GGML_MAX_DIMS) {
      throw new GgufFormatError(file, `tensor "${name}" has ${nDims} dimensions (at most ${GGML_MAX_DIMS})`, at);
    }
    const dims: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const ne = await c.u64(`shape of tensor "${name}"`);
      if (ne >= 1n << 63n) throw new GgufFormatError(file, `tensor "${name}" has a negative dimension`, at);
      elements *= ne;
      if (elements > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new GgufLimitError(file, `tensor "${name}" has an absurd number of elements (${elements}+)`, at);
      }
      dims.push(Number(ne));
    }
    const typeAt = c.pos;
    const type = await c.u32(`type of tensor "${name}"`);
    const info = ggmlTypeInfo(type);
    if (!info) {
      const why = type < GGML_TYPE_COUNT ? 'a type removed from ggml' : 'not a type the pinned llama.cpp knows';
      throw new GgufUnknownTypeError(file, `tensor "${name}" has unknown ggml type ${type} (${why})`, typeAt);
    }
    const size = tensorByteSize(info, dims);
    if (typeof size === 'string') throw new GgufFormatError(file, `tensor "${name}": ${size}`, at);
    const offAt = c.pos;
    const off = await c.u64(`data offset of tensor "${name}"`);
    if (off > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new GgufLimitError(file, `tensor "${name}" has an absurd data offset ${off}`, offAt);
    }
    infos.push({ name, dims, type, typeName: info.name, offset: Number(off), byteSize: size, at });
  }

  const dataOffset = nTensors > 0 ? alignUp(c.pos, alignment) : c.pos;
  const tensors: GgufTensorInfo[] = [];
  let expected = 0; // llama.cpp requires tensors back to back, in order, each padded to the alignment
  for (const t of infos) {
    if (t.offset !== expected) {
      throw new GgufFormatError(file, `tensor "${t.name}" has data offset ${t.offset}, expected ${expected}`, t.at);
    }
    const end = dataOffset + t.offset + t.byteSize;
    if (end > reader.size) throw new GgufTruncatedError(file, `data of tensor "${t.name}" (${t.byteSize} bytes)`, dataOffset + t.offset);
    expected = alignUp(t.offset + t.byteSize, alignment);
    tensors.push({
      name: t.name,
      dims: t.dims,
      type: t.type,
      typeName: t.typeName,
      offset: t.offset,
      fileOffset: dataOffset + t.offset,
      byteSize: t.byteSize,
    });
  }

  return { file, fileSize: reader.size, version, alignment, kvs, tensors, dataOffset };
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
