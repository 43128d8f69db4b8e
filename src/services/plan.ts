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
import { stat } from 'node:fs/promises';
import { chainLinkSeconds, lookupSpeed, modelKey, nodeSpeedOf, type LinkRecord, type SpeedRecord } from '../plan/speed-cache.js';
import { planOneSpeed, planOnSpeed, withPrediction } from '../plan/speed-planner.js';
import { isLocalSpec, nodeName } from '../runtime/node-transports.js';
import { readDevices, readLinks, readSpeeds } from './speed-store.js';
import { nodeBudget } from '../provision/node-devices.js';

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
  /** Measured speeds (default: the cache, services/speed-store.ts); [] plans without them. */
  readonly speeds?: readonly SpeedRecord[];
  /** Measured links (default: the cache). */
  readonly links?: readonly LinkRecord[];
}

export interface PlanResult {
  readonly model: ResolvedModel;
  readonly info: ModelInfo;
  readonly nodeSpecs?: readonly NodeSpec[];
  readonly plan: Plan;
  /** Per node, the speed measurement the plan used (all or none). */
  readonly speeds?: readonly SpeedRecord[];
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
    inputs = nodeSpecs.map((n) => ({ name: n.host, memory: n.memory }));
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
  const names = nodeSpecs?.map(nodeName);
  // Nodes without mem=: the devices and memory they reported at their last probe (`plan --probe` has just written them).
  if (nodeSpecs) {
    const last = await readDevices();
    inputs = inputs.map((x, i) => {
      const probed = nodeBudget(last[nodeName(nodeSpecs![i]!)]);
      return { ...x, memory: x.memory ?? probed.memory, gpu: probed.gpu };
    });
  }
  const records = req.speeds ?? (names ? await readSpeeds() : []);
  const key = modelKey(model.ggufPath, (await stat(model.ggufPath)).size);
  const measured = names?.map((n) => lookupSpeed(records, n, key));
  const known = measured?.every((r) => r !== undefined) ? (measured as SpeedRecord[]) : undefined;
  // Each link: its measured latency plus the hop overhead (or, never measured, the head's mean hop).
  const hopSeconds = known && names ? chainLinkSeconds(names, known, req.links ?? (await readLinks())) : 0;
  const speedOf = nodeSpeedOf;
  const objective = runtime.parallel > 1 ? 'stage' : 'token';
  let plan: Plan;
  if (manual) {
    plan = planRanges(info, inputs, resolveSplit(manual, inputs.length, info.nLayer), runtime);
    if (known) plan = withPrediction(plan, info, known.map(speedOf), hopSeconds);
  } else if (known) {
    plan = planOnSpeed(info, inputs.map((x, i) => ({ ...x, speed: speedOf(known[i]!) })), runtime, { hopSeconds, objective });
  } else if (names && nodeSpecs && names.length > 1 && (new Set(names).size === 1 || nodeSpecs.every(isLocalSpec))) {
    // One machine's ranks run at one speed: balance their compute (memory still bounds each).
    plan = planOneSpeed(info, inputs, runtime);
  } else {
    plan = calculatePlan(info, inputs, runtime);
  }
  return { model, info, plan, ...(nodeSpecs ? { nodeSpecs } : {}), ...(known ? { speeds: known } : {}) };
}
