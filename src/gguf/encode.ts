// Little-endian GGUF value encoding, the inverse of parser.ts.
import { scalarSize } from './parser.js';
import { GgufValueType, isGgufArray, type GgufScalar, type GgufValue } from './types.js';

const encoder = new TextEncoder();

/** Growable byte sink; the header of a GGUF is small enough to build in memory. */
export class ByteSink {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  bytes(b: Uint8Array): void {
    this.grow(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u32(v: number): void {
    this.grow(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number | bigint): void {
    this.grow(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string): void {
    const b = encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  scalar(t: GgufValueType, v: GgufScalar): void {
    if (t === GgufValueType.STRING) return this.string(String(v));
    const size = scalarSize(t);
    this.grow(size);
    const d = this.view;
    const at = this.length;
    const n = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    switch (t) {
      case GgufValueType.UINT8: d.setUint8(at, Number(n)); break;
      case GgufValueType.INT8: d.setInt8(at, Number(n)); break;
      case GgufValueType.BOOL: d.setUint8(at, Number(n) ? 1 : 0); break;
      case GgufValueType.UINT16: d.setUint16(at, Number(n), true); break;
      case GgufValueType.INT16: d.setInt16(at, Number(n), true); break;
      case GgufValueType.UINT32: d.setUint32(at, Number(n), true); break;
      case GgufValueType.INT32: d.setInt32(at, Number(n), true); break;
      case GgufValueType.FLOAT32: d.setFloat32(at, Number(n), true); break;
      case GgufValueType.UINT64: d.setBigUint64(at, BigInt(n), true); break;
      case GgufValueType.INT64: d.setBigInt64(at, BigInt(n), true); break;
      case GgufValueType.FLOAT64: d.setFloat64(at, Number(n), true); break;
      default: throw new Error(`cannot encode GGUF value type ${t}`);
    }
    this.length += size;
  }
  kv(key: string, type: GgufValueType, value: GgufValue): void {
    this.string(key);
    this.u32(type);
    if (type === GgufValueType.ARRAY) {
      if (!isGgufArray(value)) throw new Error(`key ${key}: ARRAY type needs an array value`);
      this.u32(value.itemType);
      this.u64(value.items.length);
      for (const item of value.items) this.scalar(value.itemType, item);
    } else {
      if (isGgufArray(value)) throw new Error(`key ${key}: array value with scalar type`);
      this.scalar(type, value);
    }
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.bytes(new Uint8Array(n));
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
