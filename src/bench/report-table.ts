// The terminal view of a BenchReport: throughput per configuration, nodes (load, RSS, bytes), targets. Pure.
import type { BenchReport, ConfigResult } from './bench-result.js';
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
/** Bytes of a configuration: "n/m" where its links are real and carry no relay. */
const netBytes = (c: ConfigResult, b: number) => (c.networkMeasured === false ? NOT_MEASURED : formatBytes(b));

export function throughputTable(configs: readonly ConfigResult[]): string {
  const rows: string[][] = [];
  for (const c of configs) {
    if (c.error) {
      rows.push([c.id, '-', '-', 'failed', '', '', '', '', '']);
      continue;
    }
    for (const m of c.measurements) {
      rows.push([
        c.id,
        String(m.promptTokens),
        String(m.parallel),
        withSpread(m.ttftMs, 0),
        withSpread(m.prefillTps),
        withSpread(m.decodeTps),
        num(m.decodeMsPerToken, 2),
        netBytes(c, m.prefillBytesPerPromptToken),
        netBytes(c, m.decodeBytesPerToken),
      ]);
    }
  }
  return renderTable(
    ['config', 'prompt', 'par', 'ttft ms', 'prefill tok/s', 'decode tok/s', 'ms/tok', 'net B/prompt tok', 'net B/gen tok'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
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

export function renderReport(r: BenchReport): string {
  const s = r.settings;
  const out = [
    `Model: ${r.model.path} (${r.model.arch}, ${r.model.layers} layers, ${formatBytes(r.model.fileBytes)})`,
    `Nodes: ${s.nodes.join(', ')}; threads ${s.threads}${s.taskset ? ', pinned (taskset)' : ''}; ${r.configs.some((c) => c.networkMeasured === false) ? 'real links' : `link latency ${s.linkLatencyMs} ms`}; ` +
      `gen ${s.genTokens} tokens; ${s.repeat} repeat(s); ctx ${s.ctx}; ${r.machine.cores} cores (${r.machine.cpu})`,
    '',
    throughputTable(r.configs),
    '',
    nodesTable(r.configs),
  ];
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
