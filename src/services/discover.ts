// discover: list the models in Ollama stores with what the planner needs to know about each.
import { UserError } from '../errors.js';
import { GgufError } from '../gguf/errors.js';
import { loadGgufModel } from '../gguf/model.js';
import { candidateRoots } from '../ollama/roots.js';
import { rootExists, scanStore, type OllamaEntry } from '../ollama/store.js';
import { architectureSplittability } from '../plan/arch-support.js';
import { modelInfo } from '../plan/model-info.js';

export interface DiscoveredModel {
  readonly name: string;
  readonly root: string;
  /** The GGUF blob, when there is one. */
  readonly path?: string;
  readonly size: number;
  readonly supported: boolean;
  /** Why it cannot be used (or split), when it cannot. */
  readonly problem?: string;
  readonly architecture?: string;
  readonly layers?: number;
  readonly contextLength?: number;
  readonly quantization?: string;
  readonly splittable: boolean;
  readonly splitReason?: string;
}

export interface DiscoverResult {
  readonly roots: readonly { readonly path: string; readonly exists: boolean }[];
  readonly models: readonly DiscoveredModel[];
}

async function describe(e: OllamaEntry): Promise<DiscoveredModel> {
  const base = { name: e.name, root: e.root, size: e.size };
  if (e.status !== 'ok' || !e.modelPath) {
    return { ...base, supported: false, problem: e.problem ?? e.status, splittable: false };
  }
  try {
    const m = await loadGgufModel(e.modelPath);
    const info = modelInfo(m.metadata, m.tensors);
    const s = architectureSplittability(info.arch);
    return {
      ...base,
      path: e.modelPath,
      supported: true,
      architecture: info.arch,
      layers: info.nLayer,
      contextLength: info.ctxTrain,
      quantization: info.fileType,
      splittable: s.splittable,
      splitReason: s.reason,
    };
  } catch (err) {
    if (!(err instanceof GgufError) && !(err instanceof UserError)) throw err;
    return { ...base, path: e.modelPath, supported: false, problem: (err as Error).message, splittable: false };
  }
}

export async function discoverModels(extraRoots: readonly string[] = []): Promise<DiscoverResult> {
  const roots = [];
  const models: DiscoveredModel[] = [];
  for (const path of candidateRoots(extraRoots)) {
    const exists = await rootExists(path);
    roots.push({ path, exists });
    if (!exists) continue;
    for (const e of await scanStore(path)) models.push(await describe(e));
  }
  return { roots, models };
}
