// The numbers the issues ask for, derived from the measured configurations: per-hop overhead against the
// limit (stock ms/token + hops × link latency) and the targets (chain vs stock, vs RPC, pipelining, and under
// load: aggregate decode vs stock, vs RPC and with micro-batched decode off). Pure.
import type { ConfigResult, Finding, HopOverhead, Measurement } from './bench-result.js';
import { mean } from './stats.js';
import { isChainVariant } from './config-id.js';

const ok = (c: ConfigResult | undefined): c is ConfigResult => !!c && !c.error && c.measurements.length > 0;

function at(c: ConfigResult, promptTokens: number, parallel: number): Measurement | undefined {
  return c.measurements.find((m) => m.promptTokens === promptTokens && m.parallel === parallel);
}

/** The one-way latency the relays actually added (their mean hold time), or 0 when no delay was asked for. */
export function effectiveLinkMs(c: ConfigResult, requestedMs: number): number {
  if (requestedMs <= 0) return 0;
  const held = c.links.map((l) => l.meanHeldMs).filter((x) => x > 0);
  return held.length ? mean(held) : requestedMs;
}

export function hopOverheads(configs: readonly ConfigResult[], linkLatencyMs: number): HopOverhead[] {
  const stock = configs.find((c) => c.kind === 'stock');
  if (!ok(stock)) return [];
  const out: HopOverhead[] = [];
  for (const c of configs) {
    if (!ok(c) || c.hops === 0) continue;
    const link = effectiveLinkMs(c, linkLatencyMs);
    for (const m of c.measurements) {
      const s = at(stock, m.promptTokens, m.parallel);
      if (!s) continue;
      const limit = s.decodeMsPerToken + c.hops * link;
      out.push({
        config: c.id,
        promptTokens: m.promptTokens,
        parallel: m.parallel,
        msPerToken: m.decodeMsPerToken,
        limitMsPerToken: limit,
        hops: c.hops,
        linkLatencyMs: link,
        overheadPerHopMs: (m.decodeMsPerToken - limit) / c.hops,
      });
    }
  }
  return out;
}

function ratio(
  name: string,
  a: ConfigResult | undefined,
  b: ConfigResult | undefined,
  point: { promptTokens: number; parallel: number },
  metric: 'aggregateDecodeTps' | 'prefillTps',
  target: number | undefined,
  note: string,
): Finding {
  const ma = ok(a) ? at(a, point.promptTokens, point.parallel) : undefined;
  const mb = ok(b) ? at(b, point.promptTokens, point.parallel) : undefined;
  const where = `prompt ${point.promptTokens}, parallel ${point.parallel}`;
  if (!ma || !mb) return { name, value: undefined, unit: 'x', detail: `not measured in this run (${where})` };
  const value = ma[metric].median / mb[metric].median;
  const what = metric === 'aggregateDecodeTps' ? (point.parallel > 1 ? 'aggregate decode' : 'decode') : 'prefill';
  return {
    name,
    value,
    unit: 'x',
    ...(target !== undefined ? { target, pass: value >= target } : {}),
    detail: `${what} ${ma[metric].median.toFixed(1)} vs ${mb[metric].median.toFixed(1)} tok/s (${where})${note}`,
  };
}

export function findings(
  configs: readonly ConfigResult[],
  settings: { promptTokens: readonly number[]; parallel: readonly number[]; linkLatencyMs: number; taskset?: boolean },
): Finding[] {
  const byId = (id: string) => configs.find((c) => c.id === id);
  const chains = configs.filter((c) => c.kind === 'chain' && !isChainVariant(c.id));
  const n = Math.max(0, ...chains.map((c) => c.ranks));
  if (n === 0) return [];
  const chain = byId(`chain-${n}`);
  const p1 = settings.parallel.includes(1) ? 1 : settings.parallel[0]!;
  const shortest = { promptTokens: Math.min(...settings.promptTokens), parallel: p1 };
  const longest = { promptTokens: Math.max(...settings.promptTokens), parallel: p1 };
  const lat = settings.linkLatencyMs;
  const out: Finding[] = [
    // The stock target is for ranks on one machine's loopback; an emulated link adds its latency to every hop.
    ratio(`chain-${n} decode vs stock`, chain, byId('stock'), shortest, 'aggregateDecodeTps', lat > 0 ? undefined : 0.95, lat > 0 ? `, link latency ${lat} ms` : ''),
    ratio(`chain-${n} decode vs rpc-${n}`, chain, byId(`rpc-${n}`), shortest, 'aggregateDecodeTps', lat >= 1 ? 1.5 : undefined, chain?.networkMeasured === false ? ', real links' : `, link latency ${lat} ms`),
    ratio(`chain-${n} prefill, pipelining on vs off`, chain, byId(`chain-${n}-nopipe`), longest, 'prefillTps', 1.5, ''),
    // the price of sealing every frame: 1.0x means encryption costs nothing measurable
    ratio(`chain-${n} decode, encryption on vs off`, chain, byId(`chain-${n}-noenc`), shortest, 'aggregateDecodeTps', undefined, ''),
    // what the ranks' busy-poll around each frame saves at one stream (a rank no longer idles through its waits)
    ratio(`chain-${n} decode, link busy-poll on vs off`, chain, byId(`chain-${n}-nopoll`), shortest, 'aggregateDecodeTps', undefined, ''),
    ...underLoad(configs, n, settings),
  ];
  const rpc = byId(`rpc-${n}`);
  if (ok(chain) && ok(rpc)) {
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
    out.push({
      name: `load time rpc-${n} / chain-${n}`,
      value: rpc.loadMs / chain.loadMs,
      unit: 'x',
      detail: `slowest node ready after ${s(chain.loadMs)} (chain) vs ${s(rpc.loadMs)} (rpc)`,
    });
    const measured = Number.isFinite(chain.startBytes) && Number.isFinite(rpc.startBytes);
    out.push({
      name: `network bytes at start, chain-${n} vs rpc-${n}`,
      value: measured ? chain.startBytes : undefined,
      unit: 'B',
      detail: measured
        ? `${mb(chain.startBytes)} (chain: every rank reads its own layers) vs ${mb(rpc.startBytes)} (rpc: weights pushed to the servers)`
        : 'not measured: the links between remote nodes are real and no relay counts their bytes',
    });
  }
  const hop = hopOverheads(configs, lat).find((h) => h.config === `chain-${n}` && h.promptTokens === shortest.promptTokens && h.parallel === p1);
  const rpcAt = ok(rpc) ? at(rpc, shortest.promptTokens, p1) : undefined;
  if (hop && rpcAt) {
    // The most any chain could gain over RPC here: a decode token costs at least Σ compute + one link per hop.
    out.push({
      name: `chain-${n} vs rpc-${n} decode ceiling`,
      value: rpcAt.decodeMsPerToken / hop.limitMsPerToken,
      unit: 'x',
      detail:
        `rpc ${rpcAt.decodeMsPerToken.toFixed(2)} ms/token over the chain's limit ${hop.limitMsPerToken.toFixed(2)}; ` +
        `the chain reaches ${((100 * hop.limitMsPerToken) / hop.msPerToken).toFixed(0)}% of its limit`,
    });
  }
  if (hop) {
    out.push({
      name: `chain-${n} overhead per hop`,
      value: hop.overheadPerHopMs,
      unit: 'ms',
      detail:
        `${hop.msPerToken.toFixed(2)} ms/token vs limit ${hop.limitMsPerToken.toFixed(2)} ` +
        `(stock ${(hop.limitMsPerToken - hop.hops * hop.linkLatencyMs).toFixed(2)} + ${hop.hops} hops x ${hop.linkLatencyMs.toFixed(2)} ms)`,
    });
  }
  return out;
}

/**
 * Serving: the full chain's aggregate decode at every parallel level above 1, against stock, RPC and itself with
 * micro-batched decode off or slot groups off, where the run has both. Targets where the issue sets them: 2 ranks
 * pinned to their own cores at 4+ requests (1.5x stock and RPC, 1.4x micro-batching off); 3 ranks on loopback at 4
 * requests (1.0x); none for slot groups.
 */
function underLoad(configs: readonly ConfigResult[], n: number, settings: { promptTokens: readonly number[]; parallel: readonly number[]; taskset?: boolean }): Finding[] {
  const byId = (id: string) => configs.find((c) => c.id === id);
  const chain = byId(`chain-${n}`);
  const promptTokens = Math.min(...settings.promptTokens);
  const out: Finding[] = [];
  for (const parallel of settings.parallel.filter((p) => p > 1)) {
    const pinned2 = n === 2 && !!settings.taskset && parallel >= 4;
    const loopback3 = n === 3 && !settings.taskset && parallel === 4;
    const pairs: [string, string, number | undefined][] = [
      [`chain-${n} aggregate decode vs stock, parallel ${parallel}`, 'stock', pinned2 ? 1.5 : loopback3 ? 1.0 : undefined],
      [`chain-${n} aggregate decode vs rpc-${n}, parallel ${parallel}`, `rpc-${n}`, pinned2 ? 1.5 : loopback3 ? 1.0 : undefined],
      [`chain-${n} aggregate decode, micro-batching on vs off, parallel ${parallel}`, `chain-${n}-nomb`, pinned2 ? 1.4 : undefined],
      [`chain-${n} aggregate decode, slot groups on vs off, parallel ${parallel}`, `chain-${n}-nogroups`, undefined],
      // below --batch-groups N requests nothing is batched, so the ratio is ~1 there by construction
      [`chain-${n} aggregate decode, batched groups on vs off, parallel ${parallel}`, `chain-${n}-nobatch`, undefined],
    ];
    for (const [name, other, target] of pairs) {
      if (chain && byId(other)) out.push(ratio(name, chain, byId(other), { promptTokens, parallel }, 'aggregateDecodeTps', target, ''));
    }
  }
  return out;
}
