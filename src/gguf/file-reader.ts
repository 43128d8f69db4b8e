// ByteReader over a local file: positional reads, so a 40 GB model never enters memory.
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteReader } from './byte-reader.js';
import { GgufReadError } from './errors.js';

/** Largest single read we allow; callers asking for more are buggy or being fed absurd counts. */
export const MAX_READ = 256 * 1024 * 1024;

export class FileByteReader implements ByteReader {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly fh: FileHandle,
  ) {}

  static async open(path: string): Promise<FileByteReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw new GgufReadError(path, describeFsError(err), { cause: err });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new GgufReadError(path, 'not a regular file');
      return new FileByteReader(path, st.size, fh);
    } catch (err) {
      await fh.close();
      if (err instanceof GgufReadError) throw err;
      throw new GgufReadError(path, describeFsError(err), { cause: err });
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n > MAX_READ) throw new GgufReadError(this.name, `refusing a ${n}-byte read at offset ${offset}`);
    const buf = new Uint8Array(n);
    const done = await this.readInto(offset, buf);
    return done === n ? buf : buf.subarray(0, done);
  }

  async readInto(offset: number, buf: Uint8Array): Promise<number> {
    const n = Math.max(0, Math.min(buf.length, this.size - offset));
    let done = 0;
    while (done < n) {
      let got: number;
      try {
        ({ bytesRead: got } = await this.fh.read(buf, done, n - done, offset + done));
      } catch (err) {
        throw new GgufReadError(this.name, describeFsError(err), { cause: err });
      }
      if (got === 0) break; // file shrank under us; the parser reports truncation
      done += got;
    }
    return done;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return 'permission denied';
  if (e?.code === 'EISDIR') return 'is a directory, not a file';
  return e?.message ?? String(err);
}
