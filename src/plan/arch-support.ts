// Which architectures the patched engine can split by layer, and why the others cannot. Both come from
// one generated file (patches/tools/stage-loops.py, via scripts/patches.sh export), which also writes
// the engine's own refusal (src/llama-stage-archs.cpp in patch 0004): the two always say the same thing.
import generated from './splittable-archs.json' with { type: 'json' };

/** Architectures whose graph the engine patch runs as a layer range (decoder loop ending `inpL = cur`). */
export const SPLITTABLE_ARCHITECTURES: readonly string[] = generated.architectures;

/** Why a known architecture cannot be split; any other unsplittable one gets `generated.otherwise`. */
const REASONS: Readonly<Record<string, string>> = generated.unsplittable;

export interface Splittability {
  readonly splittable: boolean;
  readonly reason?: string;
}

export function architectureSplittability(arch: string | undefined): Splittability {
  if (!arch) return { splittable: false, reason: 'the model has no general.architecture' };
  if (SPLITTABLE_ARCHITECTURES.includes(arch)) return { splittable: true };
  return { splittable: false, reason: REASONS[arch] ?? generated.otherwise };
}
