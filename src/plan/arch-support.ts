// Which architectures the patched engine can split by layer. The list is generated with the engine
// patches (patches/tools/stage-loops.py via scripts/patches.sh export), so the two never disagree.
import generated from './splittable-archs.json' with { type: 'json' };

/** Architectures whose graph the engine patch runs as a layer range (decoder loop ending `inpL = cur`). */
export const SPLITTABLE_ARCHITECTURES: readonly string[] = generated.architectures;

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
  'modern-bert': 'encoder-only (embeddings) model',
  'neo-bert': 'encoder-only (embeddings) model',
  eurobert: 'encoder-only (embeddings) model',
  'gemma-embedding': 'encoder-only (embeddings) model',
  dream: 'diffusion model: decodes non-causally',
  llada: 'diffusion model: decodes non-causally',
  'llada-moe': 'diffusion model: decodes non-causally',
  gpt2: 'its graph does not follow the common decoder layer loop',
  phi3: 'its graph does not follow the common decoder layer loop',
  t5: 'encoder-decoder model',
};

export interface Splittability {
  readonly splittable: boolean;
  readonly reason?: string;
}

export function architectureSplittability(arch: string | undefined): Splittability {
  if (!arch) return { splittable: false, reason: 'the model has no general.architecture' };
  if (SPLITTABLE_ARCHITECTURES.includes(arch)) return { splittable: true };
  return {
    splittable: false,
    reason: REASONS[arch] ?? `its graph does not follow the common decoder layer loop the engine splits (see patches/README.md)`,
  };
}
