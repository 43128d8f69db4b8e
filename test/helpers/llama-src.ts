// Where the pinned, unpatched llama.cpp source lives (for vocab GGUFs and gguf-py), and the stock build.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export function pinnedCommit(): string {
  const pin = readFileSync(join(repoRoot, 'third_party/llama.cpp.pin'), 'utf8');
  const m = /^COMMIT=([0-9a-f]{40})$/m.exec(pin);
  if (!m?.[1]) throw new Error('third_party/llama.cpp.pin has no COMMIT= line');
  return m[1];
}

/** $LLAMA_RELAY_LLAMA_SRC_STOCK, else the checkout scripts/build-llama.sh makes. */
export function llamaSrcDir(): string {
  const dir =
    process.env.LLAMA_RELAY_LLAMA_SRC_STOCK ??
    join(homedir(), '.cache/llama-relay/src', `llama.cpp-${pinnedCommit().slice(0, 12)}`);
  if (!existsSync(join(dir, 'gguf-py'))) {
    throw new Error(`pinned llama.cpp source not found at ${dir}: run scripts/build-llama.sh or set LLAMA_RELAY_LLAMA_SRC_STOCK`);
  }
  return dir;
}

/** A vocab-only GGUF shipped in llama.cpp's models/ dir, by short name (e.g. "llama-spm", "qwen2"). */
export function vocabPath(name: string): string {
  return join(llamaSrcDir(), 'models', `ggml-vocab-${name}.gguf`);
}

let stockBin: Promise<string> | undefined;

/** bin dir of the stock llama.cpp build; builds it if needed (cached: seconds once built). */
export function stockBinDir(): Promise<string> {
  stockBin ??= (async () => {
    const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts/build-llama.sh'), '--stock-only'], {
      cwd: repoRoot,
      maxBuffer: 16 * 1024 * 1024,
    });
    const line = stdout.split('\n').find((l) => l.startsWith('stock='));
    const dir = line?.slice('stock='.length).trim();
    if (!dir) throw new Error(`scripts/build-llama.sh --stock-only printed no stock= line:\n${stdout}`);
    return dir;
  })();
  return stockBin;
}
