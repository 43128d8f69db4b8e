// Quantized fixtures, made once with the patched build's llama-quantize and cached next to the source.
import { execFile } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binDirs } from './engine.js';

export async function quantized(src: string, type: 'Q8_0' | 'Q4_K_M' | 'Q4_0'): Promise<string> {
  const out = src.replace(/\.gguf$/, `-${type}.gguf`);
  if (existsSync(out)) return out;
  const { patched } = await binDirs();
  const tmp = `${out}.tmp-${process.pid}`;
  await promisify(execFile)(join(patched, 'llama-quantize'), [src, tmp, type], { maxBuffer: 64 * 1024 * 1024 });
  renameSync(tmp, out);
  return out;
}
