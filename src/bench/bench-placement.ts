// Where bench puts a K-rank configuration's layers: the split `up` launches on the same nodes. Where `plan --probe`
// measured every one of them (the speed cache), the plan on those speeds, as `plan` and `up` then use; otherwise the
// ranks are taken to be of one speed (planOneSpeed: the head's output counted by its bytes). Pure.
import type { ModelInfo } from '../plan/model-info.js';
import { DEFAULT_RUNTIME } from '../plan/memory.js';
import { PlanError } from '../plan/planner.js';
import type { LinkSeconds, NodeSpeed } from '../plan/speed-model.js';
import { planOneSpeed, planOnSpeed } from '../plan/speed-planner.js';

export interface BenchPlacement {
  readonly ranges: readonly (readonly [number, number])[];
  /** On the speeds plan --probe measured (else nodes of one speed). */
  readonly measured: boolean;
}

/** What was measured for the first K nodes of a bench: every node's speed and the chain's links. */
export interface MeasuredChain {
  readonly speeds: readonly NodeSpeed[];
  readonly links: LinkSeconds;
  /** Per node, the batch gain its last probe measured (batch-groups.ts), where it did. */
  readonly batchGains?: readonly (number | undefined)[];
}

/**
 * The placement of each rank count from 2 to n; `measured(k)` gives the measurements of the first k nodes where every
 * one is known. A count the planner refuses is left out (config-planner then splits it evenly).
 */
export function benchPlacements(info: ModelInfo, n: number, slots: number, measured: (k: number) => MeasuredChain | undefined): Map<number, BenchPlacement> {
  const out = new Map<number, BenchPlacement>();
  const runtime = { ...DEFAULT_RUNTIME, parallel: slots };
  for (let k = 2; k <= n; k++) {
    const nodes = Array.from({ length: k }, (_, i) => ({ name: `node ${i}` }));
    const m = measured(k);
    try {
      const plan = m
        ? planOnSpeed(info, nodes.map((x, i) => ({ ...x, speed: m.speeds[i]! })), runtime, { hopSeconds: m.links, objective: slots > 1 ? 'stage' : 'token' })
        : planOneSpeed(info, nodes, runtime);
      out.set(k, { ranges: plan.nodes.map((p) => [p.layerStart, p.layerEnd] as const), measured: m !== undefined });
    } catch (e) {
      if (!(e instanceof PlanError)) throw e; // the even split stands in; the ranks' start-up names what is wrong
    }
  }
  return out;
}
