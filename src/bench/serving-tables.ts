// The serving views of a run, derived from the measured configurations: the scaling table (aggregate decode of
// every configuration at every parallel level, against stock at the same level) and each engine feature on vs off
// (a chain variant next to its chain). Ratios only between configurations of the same run. Pure.
import type { ConfigResult, Measurement, OnOff, OnOffPoint, ScalingPoint } from './bench-result.js';
import { CHAIN_VARIANTS, formatConfigId, parseConfigId } from './config-id.js';

const measured = (c: ConfigResult | undefined): c is ConfigResult => !!c && !c.error && c.measurements.length > 0;

const at = (c: ConfigResult, m: { promptTokens: number; parallel: number }): Measurement | undefined =>
  c.measurements.find((x) => x.promptTokens === m.promptTokens && x.parallel === m.parallel);

export function scalingPoints(configs: readonly ConfigResult[]): ScalingPoint[] {
  const stock = configs.find((c) => c.kind === 'stock');
  return configs.filter(measured).flatMap((c) =>
    c.measurements.map((m): ScalingPoint => {
      const s = measured(stock) ? at(stock, m) : undefined;
      const vs = s ? m.aggregateDecodeTps.median / s.aggregateDecodeTps.median : Number.NaN;
      return {
        config: c.id,
        promptTokens: m.promptTokens,
        parallel: m.parallel,
        aggregateDecodeTps: m.aggregateDecodeTps.median,
        vsStock: Number.isFinite(vs) ? vs : undefined,
      };
    }),
  );
}

const onOff = (on: number, off: number): OnOff => ({ on, off, ratio: on / off });

export function onOffPoints(configs: readonly ConfigResult[]): OnOffPoint[] {
  const out: OnOffPoint[] = [];
  for (const off of configs.filter(measured)) {
    const name = parseConfigId(off.id);
    if (name?.kind !== 'chain' || !name.variant) continue;
    const on = configs.find((c) => c.id === formatConfigId({ kind: 'chain', ranks: name.ranks }));
    if (!measured(on)) continue;
    for (const m of off.measurements) {
      const o = at(on, m);
      if (!o) continue;
      out.push({
        feature: CHAIN_VARIANTS[name.variant].feature,
        on: on.id,
        off: off.id,
        promptTokens: m.promptTokens,
        parallel: m.parallel,
        aggregateDecodeTps: onOff(o.aggregateDecodeTps.median, m.aggregateDecodeTps.median),
        perRequestDecodeTps: onOff(o.perRequestDecodeTps.median, m.perRequestDecodeTps.median),
        prefillTps: onOff(o.prefillTps.median, m.prefillTps.median),
        ttftP95Ms: onOff(o.ttftP95Ms, m.ttftP95Ms),
      });
    }
  }
  return out;
}
