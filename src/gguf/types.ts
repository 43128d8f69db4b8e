// The in-memory shape of a parsed GGUF header: typed metadata and tensor infos, no tensor data.

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** u64/i64 are bigint so no value is rounded; everything else fits a JS number. */
export type GgufScalar = number | bigint | boolean | string;

export interface GgufArray {
  readonly itemType: Exclude<GgufValueType, GgufValueType.ARRAY>;
  readonly items: readonly GgufScalar[];
}

export type GgufValue = GgufScalar | GgufArray;

export interface GgufKv {
  readonly key: string;
  readonly type: GgufValueType;
  readonly value: GgufValue;
  /** Where the whole entry (key, type, value) sits in the file; lets writers copy it byte for byte. */
  readonly range: { readonly offset: number; readonly length: number };
}

export interface GgufTensorInfo {
  readonly name: string;
  /** ne[0] first, as in ggml and gguf-py. */
  readonly dims: readonly number[];
  readonly type: number;
  readonly typeName: string;
  /** Offset relative to the start of the data section, as stored. */
  readonly offset: number;
  /** Absolute offset in the file. */
  readonly fileOffset: number;
  readonly byteSize: number;
}

export interface GgufHeader {
  readonly file: string;
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  readonly kvs: readonly GgufKv[];
  readonly tensors: readonly GgufTensorInfo[];
  /** Absolute offset where tensor data starts. */
  readonly dataOffset: number;
}

export function isGgufArray(v: GgufValue | undefined): v is GgufArray {
  return typeof v === 'object' && v !== null && 'items' in v;
}
