// Which architectures the patched engine can split by layer. The engine owner adjusts this one list.

/** Architectures whose graph the engine patch runs as a layer range (decoder loop ending `inpL = cur`). */
export const SPLITTABLE_ARCHITECTURES: readonly string[] = [
  'llama',
  'mistral3',
  'qwen2',
  'qwen3',
  'qwen3moe',
  'gemma3',
];

/** Known reasons an architecture cannot be split (from the engine design notes). */
const REASONS: Record<string, string> = {
  gemma3n: 'per-layer embeddings and KV reuse across layers',
  gemma4: 'per-layer embeddings and KV reuse across layers',
  deepseek4: 'multi-stream state',
  qwen4exp: 'multi-stream state',
  'kimi-k3': 'multi-stream state',
  qwen3vl: 'deepstack inputs injected into middle layers',
  qwen3vlmoe: 'deepstack inputs injected into middle layers',
  lfm2: 'the layer loop carries state besides the residual',
  glm4: 'aborts on hidden-state input',
  bert: 'encoder-only (embeddings) model',
  t5: 'encoder-decoder model',
};

export interface Splittability {
  readonly splittable: boolean;
  readonly reason?: string;
}

export function architectureSplittability(arch: string | undefined): Splittability {
  if (!arch) return { splittable: false, reason: 'the model has no general.architecture' };
  if (SPLITTABLE_ARCHITECTURES.includes(arch)) return { splittable: true };
  return { splittable: false, reason: REASONS[arch] ?? `the engine does not support splitting "${arch}" yet` };
}
