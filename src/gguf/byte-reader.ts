// Parsing reads through this interface so it never touches IO directly (files now, ranges over a network later).

export interface ByteReader {
  /** What to call the source in messages: a file path or URL. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or fewer only at end of source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Optional: fill `target` from `offset` without allocating; returns the bytes read. Used for streaming copies. */
  readInto?(offset: number, target: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

/** A reader over bytes already in memory; used by tests and for small buffers. */
export class MemoryByteReader implements ByteReader {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly bytes: Uint8Array,
  ) {
    this.size = bytes.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.bytes.subarray(offset, Math.min(this.size, offset + length));
  }
  async close(): Promise<void> {}
}
