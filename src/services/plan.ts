// plan: resolve a model, read its header, and split its layers over the given nodes.
import { UserError } from '../errors.js';
import { loadGgufModel } from '../gguf/model.js';
import { candidateRoots } from '../ollama/roots.js';
import { resolveModel, type ResolvedModel } from '../ollama/resolve.js';
import { DEFAULT_RUNTIME, type RuntimeParams } from '../plan/memory.js';
import { modelInfo, type ModelInfo } from '../plan/model-info.js';
import { parseNodeList, type NodeSpec } from '../plan/node-spec.js';
import { calculatePlan, planRanges, type Plan, type PlanNodeInput } from '../plan/planner.js';
import { manualSplitFrom, resolveSplit } from '../plan/manual-split.js';

export interface PlanRequest {
  readonly model: string;
  /** Either a node count or the nodes (--nodes text, or specs from a cluster file). */
  readonly nodeCount?: number;
  readonly nodes?: string | readonly NodeSpec[];
  readonly runtime?: Partial<RuntimeParams>;
  readonly roots?: readonly string[];
  /** `--split` / `--layers-per-node` text (at most one; a cluster file's layers= is the third way). */
  readonly split?: string;
  readonly layersPerNode?: string;
}

export interface PlanResult {
  readonly model: ResolvedModel;
  readonly info: ModelInfo;
  readonly nodeSpecs?: readonly NodeSpec[];
  readonly plan: Plan;
}

export async function loadModelInfo(input: string, roots: readonly string[] = []): Promise<{ model: ResolvedModel; info: ModelInfo }> {
  const model = await resolveModel(input, candidateRoots(roots));
  const gguf = await loadGgufModel(model.ggufPath);
  return { model, info: modelInfo(gguf.metadata, gguf.tensors) };
}

export async function planModel(req: PlanRequest): Promise<PlanResult> {
  let inputs: PlanNodeInput[];
  let nodeSpecs: NodeSpec[] | undefined;
  if (req.nodes !== undefined) {
    nodeSpecs = typeof req.nodes === 'string' ? parseNodeList(req.nodes) : [...req.nodes];
    inputs = nodeSpecs.map((n) => ({ name: n.host, ...(n.memory !== undefined ? { memory: n.memory } : {}) }));
  } else if (req.nodeCount !== undefined) {
    if (!Number.isInteger(req.nodeCount) || req.nodeCount < 1) throw new UserError('-n must be a positive integer');
    inputs = Array.from({ length: req.nodeCount }, (_, i) => ({ name: `node ${i}` }));
  } else {
    throw new UserError('say how many nodes: -n N or --nodes host1=24G,host2=16G');
  }
  // Syntax first: a typo is reported before the model is read.
  const manual = manualSplitFrom({ split: req.split, layersPerNode: req.layersPerNode, nodeLayers: nodeSpecs?.map((n) => n.layers) });
  const { model, info } = await loadModelInfo(req.model, req.roots);
  const runtime: RuntimeParams = { ...DEFAULT_RUNTIME, ...req.runtime };
  const plan = manual ? planRanges(info, inputs, resolveSplit(manual, inputs.length, info.nLayer), runtime) : calculatePlan(info, inputs, runtime);
  return { model, info, plan, ...(nodeSpecs ? { nodeSpecs } : {}) };
}
