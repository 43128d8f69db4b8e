// Bench's chain configurations against the planner's prediction for the same split (plan/speed-model.ts), from the
// speeds `plan --probe` measured on these nodes; an emulated link latency (--link-latency-ms) adds to every link. Pure.
import type { ModelInfo } from '../plan/model-info.js';
import { chainLinkSeconds, lookupSpeed, nodeSpeedOf, type LinkRecord, type SpeedRecord } from '../plan/speed-cache.js';
import { predictDecode } from '../plan/speed-model.js';
import type { BenchReport } from './bench-result.js';
import { renderTable } from './text-table.js';

export interface ChainPrediction {
  readonly config: string;
  readonly split: string;
  readonly promptTokens: number;
  readonly predictedDecodeTps: number;
  readonly measuredDecodeTps: number;
  /** (measured - predicted) / predicted. */
  readonly error: number;
  readonly predictedPrefillTps?: number;
  readonly measuredPrefillTps: number;
}

/**
 * Per chain configuration and prompt length (one request at a time), the prediction and the measurement; `cacheNames`
 * are the bench's nodes as the speed cache names them (this machine: "local"). Configurations with a node never
 * measured are left out; `missing` names those nodes.
 */
export function predictChains(
  info: ModelInfo,
  report: BenchReport,
  cacheNames: readonly string[],
  model: string,
  records: readonly SpeedRecord[],
  links: readonly LinkRecord[],
): { rows: ChainPrediction[]; missing: string[] } {
  const rows: ChainPrediction[] = [];
  const missing = new Set<string>();
  for (const c of report.configs) {
    if (c.kind !== 'chain' || c.error || !c.nodes.length) continue;
    const names = c.nodes.map((n) => cacheNames[report.settings.nodes.indexOf(n.node)] ?? n.node);
    const speeds = names.map((n) => lookupSpeed(records, n, model));
    names.forEach((n, i) => (speeds[i] ? undefined : missing.add(n)));
    if (speeds.some((s) => !s)) continue;
    const known = speeds as SpeedRecord[];
    const ranges = c.nodes.map((n) => ({ layerStart: n.layers[0], layerEnd: n.layers[1] }));
    const linkSeconds = chainLinkSeconds(names, known, links).map((s) => s + report.settings.linkLatencyMs / 1000);
    const p = predictDecode(info, ranges, known.map(nodeSpeedOf), linkSeconds);
    if (!p) continue;
    for (const m of c.measurements) {
      if (m.parallel !== 1) continue;
      rows.push({
        config: c.id,
        split: ranges.map((r) => `${r.layerStart}:${r.layerEnd}`).join(','),
        promptTokens: m.promptTokens,
        predictedDecodeTps: p.decodeTokensPerSecond,
        measuredDecodeTps: m.perRequestDecodeTps.median,
        error: (m.perRequestDecodeTps.median - p.decodeTokensPerSecond) / p.decodeTokensPerSecond,
        ...(p.prefillTokensPerSecond !== undefined ? { predictedPrefillTps: p.prefillTokensPerSecond } : {}),
        measuredPrefillTps: m.prefillTps.median,
      });
    }
  }
  return { rows, missing: [...missing] };
}

export function renderChainPredictions(r: { rows: readonly ChainPrediction[]; missing: readonly string[] }, linkLatencyMs: number): string {
  const head = `\nPredicted vs measured (one request; speeds from plan --probe${linkLatencyMs ? `, links + ${linkLatencyMs} ms emulated` : ''}):\n`;
  const note = r.missing.length ? `not measured yet (run plan --probe with these nodes): ${r.missing.join(', ')}\n` : '';
  if (!r.rows.length) return `${head}${note || 'no chain configuration measured\n'}`;
  const f = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
  const table = renderTable(
    ['config', 'split', 'prompt', 'decode pred', 'decode meas', 'error', 'prefill pred', 'prefill meas'],
    r.rows.map((x) => [x.config, x.split, String(x.promptTokens), f(x.predictedDecodeTps), f(x.measuredDecodeTps), `${(x.error * 100).toFixed(0)}%`, f(x.predictedPrefillTps), f(x.measuredPrefillTps)]),
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
  return `${head}${table}\n${note}`;
}
