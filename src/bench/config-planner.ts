// Which configurations a bench run measures, derived from the nodes and flags. Pure: no IO.
import { UserError } from '../errors.js';
import type { BenchConfig, BenchOptions, RankPlan } from './bench-config.js';
import { evenSplit } from '../runtime/even-split.js';
import { CHAIN_VARIANTS, compareConfigNames, formatConfigId, parseConfigId, VARIANT_ORDER, type ConfigName } from './config-id.js';

function ranksFor(o: BenchOptions, layers: number, count: number): RankPlan[] {
  const ranges = o.split && count === o.split.length && count > 1 ? o.split : (o.placement?.get(count) ?? evenSplit(layers, count));
  return ranges.map((range, i) => ({
    node: i,
    layers: range,
    core: o.taskset ? i % Math.max(1, o.cores) : undefined,
  }));
}

/** What runs without --only: stock, chain-1..N, the N-rank chain with each engine feature off, rpc-N. */
function defaultNames(o: BenchOptions, n: number): ConfigName[] {
  const names: ConfigName[] = o.stock ? [{ kind: 'stock' }] : [];
  for (let k = 1; k <= n; k++) names.push({ kind: 'chain', ranks: k });
  // The full chain again with one engine feature off, for the on/off ratios. Busy-poll only differs where a rank has a
  // core to itself: pinned, or on a node of its own.
  const polls = o.taskset || o.nodes.some((x) => x.kind !== 'local');
  const applies = (v: string) => (v === 'nopoll' ? polls : v === 'nobatch' ? !!o.batchGroups?.get(n) : true);
  if (n >= 2) for (const variant of VARIANT_ORDER) if (applies(variant)) names.push({ kind: 'chain', ranks: n, variant });
  if (o.rpc && n >= 2) names.push({ kind: 'rpc', ranks: n });
  return names;
}

/** --only: any configuration the nodes allow, by name (chain-K-<variant> and rpc-K for any K from 2 to N). */
function onlyNames(only: readonly string[], o: BenchOptions, n: number): ConfigName[] {
  const fits = (c: ConfigName) => c.kind === 'stock' || (c.ranks <= n && (c.kind === 'chain' && !c.variant ? c.ranks >= 1 : c.ranks >= 2));
  const parsed = [...new Set(only)].map((id) => ({ id, name: parseConfigId(id) }));
  const bad = parsed.filter((p) => !p.name || !fits(p.name)).map((p) => p.id);
  if (bad.length) {
    throw new UserError(`unknown configuration(s): ${bad.join(', ')}`, [
      `choose from: ${defaultNames({ ...o, stock: true, rpc: true }, n).map(formatConfigId).join(', ')}`,
      `or, with ${n} node(s), chain-K, chain-K-{${VARIANT_ORDER.join(',')}} or rpc-K for K up to ${n} (variants and rpc from K=2)`,
    ]);
  }
  return parsed.map((p) => p.name!).sort(compareConfigNames);
}

function configFor(o: BenchOptions, layers: number, name: ConfigName): BenchConfig {
  const id = formatConfigId(name);
  if (name.kind === 'stock') return { id, kind: 'stock', description: 'stock llama-server, one process', ranks: ranksFor(o, layers, 1), pipeline: true, hops: 0 };
  const k = name.ranks;
  if (name.kind === 'rpc') {
    return { id, kind: 'rpc', description: `llama.cpp RPC: llama-server --rpc over ${k - 1} ggml-rpc-server(s)`, ranks: ranksFor(o, layers, k), pipeline: true, hops: 2 * (k - 1) };
  }
  const chain = { id, kind: 'chain' as const, ranks: ranksFor(o, layers, k), pipeline: true, hops: k > 1 ? k : 0, ...(o.groups !== undefined && k > 1 ? { groups: o.groups } : {}), ...(k > 1 && o.batchGroups?.get(k) ? { batchGroupsFrom: o.batchGroups.get(k) } : {}) };
  if (!name.variant) return { ...chain, description: k === 1 ? 'llama-relay server, no stage flags' : `llama-relay chain, ${k} ranks` };
  const v = CHAIN_VARIANTS[name.variant];
  return { ...chain, ...v.flags, description: `llama-relay chain, ${k} ranks, ${v.off}` };
}

/**
 * stock (one stock llama-server), chain-1..chain-N (chain-1 is the patched server without stage flags), the N-rank
 * chain with one engine feature off (chain-N-nopipe: the head waits for every ubatch; chain-N-noenc: links
 * authenticated, not encrypted; chain-N-nomb: no micro-batched decode across requests; chain-N-nogroups: the head with
 * --stage-groups 1, one group of generating requests in flight; chain-N-nopoll: no rank busy-polls its links; chain-N-nobatch, where the N-rank chain batches its groups: one micro-batch per request), rpc-N (stock llama-server
 * --rpc over N-1 ggml-rpc-servers), each K-rank one with the same split of the model's layers (options.placement, else even; the N-rank ones with the
 * user's split, where given). Rank i runs on node i. `--only` picks by name, also smaller variants (chain-2-nomb).
 */
export function planConfigs(o: BenchOptions, layers: number): BenchConfig[] {
  const n = o.nodes.length;
  if (n < 1) throw new UserError('bench needs at least one node', ['pass -n 3 or --nodes local,local,local']);
  if (n > layers) throw new UserError(`${n} nodes but the model has only ${layers} layers`, [`pass -n ${layers} or fewer`]);
  const names = o.only?.length ? onlyNames(o.only, o, n) : defaultNames(o, n);
  return names.map((name) => configFor(o, layers, name));
}

/** Context for every server: room for the longest prompt plus generation in each slot, rounded up to 256. */
export function contextSize(promptTokens: readonly number[], genTokens: number, slots: number): number {
  const perSlot = Math.max(...promptTokens, 1) + genTokens + 64;
  return Math.ceil((perSlot * slots) / 256) * 256;
}
