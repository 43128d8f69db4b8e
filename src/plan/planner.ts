// The sharding plan: contiguous layer ranges over an ordered list of nodes. Node 0 is the head: it holds the
// token embeddings and the output norm + lm_head. Pure: no IO.
import { UserError } from '../errors.js';
import { architectureSplittability } from './arch-support.js';
import { computeBytes, kvBytes, rankMemory, type MemoryBreakdown, type RuntimeParams } from './memory.js';
import type { ModelInfo } from './model-info.js';
import { formatBytes } from './size.js';
import type { Prediction } from './speed-model.js';

export interface PlanNodeInput {
  readonly name: string;
  /** Budget in bytes; undefined = no limit given. With a (non-unified) GPU it includes the GPU's free memory. */
  readonly memory?: number;
  /** The GPU the rank offloads to (--list-devices), where the node has one. */
  readonly gpu?: { readonly name: string; readonly freeBytes: number; readonly unified: boolean };
}

export interface PlanNode {
  readonly index: number;
  readonly name: string;
  readonly layerStart: number;
  /** Exclusive. */
  readonly layerEnd: number;
  readonly embeddings: boolean;
  readonly output: boolean;
  readonly memory: MemoryBreakdown;
  readonly budget?: number;
  /** Layers on the node's GPU (llama-server -ngl): from the range's end, as many as its free memory holds; the rest in RAM. */
  readonly offload?: { readonly device: string; readonly layers: number; readonly bytes: number };
}

export interface Plan {
  /** How the ranges were chosen: balanced on memory, by the user (--split, --layers-per-node, layers=), or on speed. */
  readonly placement: 'memory' | 'manual' | 'speed' | 'compute';
  /** Predicted decode of this split, where every node's speed was measured (plan/speed-planner.ts). */
  readonly prediction?: Prediction;
  /** Where one node could hold the whole model and is predicted faster alone: that node and its prediction. */
  readonly alone?: { readonly node: string; readonly decodeTokensPerSecond: number };
  readonly model: { readonly file: string; readonly arch: string; readonly layers: number; readonly fileType: string };
  readonly runtime: RuntimeParams;
  readonly nodes: readonly PlanNode[];
  readonly totalMemory: number;
}

export class PlanError extends UserError {}

/** How each placement reads in `plan` and `up` output. */
export const PLACEMENT_TEXT: Record<Plan['placement'], string> = {
  memory: 'balanced on memory (no speed measurements)',
  manual: 'as given (manual split)',
  speed: 'balanced on measured speed',
  compute: 'balanced on compute (the ranks share one machine)',
};

function checkInputs(info: ModelInfo, n: number, runtime: RuntimeParams): void {
  const L = info.nLayer;
  if (n < 1) throw new PlanError('a plan needs at least one node');
  if (n > 1) {
    const s = architectureSplittability(info.arch);
    if (!s.splittable) throw new PlanError(`${info.file}: architecture "${info.arch}" cannot be split across nodes: ${s.reason}`);
  }
  if (n > L) throw new PlanError(`${n} nodes but the model has only ${L} layers; use at most ${L} nodes`, [`pass -n ${L} or fewer`]);
  if (runtime.ctx < 1 || runtime.parallel < 1) throw new PlanError('--ctx and --parallel must be positive');
}

/**
 * The plan of ranges the user chose (already checked to tile the model: plan/manual-split.ts), with each node's memory;
 * a range over its node's budget is a PlanError naming the node.
 */
export function planRanges(
  info: ModelInfo,
  nodes: readonly PlanNodeInput[],
  ranges: readonly { layerStart: number; layerEnd: number }[],
  runtime: RuntimeParams,
  placement: Plan['placement'] = 'manual',
): Plan {
  checkInputs(info, nodes.length, runtime);
  if (ranges.length !== nodes.length) throw new Error(`${ranges.length} ranges for ${nodes.length} nodes`);
  const planNodes = buildNodes(info, nodes, ranges.map((r) => r.layerEnd), runtime);
  const over = planNodes.filter((p) => p.budget !== undefined && p.memory.total > p.budget);
  if (over.length) {
    const lines = over.map((p) => `node ${p.index} (${p.name}): layers ${p.layerStart}:${p.layerEnd} need ~${formatBytes(p.memory.total)} but its budget is ${formatBytes(p.budget!)}`);
    throw new PlanError(`the split does not fit:\n  ${lines.join('\n  ')}`, ['move layers off the nodes named, or raise their budgets', 'lower --ctx or --parallel', 'or leave the split to the planner']);
  }
  return finish(info, planNodes, runtime, placement);
}

export function buildNodes(info: ModelInfo, nodes: readonly PlanNodeInput[], ends: readonly number[], runtime: RuntimeParams): PlanNode[] {
  const chained = nodes.length > 1;
  return ends.map((end, j) => {
    const start = j === 0 ? 0 : ends[j - 1]!;
    const node: PlanNode = {
      index: j,
      name: nodes[j]!.name,
      layerStart: start,
      layerEnd: end,
      embeddings: j === 0,
      output: j === 0,
      memory: rankMemory(info, start, end, j === 0, runtime, chained),
    };
    const b = nodes[j]!.memory;
    const gpu = nodes[j]!.gpu;
    const withBudget = b === undefined ? node : { ...node, budget: b };
    return gpu ? { ...withBudget, offload: offload(info, start, end, runtime, gpu) } : withBudget;
  });
}

/**
 * How many of a rank's layers go on its GPU: llama.cpp offloads the last -ngl layers, each with its weights and KV
 * cache; the compute buffer is reserved on the GPU first.
 */
export function offload(
  info: ModelInfo,
  start: number,
  end: number,
  runtime: RuntimeParams,
  gpu: NonNullable<PlanNodeInput['gpu']>,
): NonNullable<PlanNode['offload']> {
  let room = gpu.freeBytes - computeBytes(info, Array.from({ length: end - start }, (_, i) => start + i), runtime);
  let layers = 0;
  let bytes = 0;
  for (let il = end - 1; il >= start; il--) {
    const need = (info.layerWeights[il] ?? 0) + kvBytes(info, il, runtime) + (info.recurrentState[il] ?? 0) * runtime.parallel;
    if (need > room) break;
    room -= need;
    bytes += need;
    layers++;
  }
  return { device: gpu.name, layers, bytes };
}

export function finish(info: ModelInfo, planNodes: readonly PlanNode[], runtime: RuntimeParams, placement: Plan['placement']): Plan {
  return {
    placement,
    model: { file: info.file, arch: info.arch, layers: info.nLayer, fileType: info.fileType },
    runtime,
    nodes: planNodes,
    totalMemory: planNodes.reduce((a, p) => a + p.memory.total, 0),
  };
}

export function calculatePlan(info: ModelInfo, nodes: readonly PlanNodeInput[], runtime: RuntimeParams): Plan {
  const n = nodes.length;
  const L = info.nLayer;
  checkInputs(info, n, runtime);

  const budgets = nodes.map((x) => x.memory);
  const given = budgets.filter((b): b is number => b !== undefined);
  // Balance on load/budget; nodes without a budget are weighted like an average budgeted node.
  const weight = (j: number) => budgets[j] ?? (given.length ? given.reduce((a, b) => a + b, 0) / given.length : 1);
  const chained = n > 1;
  const cost = (j: number, a: number, b: number) => rankMemory(info, a, b, j === 0, runtime, chained).total;

  // Two passes over contiguous partitions (each node gets at least one layer): first the smallest achievable
  // max load/budget ratio, then, among partitions within it, the most even one (least sum of squared ratios).
  // A range's cost depends on the node only through whether it is the head: tabulate both once.
  const table = (head: boolean) =>
    Array.from({ length: L + 1 }, (_, a) => Array.from({ length: L + 1 }, (_, b) => (b > a ? cost(head ? 0 : 1, a, b) : NaN)));
  const headCost = table(true);
  const workerCost = n > 1 ? table(false) : headCost;
  const r = (j: number, a: number, b: number) => (j === 0 ? headCost : workerCost)[a]![b]! / weight(j);
  const best = partition(n, L, (j, a, b, prev) => Math.max(prev, r(j, a, b)));
  const limit = best.value * (1 + 1e-9);
  const even = partition(n, L, (j, a, b, prev) => (r(j, a, b) > limit ? Number.POSITIVE_INFINITY : prev + r(j, a, b) ** 2));
  const ends = Number.isFinite(even.value) ? even.ends : best.ends;
  const planNodes = buildNodes(info, nodes, ends, runtime);

  const over = planNodes.filter((p) => p.budget !== undefined && p.memory.total > p.budget);
  if (over.length) throw infeasible(info, planNodes, runtime);

  return finish(info, planNodes, runtime, 'memory');
}

function infeasible(info: ModelInfo, best: readonly PlanNode[], runtime: RuntimeParams): PlanError {
  const need = rankMemory(info, 0, info.nLayer, true, runtime);
  const lines = best.map(
    (p) =>
      `node ${p.index} (${p.name}): layers ${p.layerStart} - ${p.layerEnd - 1} need ~${formatBytes(p.memory.total)}` +
      (p.budget !== undefined ? ` of ${formatBytes(p.budget)}${p.memory.total > p.budget ? ' (over)' : ''}` : ''),
  );
  const budgetSum = best.reduce((a, p) => a + (p.budget ?? 0), 0);
  const fixed = best.reduce((a, p) => a + p.memory.overhead + p.memory.compute + p.memory.output, 0);
  return new PlanError(
    `the model does not fit: weights ${formatBytes(need.weights)}, KV cache ${formatBytes(need.kv)} at ctx ${runtime.ctx} x ${runtime.parallel} slot(s), ` +
      `plus ~${formatBytes(fixed)} of per-node buffers, against ${formatBytes(budgetSum)} of budgets. Best split found:\n  ${lines.join('\n  ')}`,
    ['add nodes or raise their memory budgets', 'lower --ctx or --parallel', 'use a smaller quantization of the model'],
  );
}

/** Contiguous partition of [0, L) into n non-empty ranges minimising a monotone accumulated objective. */
function partition(n: number, L: number, step: (node: number, a: number, b: number, prev: number) => number): { value: number; ends: number[] } {
  const INF = Number.POSITIVE_INFINITY;
  const dp: number[][] = Array.from({ length: n }, () => Array<number>(L + 1).fill(INF));
  const cut: number[][] = Array.from({ length: n }, () => Array<number>(L + 1).fill(-1));
  for (let i = 1; i <= L; i++) dp[0]![i] = step(0, 0, i, 0);
  for (let j = 1; j < n; j++) {
    for (let i = j + 1; i <= L; i++) {
      for (let k = j; k < i; k++) {
        const v = step(j, k, i, dp[j - 1]![k]!);
        if (v < dp[j]![i]!) {
          dp[j]![i] = v;
          cut[j]![i] = k;
        }
      }
    }
  }
  const ends: number[] = [];
  for (let j = n - 1, i = L; j >= 0; j--) {
    ends.unshift(i);
    i = j > 0 ? cut[j]![i]! : 0;
  }
  return { value: dp[n - 1]![L]!, ends };
}
