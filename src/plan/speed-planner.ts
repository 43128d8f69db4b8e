// The speed-aware plan: contiguous ranges that minimise the predicted time per token (plan/speed-model.ts) subject to
// every node's memory budget. One request at a time: the sum of the ranks' compute and every link's latency (the
// links are the same for any split over the same nodes), ties broken by the slowest stage, and a node's CPU quota
// bound where it has one; with parallel slots (pipelined decode): the slowest stage
// first. Nodes of equal speed thus get compute-balanced ranges. Pure.
import { rankMemory, type RuntimeParams } from './memory.js';
import type { ModelInfo } from './model-info.js';
import { buildNodes, calculatePlan, finish, PlanError, type Plan, type PlanNodeInput } from './planner.js';
import { predictDecode, quotaSeconds, rankSeconds, type LinkSeconds, type NodeSpeed, type Prediction } from './speed-model.js';

export interface SpeedNodeInput extends PlanNodeInput {
  /** Measured, or { secondsPerByte: 1 } for "same as the others". */
  readonly speed: NodeSpeed;
}

export interface SpeedPlanOptions {
  /** Every link's cost per token, or one for all. */
  readonly hopSeconds: LinkSeconds;
  /** 'token': one request at a time (sum); 'stage': pipelined decode of parallel slots (slowest stage). */
  readonly objective: 'token' | 'stage';
  /** The speeds are relative only (one machine's ranks): no prediction in tok/s. */
  readonly relative?: boolean;
}

type Score = readonly [number, number];
const INF: Score = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
// Sums of the same bytes in another order differ in the last bits: equal within this, the second key decides.
const less = (a: Score, b: Score) => (Math.abs(a[0] - b[0]) > 1e-9 * Math.max(Math.abs(a[0]), Math.abs(b[0])) ? a[0] < b[0] : a[1] < b[1]);

export function planOnSpeed(info: ModelInfo, nodes: readonly SpeedNodeInput[], runtime: RuntimeParams, o: SpeedPlanOptions): Plan {
  const n = nodes.length;
  const L = info.nLayer;
  if (n < 1 || n > L) return calculatePlan(info, nodes, runtime); // its errors say what is wrong
  const chained = n > 1;
  const links = Array.from({ length: chained ? n : 0 }, (_, i) => (typeof o.hopSeconds === 'number' ? o.hopSeconds : (o.hopSeconds[i] ?? 0)));
  const memo = new Map<string, number>();
  const memory = (head: boolean, a: number, b: number) => {
    const k = `${head ? 1 : 0}:${a}:${b}`;
    let v = memo.get(k);
    if (v === undefined) memo.set(k, (v = rankMemory(info, a, b, head, runtime, chained).total));
    return v;
  };
  const fits = (j: number, a: number, b: number) => nodes[j]!.memory === undefined || memory(j === 0, a, b) <= nodes[j]!.memory!;
  const time = (j: number, a: number, b: number) => rankSeconds(info, a, b, j === 0, nodes[j]!.speed);
  const bound = (j: number, a: number, b: number) => quotaSeconds(time(j, a, b), nodes[j]!.speed);
  // A link's cost is the same for any split over these nodes: it counts in the sum once, and in its sending rank's stage.
  const cost = (j: number, a: number, b: number) =>
    o.objective === 'token' ? time(j, a, b) + (links[j] ?? 0) : Math.max(time(j, a, b) + (links[j] ?? 0), bound(j, a, b));
  const step = (prev: Score, t: number): Score => (o.objective === 'token' ? [prev[0] + t, Math.max(prev[1], t)] : [Math.max(prev[0], t), prev[1] + t]);

  /** The best split whose ranks' quota bounds stay within `limit`; undefined where none fits. */
  const solve = (limit: number): number[] | undefined => {
    const ok = (j: number, a: number, b: number) => fits(j, a, b) && bound(j, a, b) <= limit;
    const best: Score[][] = Array.from({ length: n }, () => Array<Score>(L + 1).fill(INF));
    const cut: number[][] = Array.from({ length: n }, () => Array<number>(L + 1).fill(-1));
    for (let i = 1; i <= L - (n - 1); i++) if (ok(0, 0, i)) best[0]![i] = step([0, 0], cost(0, 0, i));
    for (let j = 1; j < n; j++) {
      for (let i = j + 1; i <= L - (n - 1 - j); i++) {
        for (let k = j; k < i; k++) {
          const prev = best[j - 1]![k]!;
          if (!Number.isFinite(prev[0]) || !ok(j, k, i)) continue;
          const v = step(prev, cost(j, k, i));
          if (less(v, best[j]![i]!)) {
            best[j]![i] = v;
            cut[j]![i] = k;
          }
        }
      }
    }
    if (!Number.isFinite(best[n - 1]![L]![0])) return undefined;
    const ends: number[] = [];
    for (let j = n - 1, i = L; j >= 0; j--) {
      ends.unshift(i);
      i = j > 0 ? cut[j]![i]! : 0;
    }
    return ends;
  };

  let ends = solve(Number.POSITIVE_INFINITY);
  if (ends && o.objective === 'token' && nodes.some((x) => x.speed.cpuShare !== undefined)) ends = underQuota(info, nodes, links, bound, solve) ?? ends;
  if (!ends) {
    calculatePlan(info, nodes, runtime); // throws the infeasible message with the best memory split
    throw new PlanError('no split fits every node\'s memory budget');
  }
  const planNodes = buildNodes(info, nodes, ends, runtime);
  const plan = finish(info, planNodes, runtime, o.relative ? 'compute' : 'speed');
  if (o.relative) return plan;
  const prediction = predictDecode(info, planNodes, nodes.map((x) => x.speed), links)!;
  const alone = fastestAlone(info, nodes, runtime, prediction);
  return { ...plan, prediction, ...(alone ? { alone } : {}) };
}

/**
 * One request at a time with CPU quotas: the time per token is max(sum of compute and links, the largest quota bound)
 * (speed-model.ts quotaSeconds). The least sum under a cap on the bounds falls as the cap rises, so the best cap is
 * where the two cross: a binary search over the bounds the ranges can have, each step the memory-and-cap DP.
 */
function underQuota(
  info: ModelInfo,
  nodes: readonly SpeedNodeInput[],
  links: readonly number[],
  bound: (j: number, a: number, b: number) => number,
  solve: (limit: number) => number[] | undefined,
): number[] | undefined {
  const L = info.nLayer;
  const caps = new Set<number>([0]);
  nodes.forEach((x, j) => {
    if (x.speed.cpuShare === undefined) return;
    for (let a = 0; a < L; a++) for (let b = a + 1; b <= L; b++) caps.add(bound(j, a, b));
  });
  const sorted = [...caps].sort((a, b) => a - b);
  const tokenTime = (ends: number[]) => {
    const ranges = ends.map((e, i) => ({ layerStart: i ? ends[i - 1]! : 0, layerEnd: e }));
    return predictDecode(info, ranges, nodes.map((x) => x.speed), links)!.tokenSeconds;
  };
  let best: { ends: number[]; t: number } | undefined;
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const ends = solve(sorted[mid]!);
    if (!ends) {
      lo = mid + 1;
      continue;
    }
    const t = tokenTime(ends);
    if (!best || t < best.t) best = { ends, t };
    // Past the crossing (the cap binds), a lower cap may be better; before it, a higher one.
    if (t <= sorted[mid]! * (1 + 1e-12)) hi = mid - 1;
    else lo = mid + 1;
  }
  return best?.ends;
}

/** The node predicted fastest running the whole model by itself, where it fits its budget and beats the split. */
function fastestAlone(info: ModelInfo, nodes: readonly SpeedNodeInput[], runtime: RuntimeParams, split: Prediction): Plan['alone'] {
  if (nodes.length < 2) return undefined;
  const whole = rankMemory(info, 0, info.nLayer, true, runtime).total;
  const candidates = nodes
    .filter((x) => x.memory !== undefined && whole <= x.memory)
    .map((x) => {
      const t = rankSeconds(info, 0, info.nLayer, true, x.speed);
      return { node: x.name, decodeTokensPerSecond: 1 / Math.max(t, quotaSeconds(t, x.speed)) };
    })
    .sort((a, b) => b.decodeTokensPerSecond - a.decodeTokensPerSecond);
  const top = candidates[0];
  return top && top.decodeTokensPerSecond > split.decodeTokensPerSecond ? top : undefined;
}

/** A plan of given ranges (a manual split) with its predicted decode, for nodes whose speeds are known. */
export function withPrediction(plan: Plan, info: ModelInfo, speeds: readonly NodeSpeed[], hopSeconds: LinkSeconds): Plan {
  const prediction = predictDecode(info, plan.nodes, speeds, hopSeconds);
  if (!prediction) return plan;
  const nodes = plan.nodes.map((p, i) => ({ name: p.name, speed: speeds[i]!, ...(p.budget !== undefined ? { memory: p.budget } : {}) }));
  const alone = fastestAlone(info, nodes, plan.runtime, prediction);
  return { ...plan, prediction, ...(alone ? { alone } : {}) };
}

/**
 * Nodes taken to be of one speed: the ranges that balance the ranks' compute per token, the head's output layer
 * included (what `plan` gives ranks on one machine, and every bench configuration without a split of the user's).
 */
export function planOneSpeed(info: ModelInfo, nodes: readonly PlanNodeInput[], runtime: RuntimeParams): Plan {
  const objective = runtime.parallel > 1 ? 'stage' : 'token';
  return planOnSpeed(info, nodes.map((x) => ({ ...x, speed: { secondsPerByte: 1 } })), runtime, { hopSeconds: 0, objective, relative: true });
}
