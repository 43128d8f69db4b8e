// A bench configuration's name as data and back: stock, chain-K, chain-K-<variant> (the chain with one engine feature
// off), rpc-K. The planner builds configurations from these; the report pairs a variant with its chain. Pure.

/** Engine features a chain variant turns off, each with the switch that does it. */
export const CHAIN_VARIANTS = {
  nopipe: { off: 'prefill pipelining off', feature: 'prefill pipelining', flags: { pipeline: false } },
  noenc: { off: 'link encryption off', feature: 'link encryption', flags: { encrypt: false } },
  nomb: { off: 'micro-batched decode off', feature: 'micro-batched decode', flags: { microbatch: false } },
  // --stage-groups 1: one group of generating requests in flight (the engine default keeps one per request)
  nogroups: { off: 'slot groups off', feature: 'slot groups', flags: { groups: 1 } },
  // no rank busy-polls its links (--stage-poll); only ranks with a core to themselves do in the chain itself
  nopoll: { off: 'link busy-poll off', feature: 'link busy-poll', flags: { poll: false } },
  // --stage-batch-groups off: one micro-batch per request, where the chain batches its groups (--batch-groups, or the probe's gain)
  nobatch: { off: 'batched groups off', feature: 'batched groups', flags: { batchGroupsFrom: 0 } },
} as const;

export type ChainVariant = keyof typeof CHAIN_VARIANTS;

export const VARIANT_ORDER = Object.keys(CHAIN_VARIANTS) as ChainVariant[];

export type ConfigName =
  | { readonly kind: 'stock' }
  | { readonly kind: 'chain'; readonly ranks: number; readonly variant?: ChainVariant }
  | { readonly kind: 'rpc'; readonly ranks: number };

const isVariant = (s: string): s is ChainVariant => Object.hasOwn(CHAIN_VARIANTS, s);

/** "chain-3-nomb" → { kind: 'chain', ranks: 3, variant: 'nomb' }; undefined for anything else. */
export function parseConfigId(id: string): ConfigName | undefined {
  if (id === 'stock') return { kind: 'stock' };
  const m = /^(chain|rpc)-([1-9]\d*)(?:-([a-z]+))?$/.exec(id);
  if (!m) return undefined;
  const ranks = Number(m[2]);
  if (m[1] === 'rpc') return m[3] === undefined ? { kind: 'rpc', ranks } : undefined;
  if (m[3] === undefined) return { kind: 'chain', ranks };
  return isVariant(m[3]) ? { kind: 'chain', ranks, variant: m[3] } : undefined;
}

/** A chain with one engine feature off (chain-K-<variant>): the one test the report and the chart use for variants. */
export const isChainVariant = (id: string): boolean => {
  const n = parseConfigId(id);
  return n?.kind === 'chain' && n.variant !== undefined;
};

export function formatConfigId(n: ConfigName): string {
  if (n.kind === 'stock') return 'stock';
  if (n.kind === 'rpc') return `rpc-${n.ranks}`;
  return n.variant ? `chain-${n.ranks}-${n.variant}` : `chain-${n.ranks}`;
}

/** Report order: stock, the chains by size, then the variants (by size, then in VARIANT_ORDER), then RPC. */
export function configOrder(n: ConfigName): readonly number[] {
  if (n.kind === 'stock') return [0];
  if (n.kind === 'rpc') return [3, n.ranks];
  return n.variant ? [2, n.ranks, VARIANT_ORDER.indexOf(n.variant)] : [1, n.ranks];
}

export function compareConfigNames(a: ConfigName, b: ConfigName): number {
  const x = configOrder(a);
  const y = configOrder(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d) return d;
  }
  return 0;
}
