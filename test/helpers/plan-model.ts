// A synthetic ModelInfo for planner tables: 20 layers of 100 MB each and a 400 MB output matrix (tied embeddings),
// small enough KV to reason about; override any field.
import { DEFAULT_RUNTIME, type RuntimeParams } from '../../src/plan/memory.js';
import type { ModelInfo } from '../../src/plan/model-info.js';

export const MB = 1e6;

export function planModel(o: Partial<ModelInfo> = {}): ModelInfo {
  const L = o.nLayer ?? 20;
  const fill = <T>(v: T) => Array.from({ length: L }, () => v);
  return {
    file: '/m.gguf', arch: 'llama', nLayer: L, nEmbd: 2048, nVocab: 32000, ctxTrain: 8192,
    nFf: fill(8192), nHead: fill(16), nHeadKv: fill(4), keyLength: fill(128), valueLength: fill(128), swa: fill(false), nSwa: 0,
    nExpert: 0, nExpertUsed: 0, recurrentState: fill(0), vocabHasMerges: false, fileType: 'Q8_0',
    layerWeights: fill(100 * MB), layerRepacked: fill(0), headWeights: 400 * MB, pageableWeights: 0, sharedWeights: 0,
    ...o,
  };
}

export const planRuntime = (p: Partial<RuntimeParams> = {}): RuntimeParams => ({ ...DEFAULT_RUNTIME, ctx: 1024, ...p });

/** A plan's ranges as "a:b,c:d". */
export const spans = (p: { nodes: readonly { layerStart: number; layerEnd: number }[] }) => p.nodes.map((n) => `${n.layerStart}:${n.layerEnd}`).join(',');
