// A hand-written SVG bar chart of aggregate decode and prefill tokens/s per configuration (median bar, min-max whisker). Pure.
import type { BenchReport, ConfigResult } from './bench-result.js';
import type { Spread } from './stats.js';
import { isChainVariant } from './config-id.js';

interface Row {
  readonly label: string;
  readonly kind: string;
  readonly decode: Spread;
  readonly prefill: Spread;
}

const COLORS: Record<string, string> = { stock: '#7f7f7f', chain: '#1f77b4', nopipe: '#9ecae1', rpc: '#ff7f0e' };

export function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[ch]!);
}

function rowsOf(configs: readonly ConfigResult[]): Row[] {
  const keys = new Set(configs.flatMap((c) => c.measurements.map((m) => `${m.promptTokens}/${m.parallel}`)));
  const multi = keys.size > 1;
  return configs.flatMap((c) =>
    c.measurements.map((m) => ({
      label: multi ? `${c.id}  p${m.promptTokens} x${m.parallel}` : c.id,
      // A chain with an engine feature off is drawn as a variant.
      kind: c.kind === 'chain' && isChainVariant(c.id) ? 'nopipe' : c.kind,
      decode: m.aggregateDecodeTps,
      prefill: m.prefillTps,
    })),
  );
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at or above `x`. */
export function niceMax(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  return ([1, 2, 5, 10].find((m) => m * p >= x) ?? 10) * p;
}

export function renderSvgChart(r: BenchReport): string {
  const rows = rowsOf(r.configs);
  const rowH = 20;
  const top = 64;
  const labelW = 190;
  const barW = 260;
  const panelW = labelW + barW + 70;
  const width = panelW * 2 + 20;
  const height = top + Math.max(1, rows.length) * rowH + 40;
  const realLinks = r.configs.some((c) => c.networkMeasured === false);
  const links = realLinks ? 'real links (network bytes not measured)' : `link latency ${r.settings.linkLatencyMs} ms`;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escapeXml(`llama-relay bench: ${r.model.path.split('/').pop() ?? ''}`)}</text>`,
    `<text x="10" y="38" fill="#555">${escapeXml(
      `${r.settings.nodes.length} node(s), ${r.settings.threads} thread(s)${r.settings.taskset ? ', taskset' : ''}, ${links}, gen ${r.settings.genTokens}`,
    )}</text>`,
  ];
  const panel = (x0: number, title: string, pick: (row: Row) => Spread) => {
    const max = niceMax(Math.max(0, ...rows.map((row) => (Number.isFinite(pick(row).max) ? pick(row).max : 0))));
    const sx = (v: number) => x0 + labelW + (Math.max(0, v) / max) * barW;
    parts.push(`<text x="${x0 + labelW}" y="${top - 10}" font-weight="bold">${escapeXml(title)}</text>`);
    for (const f of [0, 0.5, 1]) {
      const x = sx(max * f);
      parts.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${top + rows.length * rowH}" stroke="#ddd"/>`);
      parts.push(`<text x="${x}" y="${top + rows.length * rowH + 14}" text-anchor="middle" fill="#555">${max * f}</text>`);
    }
    rows.forEach((row, i) => {
      const y = top + i * rowH;
      const s = pick(row);
      parts.push(`<text x="${x0 + labelW - 6}" y="${y + 14}" text-anchor="end">${escapeXml(row.label)}</text>`);
      if (!Number.isFinite(s.median)) return;
      parts.push(`<rect x="${x0 + labelW}" y="${y + 3}" width="${(sx(s.median) - x0 - labelW).toFixed(1)}" height="${rowH - 6}" fill="${COLORS[row.kind] ?? '#333'}"/>`);
      if (s.n > 1) parts.push(`<line x1="${sx(s.min).toFixed(1)}" y1="${y + rowH / 2}" x2="${sx(s.max).toFixed(1)}" y2="${y + rowH / 2}" stroke="#000"/>`);
      parts.push(`<text x="${(sx(Math.max(s.median, s.max)) + 4).toFixed(1)}" y="${y + 14}">${s.median.toFixed(1)}</text>`);
    });
  };
  panel(0, 'aggregate decode tokens/s', (row) => row.decode);
  panel(panelW + 20, 'prefill tokens/s', (row) => row.prefill);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
