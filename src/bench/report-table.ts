// The terminal view of a BenchReport: throughput per configuration (with a legend of its columns), the scaling
// table, engine features on/off, nodes (load, RSS, bytes), hop overhead, targets. Pure.
import type { BenchReport, ConfigResult, OnOff, OnOffPoint, ScalingPoint } from './bench-result.js';
import type { Spread } from './stats.js';
import { renderTable } from './text-table.js';

const num = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const withSpread = (s: Spread, digits = 1) =>
  s.n > 1 ? `${num(s.median, digits)} (${num(s.min, digits)}-${num(s.max, digits)})` : num(s.median, digits);

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return '-';
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(2)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${Math.round(b)} B`;
}

const secs = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)}s` : '-');

const NOT_MEASURED = 'n/m';
/** Bytes of a configuration: "n/m" where its links are real (remote nodes), not on this machine to count. */
const netBytes = (c: ConfigResult, b: number) => (c.networkMeasured === false ? NOT_MEASURED : formatBytes(b));

export const THROUGHPUT_HEADERS = [
  'config', 'prompt', 'par', 'TTFT p50 ms', 'TTFT p95 ms', 'prefill tok/s', 'agg decode tok/s', 'per-req decode tok/s', 'ms/tok', 'net B/prompt tok', 'net B/gen tok',
] as const;

/** What each column of the throughput table is: printed under it, so no reader has to guess. */
export const THROUGHPUT_LEGEND: readonly string[] = [
  'TTFT p50/p95 ms: request sent -> first streamed token on this machine\'s clock, percentiles (linear interpolation) over every request of every repeat at that point',
  'prefill tok/s: llama-server\'s own prompt tokens/s per request, summed over the concurrent requests',
  'agg decode tok/s: aggregate decode, all streams\' tokens over the wall time of the decode phase (from the moment every request has its first token to the last token of all)',
  'per-req decode tok/s: one request\'s tokens after its first over its own first-to-last-token time; the median over the batch\'s requests',
  'ms/tok: 1000 / per-req decode tok/s, one decode step as a stream sees it (used for the per-hop overhead below)',
  'X (A-B): median over repeats (min-max); rates on this machine\'s clock as the client receives the stream',
];

export function throughputTable(configs: readonly ConfigResult[]): string {
  const rows: string[][] = [];
  for (const c of configs) {
    if (c.error) {
      rows.push([c.id, '-', '-', 'failed']);
      continue;
    }
    for (const m of c.measurements) {
      rows.push([
        c.id,
        String(m.promptTokens),
        String(m.parallel),
        num(m.ttftP50Ms, 0),
        num(m.ttftP95Ms, 0),
        withSpread(m.prefillTps),
        withSpread(m.aggregateDecodeTps),
        withSpread(m.perRequestDecodeTps),
        num(m.decodeMsPerToken, 2),
        netBytes(c, m.prefillBytesPerPromptToken),
        netBytes(c, m.decodeBytesPerToken),
      ]);
    }
  }
  return renderTable(THROUGHPUT_HEADERS, rows, ['left', ...THROUGHPUT_HEADERS.slice(1).map(() => 'right' as const)]);
}

const ratioText = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');

/** Per prompt length: a row per configuration, a column per parallel level, "aggregate tok/s (x stock)" in each cell. */
export function scalingTables(points: readonly ScalingPoint[]): string[] {
  const prompts = [...new Set(points.map((p) => p.promptTokens))];
  const levels = [...new Set(points.map((p) => p.parallel))].sort((a, b) => a - b);
  const configs = [...new Set(points.map((p) => p.config))];
  return prompts.map((prompt) => {
    const rows = configs.map((config) => [
      config,
      ...levels.map((parallel) => {
        const p = points.find((x) => x.config === config && x.promptTokens === prompt && x.parallel === parallel);
        if (!p) return '';
        return config === 'stock' || p.vsStock === undefined ? num(p.aggregateDecodeTps) : `${num(p.aggregateDecodeTps)} (${ratioText(p.vsStock)})`;
      }),
    ]);
    return [
      `Scaling, prompt ${prompt}: aggregate decode tok/s per parallel level (x stock at the same level, same run)`,
      renderTable(['config', ...levels.map((l) => `par ${l}`)], rows, ['left', ...levels.map(() => 'right' as const)]),
    ].join('\n');
  });
}

/** Each engine feature on vs off, side by side: the chain and its variant at every point both measured. */
export function onOffTable(points: readonly OnOffPoint[]): string {
  const pair = (o: OnOff, digits = 1) => `${num(o.on, digits)} / ${num(o.off, digits)}`;
  return [
    'Engine features on / off (the chain vs its variant with the feature off, same run; x = on / off)',
    renderTable(
      ['feature', 'on / off', 'prompt', 'par', 'agg decode tok/s', 'x', 'per-req decode tok/s', 'x', 'prefill tok/s', 'x', 'TTFT p95 ms'],
      points.map((p) => [
        p.feature,
        `${p.on} / ${p.off}`,
        String(p.promptTokens),
        String(p.parallel),
        pair(p.aggregateDecodeTps),
        ratioText(p.aggregateDecodeTps.ratio),
        pair(p.perRequestDecodeTps),
        ratioText(p.perRequestDecodeTps.ratio),
        pair(p.prefillTps),
        ratioText(p.prefillTps.ratio),
        pair(p.ttftP95Ms, 0),
      ]),
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  ].join('\n');
}

export function nodesTable(configs: readonly ConfigResult[]): string {
  const rows = configs
    .filter((c) => !c.error)
    .map((c) => [
      c.id,
      c.nodes.map((n) => `${n.layers[0]}:${n.layers[1]}`).join(' '),
      c.nodes.map((n) => secs(n.loadMs)).join(' '),
      c.nodes.map((n) => formatBytes(n.peakRssBytes)).join(' '),
      c.networkMeasured === false ? NOT_MEASURED : c.links.length ? formatBytes(c.startBytes) : '-',
      c.links.length ? num(Math.max(...c.links.map((l) => l.meanHeldMs)), 2) : '-',
    ]);
  return renderTable(['config', 'layers per node', 'load per node', 'peak RSS per node', 'net at start', 'link ms'], rows);
}

/** `--fault`: per chain measured, the pause a resume after a lost rank costs, over its trials. */
export function resumeTable(configs: readonly ConfigResult[]): string {
  const ms = (x: number) => num(x, 0);
  const rows = configs.flatMap((c) => {
    const r = c.resume;
    if (!r) return [];
    const t = r.trials[0];
    return [[
      c.id,
      t ? `rank ${t.rank} at token ${t.faultAtToken}` : '-',
      String(r.trials.length),
      `${r.completed}/${r.trials.length}`,
      ms(r.pauseMs.median),
      ms(r.pauseMs.max),
      ms(r.restartMs.median),
      ms(r.restartMs.max),
      ms(r.rejoinMs.median),
      ms(r.rejoinMs.max),
    ]];
  });
  return [
    'Resume after a lost rank (--fault): a worker SIGKILLed mid-stream and started again; the head resumes the request',
    renderTable(
      ['config', 'fault', 'trials', 'completed', 'pause p50 ms', 'pause max ms', 'restart p50 ms', 'restart max ms', 'rejoin p50 ms', 'rejoin max ms'],
      rows,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '  pause: SIGKILL -> the next token the client received (the rank\'s restart, the chain reconnecting, the re-run of the request\'s tokens)',
    '  restart: SIGKILL -> the restarted rank ready again; rejoin: SIGKILL -> the head\'s /health says the chain is whole again (restart + the head\'s reconnect, which retries with a backoff);',
    '  pause - rejoin: the re-run of the request\'s tokens and the next decode; completed: streams that got every token without an error',
  ].join('\n');
}

export function renderReport(r: BenchReport): string {
  const s = r.settings;
  const out = [
    `Model: ${r.model.path} (${r.model.arch}, ${r.model.layers} layers, ${formatBytes(r.model.fileBytes)})`,
    `Nodes: ${s.nodes.join(', ')}; threads ${s.threads}${s.taskset ? ', pinned (taskset)' : ''}; ${r.configs.some((c) => c.networkMeasured === false) ? 'real links' : `link latency ${s.linkLatencyMs} ms`}; ` +
      `gen ${s.genTokens} tokens; ${s.repeat} repeat(s); ctx ${s.ctx}; ${r.machine.cores} cores (${r.machine.cpu})`,
    '',
    throughputTable(r.configs),
    ...THROUGHPUT_LEGEND.map((l) => `  ${l}`),
  ];
  if (r.scaling.length) out.push('', ...scalingTables(r.scaling).join('\n\n').split('\n'));
  if (r.onOff.length) out.push('', onOffTable(r.onOff));
  out.push('', nodesTable(r.configs));
  if (r.configs.some((c) => c.resume)) out.push('', resumeTable(r.configs));
  const failedTrials = r.configs.flatMap((c) => (c.resume?.trials ?? []).flatMap((t, i) => (t.error ? [`${c.id} fault ${i + 1}: ${t.error}`] : [])));
  if (failedTrials.length) out.push(...failedTrials);
  if (r.configs.some((c) => c.networkMeasured === false)) {
    out.push('', `${NOT_MEASURED}: network bytes not measured; links between remote nodes are real and no relay counts them`);
  }
  const failed = r.configs.filter((c) => c.error);
  if (failed.length) out.push('', ...failed.map((c) => `${c.id} failed: ${c.error}`));
  if (r.hopOverhead.length) {
    out.push(
      '',
      renderTable(
        ['config', 'prompt', 'par', 'ms/tok', 'limit ms/tok', 'hops', 'link ms', 'overhead/hop ms'],
        r.hopOverhead.map((h) => [
          h.config,
          String(h.promptTokens),
          String(h.parallel),
          num(h.msPerToken, 2),
          num(h.limitMsPerToken, 2),
          String(h.hops),
          num(h.linkLatencyMs, 2),
          num(h.overheadPerHopMs, 3),
        ]),
        ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      ),
    );
  }
  if (r.findings.length) {
    out.push(
      '',
      renderTable(
        ['finding', 'value', 'target', '', 'detail'],
        r.findings.map((f) => [
          f.name,
          f.value === undefined ? '-' : f.unit === 'B' ? formatBytes(f.value) : `${num(f.value, 2)}${f.unit === 'x' ? 'x' : ` ${f.unit}`}`,
          f.target === undefined ? '' : `>= ${f.target}x`,
          f.pass === undefined ? '' : f.pass ? 'ok' : 'MISSED',
          f.detail,
        ]),
      ),
    );
  }
  return `${out.join('\n')}\n`;
}
