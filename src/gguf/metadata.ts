// Typed lookups over parsed metadata, so callers never juggle GgufValue unions by hand.
import { GgufFormatError } from './errors.js';
import { isGgufArray, type GgufHeader, type GgufKv, type GgufValue } from './types.js';

export class GgufMetadata {
  private readonly byKey: Map<string, GgufKv>;
  constructor(
    readonly file: string,
    kvs: readonly GgufKv[],
  ) {
    this.byKey = new Map(kvs.map((kv) => [kv.key, kv]));
  }

  static of(h: GgufHeader): GgufMetadata {
    return new GgufMetadata(h.file, h.kvs);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }
  get(key: string): GgufValue | undefined {
    return this.byKey.get(key)?.value;
  }
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  string(key: string): string | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.wrongType(key, 'a string');
    return v;
  }

  /** Any integer or float scalar (u64 included when it is a safe integer). */
  number(key: string): number | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    if (typeof v === 'boolean') return v ? 1 : 0;
    throw this.wrongType(key, 'a number');
  }

  bool(key: string): boolean | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') return v !== 0;
    throw this.wrongType(key, 'a boolean');
  }

  /** A key that llama.cpp reads with get_key_or_arr: either one number or a per-layer array. */
  numberOrArray(key: string): number | number[] | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (isGgufArray(v)) {
      return v.items.map((x) => {
        if (typeof x === 'number') return x;
        if (typeof x === 'bigint') return Number(x);
        if (typeof x === 'boolean') return x ? 1 : 0;
        throw this.wrongType(key, 'a numeric array');
      });
    }
    return this.number(key);
  }

  arrayLength(key: string): number | undefined {
    const v = this.get(key);
    return isGgufArray(v) ? v.items.length : undefined;
  }

  private wrongType(key: string, want: string): GgufFormatError {
    return new GgufFormatError(this.file, `metadata key "${key}" should be ${want}`);
  }
}
