// The embedded default model (SmolLM2-135M-Instruct), fetched the way `llama-relay up` fetches it. Under CI=true a
// failure to get it fails the test; elsewhere the test is skipped with the reason.
import { defaultModelPath } from '../../src/services/default-model.js';

let cached: Promise<string | { error: string }> | undefined;

export function defaultModel(): Promise<string | { error: string }> {
  cached ??= defaultModelPath().catch((err: Error) => ({ error: err.message }));
  return cached;
}

/** The model's path, or undefined after t.skip (not under CI, where it throws). */
export async function defaultModelOrSkip(t: { skip(msg: string): void }): Promise<string | undefined> {
  const m = await defaultModel();
  if (typeof m === 'string') return m;
  if (process.env.CI === 'true') throw new Error(`the default model could not be fetched: ${m.error}`);
  t.skip(`the default model could not be fetched: ${m.error}`);
  return undefined;
}
