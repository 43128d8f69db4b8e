// Which configurations a bench run measures, derived from the nodes and flags. Pure: no IO.
import { UserError } from '../errors.js';
import type { BenchConfig, BenchOptions, RankPlan } from './bench-config.js';
import { evenSplit } from '../runtime/even-split.js';

function ranksFor(o: BenchOptions, layers: number, count: number): RankPlan[] {
  const ranges = o.split && count === o.split.length && count > 1 ? o.split : evenSplit(layers, count);
  return ranges.map((range, i) => ({
    node: i,
    layers: range,
    core: o.taskset ? i % Math.max(1, o.cores) : undefined,
  }));
}

/**
 * stock (one stock llama-server), chain-1..chain-N (chain-1 is the patched server without stage flags),
 * chain-N-nopipe (the head waits for every ubatch), chain-N-noenc (links authenticated, not encrypted), rpc-N (stock llama-server --rpc over N-1 ggml-rpc-servers),
 * each with the same even split of the model's layers (the N-rank ones with the user's split, where given). Rank i runs on node i.
 */
export function planConfigs(o: BenchOptions, layers: number): BenchConfig[] {
  const n = o.nodes.length;
  if (n < 1) throw new UserError('bench needs at least one node', ['pass -n 3 or --nodes local,local,local']);
  if (n > layers) throw new UserError(`${n} nodes but the model has only ${layers} layers`, [`pass -n ${layers} or fewer`]);
  const all: BenchConfig[] = [];
  if (o.stock) {
    all.push({ id: 'stock', kind: 'stock', description: 'stock llama-server, one process', ranks: ranksFor(o, layers, 1), pipeline: true, hops: 0 });
  }
  for (let k = 1; k <= n; k++) {
    all.push({
      id: `chain-${k}`,
      kind: 'chain',
      description: k === 1 ? 'llama-relay server, no stage flags' : `llama-relay chain, ${k} ranks`,
      ranks: ranksFor(o, layers, k),
      pipeline: true,
      hops: k > 1 ? k : 0,
    });
  }
  if (n >= 2) {
    // The full chain again with one engine feature off, for the on/off ratios.
    const variants = [
      { suffix: 'nopipe', off: 'prefill pipelining off', pipeline: false },
      { suffix: 'noenc', off: 'link encryption off', pipeline: true, encrypt: false },
    ];
    for (const { suffix, off, ...flags } of variants) {
      all.push({ id: `chain-${n}-${suffix}`, kind: 'chain', description: `llama-relay chain, ${n} ranks, ${off}`, ranks: ranksFor(o, layers, n), hops: n, ...flags });
    }
  }
  if (o.rpc && n >= 2) {
    all.push({
      id: `rpc-${n}`,
      kind: 'rpc',
      description: `llama.cpp RPC: llama-server --rpc over ${n - 1} ggml-rpc-server(s)`,
      ranks: ranksFor(o, layers, n),
      pipeline: true,
      hops: 2 * (n - 1),
    });
  }
  if (!o.only?.length) return all;
  const unknown = o.only.filter((id) => !all.some((c) => c.id === id));
  if (unknown.length) {
    throw new UserError(`unknown configuration(s): ${unknown.join(', ')}`, [`choose from: ${all.map((c) => c.id).join(', ')}`]);
  }
  return all.filter((c) => o.only!.includes(c.id));
}

/** Context for every server: room for the longest prompt plus generation in each slot, rounded up to 256. */
export function contextSize(promptTokens: readonly number[], genTokens: number, slots: number): number {
  const perSlot = Math.max(...promptTokens, 1) + genTokens + 64;
  return Math.ceil((perSlot * slots) / 256) * 256;
}
