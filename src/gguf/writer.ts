// Writes a GGUF v3 file: metadata, tensor infos laid out back to back as llama.cpp requires, then tensor
// data streamed from its sources in bounded chunks. Output is written to a temp file and renamed into place.
import { open, rename, rm } from 'node:fs/promises';
import type { ByteReader } from './byte-reader.js';
import { ByteSink } from './encode.js';
import { ggmlTypeInfo, tensorByteSize } from './ggml-types.js';
import { alignUp, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from './parser.js';
import { GgufValueType, type GgufValue } from './types.js';
import { BugError } from '../errors.js';

export type KvEntry =
  | { readonly key: string; readonly type: GgufValueType; readonly value: GgufValue }
  /** An entry already encoded (key, type and value), copied verbatim, e.g. from another GGUF. */
  | { readonly key: string; readonly raw: Uint8Array };

export type TensorSource =
  /** Copy `length` bytes at `offset` of a reader (the tensor's byte size). */
  | { readonly kind: 'copy'; readonly reader: ByteReader; readonly offset: number }
  /** Produce the bytes in pieces; their total must equal the tensor's byte size. */
  | { readonly kind: 'chunks'; readonly chunks: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array> };

export interface TensorEntry {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: number;
  readonly source: TensorSource;
}

export interface GgufWriteSpec {
  readonly kvs: readonly KvEntry[];
  readonly tensors: readonly TensorEntry[];
  readonly alignment?: number;
}

export const COPY_CHUNK = 4 * 1024 * 1024;

export function kv(key: string, type: GgufValueType, value: GgufValue): KvEntry {
  return { key, type, value };
}

/** Header bytes (through the padding before tensor data) and each tensor's size and relative offset. */
export function encodeHeader(spec: GgufWriteSpec): { header: Uint8Array; sizes: number[]; offsets: number[] } {
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(3);
  sink.u64(spec.tensors.length);
  sink.u64(spec.kvs.length);
  const keys = new Set<string>();
  for (const e of spec.kvs) {
    if (keys.has(e.key)) throw new BugError(`duplicate GGUF key ${e.key}`);
    keys.add(e.key);
    if ('raw' in e) sink.bytes(e.raw);
    else sink.kv(e.key, e.type, e.value);
  }
  const sizes: number[] = [];
  const offsets: number[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    const info = ggmlTypeInfo(t.type);
    if (!info) throw new BugError(`tensor ${t.name}: unknown ggml type ${t.type}`);
    const size = tensorByteSize(info, t.dims);
    if (typeof size === 'string') throw new BugError(`tensor ${t.name}: ${size}`);
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    sizes.push(size);
    offsets.push(offset);
    offset = alignUp(offset + size, alignment);
  }
  sink.pad(alignment);
  return { header: sink.result(), sizes, offsets };
}

export async function writeGguf(path: string, spec: GgufWriteSpec): Promise<void> {
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const { header, sizes } = encodeHeader(spec);
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fh = await open(tmp, 'w');
  try {
    let pos = 0;
    const put = async (b: Uint8Array): Promise<void> => {
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await fh.write(b, done, b.length - done, pos + done);
        done += bytesWritten;
      }
      pos += b.length;
    };
    await put(header);
    const copyBuf = new Uint8Array(COPY_CHUNK); // one buffer reused for every copied chunk: memory stays flat
    for (const [i, t] of spec.tensors.entries()) {
      const size = sizes[i]!;
      let written = 0;
      const src = t.source;
      if (src.kind === 'copy') {
        while (written < size) {
          const n = Math.min(COPY_CHUNK, size - written);
          const chunk = src.reader.readInto
            ? copyBuf.subarray(0, await src.reader.readInto(src.offset + written, copyBuf.subarray(0, n)))
            : await src.reader.read(src.offset + written, n);
          if (chunk.length !== n) throw new BugError(`tensor ${t.name}: source ${src.reader.name} ended early`);
          await put(chunk);
          written += n;
        }
      } else {
        for await (const chunk of src.chunks()) {
          written += chunk.length;
          if (written > size) break;
          await put(chunk);
        }
      }
      if (written !== size) throw new BugError(`tensor ${t.name}: produced ${written} bytes, expected ${size}`);
      const padded = alignUp(pos, alignment) - pos;
      if (padded > 0) await put(new Uint8Array(padded)); // gguf.cpp pads after every tensor, the last included
    }
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}
