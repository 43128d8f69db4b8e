// Runs llama.cpp's own gguf-py on a file (through gguf_dump.py) and returns its JSON view.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { llamaSrcDir } from './llama-src.js';

export interface PyDump {
  alignment: number;
  dataOffset: number;
  kvs: { key: string; type: number; itemType?: number | null; value: unknown }[];
  tensors: { name: string; type: number; dims: number[]; fileOffset: number; byteSize: number }[];
}

const script = fileURLToPath(new URL('./gguf_dump.py', import.meta.url));

export async function ggufPyDump(path: string): Promise<PyDump> {
  const { stdout } = await promisify(execFile)('python3', [script, path], {
    env: { ...process.env, PYTHONPATH: join(llamaSrcDir(), 'gguf-py') },
    maxBuffer: 512 * 1024 * 1024,
  });
  return JSON.parse(stdout) as PyDump;
}
