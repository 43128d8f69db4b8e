// bench: the terminal table and the SVG chart rendered from a report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BenchReport, ConfigResult } from '../../src/bench/bench-result.js';
import type { RelayEvent } from '../../src/events/events.js';
import { formatPlain } from '../../src/events/plain-format.js';
import { summarize } from '../../src/bench/measurement.js';
import { formatBytes, renderReport } from '../../src/bench/report-table.js';
import { escapeXml, niceMax, renderSvgChart } from '../../src/bench/svg-chart.js';
import { renderTable } from '../../src/bench/text-table.js';

const sample = (decodeTps: number, prefillTps: number) => ({
  requestTtftMs: [80],
  prefillTps,
  aggregateDecodeTps: decodeTps,
  decodeWindowMs: (7 / decodeTps) * 1000,
  decodeWindowTokens: 7,
  requestDecodeTps: [decodeTps],
  promptTokens: 64,
  generatedTokens: 8,
  prefillBytes: 640,
  decodeBytes: 700,
});

const cfg = (id: string, kind: ConfigResult['kind'], decode: number[], o: Partial<ConfigResult> = {}): ConfigResult => ({
  id,
  kind,
  description: id,
  ranks: 2,
  pipeline: true,
  hops: kind === 'stock' ? 0 : 2,
  nodes: [
    { rank: 0, node: 'local0', role: 'head', layers: [0, 3], loadMs: 1234, peakRssBytes: 50e6 },
    { rank: 1, node: 'local1', role: 'worker', layers: [3, 6], loadMs: 234, peakRssBytes: 20e6 },
  ],
  links: [{ name: '0->1', startBytes: 1200, totalBytes: 5000, meanHeldMs: 1.1 }],
  networkMeasured: true,
  loadMs: 1234,
  startBytes: 1200,
  measurements: [summarize(64, 1, decode.map((d) => sample(d, 10 * d)))],
  ...o,
});

const report = (configs: ConfigResult[]): BenchReport => ({
  version: 3,
  startedAt: '2026-01-01T00:00:00.000Z',
  model: { path: '/models/a<b>.gguf', layers: 6, fileBytes: 37e6, arch: 'llama' },
  machine: { cores: 2, cpu: 'test cpu' },
  settings: { nodes: ['local0', 'local1'], promptTokens: [64], genTokens: 8, parallel: [1], repeat: 3, linkLatencyMs: 1, threads: 1, taskset: false, ctx: 256 },
  configs,
  scaling: [],
  onOff: [],
  hopOverhead: [{ config: 'chain-2', promptTokens: 64, parallel: 1, msPerToken: 10, limitMsPerToken: 8, hops: 2, linkLatencyMs: 1, overheadPerHopMs: 1 }],
  findings: [{ name: 'chain-2 decode vs stock', value: 0.8, target: 0.9, pass: false, unit: 'x', detail: 'decode 80 vs 100' }],
});

describe('renderTable', () => {
  it('pads columns and right-aligns numbers', () => {
    const t = renderTable(['a', 'num'], [['xx', '1'], ['y', '100']], ['left', 'right']).split('\n');
    assert.deepEqual(t, ['a   num', '--  ---', 'xx    1', 'y   100']);
  });
});

describe('renderReport', () => {
  it('shows every configuration with its spread, nodes, hop overhead and targets', () => {
    const text = renderReport(
      report([cfg('stock', 'stock', [100, 90, 110]), cfg('chain-2', 'chain', [80]), { ...cfg('rpc-2', 'rpc', []), measurements: [], nodes: [], error: 'rpc server crashed' }]),
    );
    // TTFT p50, p95; prefill; aggregate and per-request decode (one request at a time: the same); ms/tok
    assert.match(text, /stock\s+64\s+1\s+80\s+80\s+1000\.0 \(900\.0-1100\.0\)\s+100\.0 \(90\.0-110\.0\)\s+100\.0 \(90\.0-110\.0\)\s+10\.00/);
    assert.match(text, /chain-2\s+0:3 3:6\s+1\.23s 0\.23s\s+50\.00 MB 20\.00 MB\s+1\.2 kB\s+1\.10/);
    assert.match(text, /rpc-2\s+-\s+-\s+failed/);
    assert.match(text, /rpc-2 failed: rpc server crashed/);
    assert.match(text, /overhead\/hop ms/);
    assert.match(text, /chain-2 decode vs stock\s+0\.80x\s+>= 0\.9x\s+MISSED/);
  });
  it('says network bytes were not measured on real links, never 0', () => {
    const real = { ...cfg('chain-2', 'chain', [80]), networkMeasured: false, links: [], startBytes: Number.NaN };
    const text = renderReport(report([cfg('stock', 'stock', [100]), real]));
    assert.match(text, /^chain-2\s+64\s+1\s.*\sn\/m\s+n\/m$/m);
    assert.match(text, /^chain-2\s+0:3 3:6\s.*\sn\/m\s+/m);
    assert.match(text, /n\/m: network bytes not measured/);
    assert.match(text, /real links/);
    assert.match(renderSvgChart(report([real])), /real links \(network bytes not measured\)/);
    assert.doesNotMatch(renderReport(report([cfg('chain-2', 'chain', [80])])), /n\/m/);
  });
  it('formats bytes', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1500), '1.5 kB');
    assert.equal(formatBytes(2.5e6), '2.50 MB');
    assert.equal(formatBytes(Number.NaN), '-');
  });
});

describe('renderSvgChart', () => {
  it('draws one decode and one prefill bar per configuration, escaped, well formed', () => {
    const svg = renderSvgChart(report([cfg('stock', 'stock', [100]), cfg('chain-2', 'chain', [80, 70, 90]), { ...cfg('chain-2-nopipe', 'chain', [50]), pipeline: false }]));
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 2 * 3);
    assert.match(svg, /decode tokens\/s/);
    assert.match(svg, /prefill tokens\/s/);
    assert.match(svg, /a&lt;b&gt;\.gguf/);
    assert.ok(!svg.includes('NaN'));
    assert.equal((svg.match(/<line [^>]*stroke="#000"/g) ?? []).length, 2); // whiskers only where repeats spread
    // Every opened element is closed or self-closing.
    const open = (svg.match(/<(text|svg)\b/g) ?? []).length;
    const close = (svg.match(/<\/(text|svg)>/g) ?? []).length;
    assert.equal(open, close);
  });
  it('draws every chain with an engine feature off in the variant colour, the chain itself in its own', () => {
    const variants = [
      { ...cfg('chain-2-nopipe', 'chain', [50]), pipeline: false },
      { ...cfg('chain-2-noenc', 'chain', [50]), encrypt: false },
      { ...cfg('chain-2-nomb', 'chain', [50]), microbatch: false },
      { ...cfg('chain-2-nogroups', 'chain', [50]), groups: 1 },
    ];
    for (const v of variants) {
      const svg = renderSvgChart(report([cfg('chain-2', 'chain', [80]), v]));
      assert.equal((svg.match(/fill="#9ecae1"/g) ?? []).length, 2, v.id); // its decode and prefill bars
      assert.equal((svg.match(/fill="#1f77b4"/g) ?? []).length, 2, v.id);
    }
  });
  it('picks nice axis maxima and escapes XML', () => {
    assert.deepEqual([0.3, 7, 13, 450, 1000].map(niceMax), [0.5, 10, 20, 500, 1000]);
    assert.equal(niceMax(0), 1);
    assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  });
});

describe('bench events on the one event stream', () => {
  const formatBenchEvent = (e: RelayEvent) => formatPlain(e) ?? '';
  it('has one line per kind', () => {
    assert.equal(formatBenchEvent({ kind: 'bench-process-ready', id: 'chain-2', label: 'chain-2 rank 1 on local1', loadMs: 1500 }), '[chain-2] chain-2 rank 1 on local1 ready in 1.50 s');
    assert.match(
      formatBenchEvent({ kind: 'bench-sample', id: 'stock', promptTokens: 64, parallel: 1, repeat: 0, sample: sample(100, 1000) }),
      /prompt 64 x1 #1: ttft max 80\.0 ms, prefill 1000\.0 tok\/s, decode 100\.0 tok\/s aggregate, 100\.0-100\.0 tok\/s per request$/,
    );
    assert.equal(formatBenchEvent({ kind: 'bench-config-failed', id: 'rpc-2', message: 'x' }), '[rpc-2] FAILED: x');
    assert.equal(formatBenchEvent({ kind: 'bench-config-start', id: 'chain-2', description: 'd', round: { index: 1, of: 3 } }), '[chain-2] d (round 2/3)');
  });
});
