// bench for serving: decode rates from stream traces (per request and aggregate over the decode phase), the scaling
// table, engine features on/off and the targets under load, rendered as the report shows them.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { streamCompletion } from '../../src/bench/completion-client.js';
import { findings } from '../../src/bench/bench-analysis.js';
import type { BenchReport, ConfigResult, Sample } from '../../src/bench/bench-result.js';
import { summarize } from '../../src/bench/measurement.js';
import { onOffTable, renderReport, scalingTables, THROUGHPUT_HEADERS, THROUGHPUT_LEGEND } from '../../src/bench/report-table.js';
import { onOffPoints, scalingPoints } from '../../src/bench/serving-tables.js';
import { decodePhase, requestDecodeTps, type StreamTrace } from '../../src/bench/stream-timing.js';

/** A stream whose first token arrives at `first` ms and then one token every `step` ms, `n` tokens in all. */
const steady = (first: number, step: number, n: number): StreamTrace => ({
  arrivals: Array.from({ length: n }, (_, i) => ({ at: first + i * step, tokens: i + 1 })),
});

describe('stream timing', () => {
  it("a request's own decode rate: tokens after its first over its first-to-last-token time", () => {
    assert.equal(requestDecodeTps(steady(100, 10, 11)), 100); // 10 tokens in 100 ms
    // A frame held back for an incomplete character brings two tokens at once: counted by tokens, not frames.
    assert.equal(requestDecodeTps({ arrivals: [{ at: 0, tokens: 1 }, { at: 20, tokens: 3 }, { at: 40, tokens: 5 }] }), 100);
    assert.ok(Number.isNaN(requestDecodeTps(steady(5, 10, 1))), 'one token: nothing decoded after it');
    assert.ok(Number.isNaN(requestDecodeTps({ arrivals: [] })));
  });
  it('with one request the aggregate rate is its own rate', () => {
    const t = steady(250, 20, 9);
    assert.deepEqual(decodePhase([t]), { windowMs: 160, tokens: 8, tps: requestDecodeTps(t) });
  });
  it('aggregate: every token that arrives once all requests have their first, over that phase, no prefill inside', () => {
    // a: first token at 0, then every 10 ms (11 tokens to 100 ms); b: prefilled later, first token at 50, every 10 ms to 150.
    const a = steady(0, 10, 11);
    const b = steady(50, 10, 11);
    const p = decodePhase([a, b]);
    assert.equal(p.windowMs, 100); // 50 -> 150
    assert.equal(p.tokens, 5 + 10); // a: 6 by 50 ms, 11 at the end; b: 1 at 50, 11 at the end
    assert.equal(p.tps, 150);
    // Per request, both ran at 100 tok/s: the aggregate is what the server delivered to both together.
    assert.deepEqual([a, b].map(requestDecodeTps), [100, 100]);
  });
  it('no rate without tokens or with a stream that never started', () => {
    assert.ok(Number.isNaN(decodePhase([]).tps));
    assert.ok(Number.isNaN(decodePhase([steady(0, 10, 5), { arrivals: [] }]).tps));
    assert.ok(Number.isNaN(decodePhase([steady(0, 10, 1), steady(0, 10, 1)]).tps));
  });
});

describe("the timed client's trace", () => {
  const servers: Server[] = [];
  after(() => servers.forEach((x) => x.close()));
  /** A llama-server stand-in streaming these /completion frames, 5 ms apart. */
  async function serve(frames: object[]): Promise<number> {
    const srv = createServer(async (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const f of frames) {
        res.write(`data: ${JSON.stringify(f)}\n\n`);
        await new Promise((r) => setTimeout(r, 5));
      }
      res.end();
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return (srv.address() as AddressInfo).port;
  }
  const stop = (n: number) => ({ content: '', stop: true, timings: { prompt_n: 3, prompt_per_second: 30, predicted_n: n, predicted_per_second: 20 } });
  it("counts tokens by the server's own count: a held-back frame brings two, a frame without new tokens none", async () => {
    const port = await serve([{ content: 'a', tokens_predicted: 1 }, { content: 'bc', tokens_predicted: 3 }, { content: '', tokens_predicted: 3 }, { content: 'd', tokens_predicted: 4 }, stop(4)]);
    const r = await streamCompletion(port, { prompt: [1, 2, 3], nPredict: 4 });
    assert.deepEqual(r.trace.arrivals.map((a) => a.tokens), [1, 3, 4]);
    const at = r.trace.arrivals.map((a) => a.at);
    assert.ok(at.every((t, i) => i === 0 || t > at[i - 1]!), 'arrival times increase');
    assert.ok(r.trace.arrivals[0]!.at === r.firstTokenAt);
  });
  it('without a count, one token per frame; the final count comes from the timings', async () => {
    const port = await serve([{ content: 'a' }, { content: 'b' }, stop(3)]);
    const r = await streamCompletion(port, { prompt: [1], nPredict: 3 });
    assert.deepEqual(r.trace.arrivals.map((a) => a.tokens), [1, 2, 3]);
  });
});

const sample = (aggregate: number, perRequest: number[], ttft: number[], prefill = 1000): Sample => ({
  requestTtftMs: ttft,
  prefillTps: prefill,
  aggregateDecodeTps: aggregate,
  decodeWindowMs: 1000,
  decodeWindowTokens: aggregate,
  requestDecodeTps: perRequest,
  promptTokens: 64 * perRequest.length,
  generatedTokens: 16 * perRequest.length,
  prefillBytes: 0,
  decodeBytes: 0,
});

/** A configuration measured at prompt 64 and each parallel level: aggregate = rate(p), per request rate(p) / p. */
function config(id: string, rate: (parallel: number) => number, levels = [1, 4, 8], o: Partial<ConfigResult> = {}): ConfigResult {
  const ranks = Number(/-(\d+)/.exec(id)?.[1] ?? 1);
  return {
    id,
    kind: id === 'stock' ? 'stock' : id.startsWith('rpc') ? 'rpc' : 'chain',
    description: id,
    ranks,
    pipeline: true,
    ...(id.endsWith('-nomb') ? { microbatch: false } : {}),
    ...(id.endsWith('-nogroups') ? { groups: 1 } : {}),
    hops: id === 'stock' || ranks === 1 ? 0 : ranks,
    nodes: [],
    links: [],
    networkMeasured: true,
    loadMs: 1000,
    startBytes: 0,
    measurements: levels.map((p) =>
      summarize(64, p, [sample(rate(p), Array.from({ length: p }, () => rate(p) / p), Array.from({ length: p }, (_, i) => 100 * (i + 1)))]),
    ),
    ...o,
  };
}

const runOf = () => [
  config('stock', () => 60),
  config('chain-1', () => 58),
  config('chain-2', (p) => (p === 1 ? 57 : 100)),
  config('chain-2-nomb', (p) => (p === 1 ? 57 : 62)),
  config('chain-2-nogroups', (p) => (p === 1 ? 57 : 80)),
  config('rpc-2', () => 50),
];

describe('scaling table', () => {
  it('every configuration at every level, against stock at the same level', () => {
    const s = scalingPoints(runOf());
    const at = (config: string, parallel: number) => s.find((x) => x.config === config && x.parallel === parallel)!;
    assert.equal(s.length, 6 * 3);
    assert.deepEqual(at('chain-2', 8), { config: 'chain-2', promptTokens: 64, parallel: 8, aggregateDecodeTps: 100, vsStock: 100 / 60 });
    assert.equal(at('stock', 4).vsStock, 1);
    assert.equal(at('rpc-2', 1).vsStock, 50 / 60);
  });
  it('has no ratio without stock at that level, and leaves failed configurations out', () => {
    const s = scalingPoints([config('stock', () => 60, [1]), config('chain-2', () => 90, [1, 4]), { ...config('rpc-2', () => 1), error: 'boom', measurements: [] }]);
    assert.deepEqual(s.map((x) => [x.config, x.parallel, x.vsStock]), [['stock', 1, 1], ['chain-2', 1, 1.5], ['chain-2', 4, undefined]]);
  });
  it('renders one table per prompt length: a row per configuration, a column per level', () => {
    const [t, ...rest] = scalingTables(scalingPoints(runOf()));
    assert.equal(rest.length, 0);
    const lines = t!.split('\n');
    assert.match(lines[0]!, /^Scaling, prompt 64: aggregate decode tok\/s per parallel level \(x stock at the same level, same run\)$/);
    assert.match(lines[1]!, /^config\s+par 1\s+par 4\s+par 8$/);
    assert.match(t!, /^stock\s+60\.0\s+60\.0\s+60\.0$/m);
    assert.match(t!, /^chain-2\s+57\.0 \(0\.95x\)\s+100\.0 \(1\.67x\)\s+100\.0 \(1\.67x\)$/m);
    assert.match(t!, /^chain-2-nomb\s+57\.0 \(0\.95x\)\s+62\.0 \(1\.03x\)/m);
    assert.match(t!, /^chain-2-nogroups\s+57\.0 \(0\.95x\)\s+80\.0 \(1\.33x\)/m);
  });
});

describe('engine features on / off', () => {
  it('pairs each variant with its chain at every point both measured', () => {
    const o = onOffPoints(runOf());
    assert.deepEqual(o.map((x) => [x.feature, x.on, x.off, x.parallel]), [
      ['micro-batched decode', 'chain-2', 'chain-2-nomb', 1],
      ['micro-batched decode', 'chain-2', 'chain-2-nomb', 4],
      ['micro-batched decode', 'chain-2', 'chain-2-nomb', 8],
      ['slot groups', 'chain-2', 'chain-2-nogroups', 1],
      ['slot groups', 'chain-2', 'chain-2-nogroups', 4],
      ['slot groups', 'chain-2', 'chain-2-nogroups', 8],
    ]);
    assert.deepEqual(o[1]!.aggregateDecodeTps, { on: 100, off: 62, ratio: 100 / 62 });
    assert.deepEqual(o[1]!.perRequestDecodeTps, { on: 25, off: 15.5, ratio: 25 / 15.5 });
    assert.deepEqual(o[1]!.ttftP95Ms, { on: 385, off: 385, ratio: 1 });
  });
  it('nothing to pair without the chain, or when either failed', () => {
    assert.deepEqual(onOffPoints([config('chain-2-nomb', () => 1)]), []);
    assert.deepEqual(onOffPoints([config('chain-2', () => 1), { ...config('chain-2-nomb', () => 1), error: 'unknown flag', measurements: [] }]), []);
  });
  it('renders on and off side by side with their ratio', () => {
    const t = onOffTable(onOffPoints(runOf()));
    assert.match(t, /^feature\s+on \/ off\s+prompt\s+par\s+agg decode tok\/s\s+x\s+per-req decode tok\/s\s+x\s+prefill tok\/s\s+x\s+TTFT p95 ms$/m);
    assert.match(t, /^micro-batched decode\s+chain-2 \/ chain-2-nomb\s+64\s+4\s+100\.0 \/ 62\.0\s+1\.61x\s+25\.0 \/ 15\.5\s+1\.61x\s+1000\.0 \/ 1000\.0\s+1\.00x\s+385 \/ 385$/m);
    assert.match(t, /^slot groups\s+chain-2 \/ chain-2-nogroups\s+64\s+4\s+100\.0 \/ 80\.0\s+1\.25x\s/m);
  });
});

describe('targets under load', () => {
  it('the full chain against stock, RPC and micro-batching off at every level above 1, with the issue targets when pinned', () => {
    const f = findings(runOf(), { promptTokens: [64], parallel: [1, 4, 8], linkLatencyMs: 0, taskset: true });
    const by = (name: string) => f.find((x) => x.name === name)!;
    const p4 = by('chain-2 aggregate decode vs stock, parallel 4');
    assert.deepEqual([p4.value, p4.target, p4.pass], [100 / 60, 1.5, true]);
    assert.match(p4.detail, /aggregate decode 100\.0 vs 60\.0 tok\/s \(prompt 64, parallel 4\)/);
    assert.deepEqual([by('chain-2 aggregate decode vs rpc-2, parallel 8').value, by('chain-2 aggregate decode vs rpc-2, parallel 8').target], [2, 1.5]);
    const mb = by('chain-2 aggregate decode, micro-batching on vs off, parallel 8');
    assert.deepEqual([mb.value, mb.target, mb.pass], [100 / 62, 1.4, true]);
    for (const parallel of [4, 8]) {
      const g = by(`chain-2 aggregate decode, slot groups on vs off, parallel ${parallel}`);
      assert.deepEqual([g.value, g.target, g.pass], [100 / 80, undefined, undefined], 'no target: a measurement, not a goal');
      assert.match(g.detail, new RegExp(`aggregate decode 100\\.0 vs 80\\.0 tok/s \\(prompt 64, parallel ${parallel}\\)`));
    }
    assert.equal(f.some((x) => x.name.includes('parallel 1')), false, 'parallel 1 keeps its own findings');
    // The nomb and nogroups variants are never taken for the full chain.
    assert.equal(by('chain-2 decode vs stock').value, 57 / 60);
    for (const variant of ['nomb', 'nogroups']) {
      const smaller = findings([config('stock', () => 60), config('chain-2', () => 90), config(`chain-3-${variant}`, () => 10)], { promptTokens: [64], parallel: [1, 4], linkLatencyMs: 0 });
      assert.ok(smaller.length > 0 && smaller.every((x) => x.name.startsWith('chain-2 ') || !x.name.includes('chain-3')), `${variant}: ${smaller.map((x) => x.name).join('; ')}`);
    }
  });
  it('no target unpinned with 2 ranks; 1.0x at 4 requests with 3 ranks on loopback; nothing about configurations not run', () => {
    const two = findings(runOf(), { promptTokens: [64], parallel: [1, 4], linkLatencyMs: 0, taskset: false });
    assert.equal(two.find((x) => x.name === 'chain-2 aggregate decode vs stock, parallel 4')!.target, undefined);
    const three = findings([config('stock', () => 60), config('chain-3', () => 61), config('rpc-3', () => 59)], { promptTokens: [64], parallel: [1, 4, 8], linkLatencyMs: 1 });
    assert.equal(three.find((x) => x.name === 'chain-3 aggregate decode vs stock, parallel 4')!.target, 1.0);
    assert.equal(three.find((x) => x.name === 'chain-3 aggregate decode vs rpc-3, parallel 4')!.pass, true);
    assert.equal(three.find((x) => x.name === 'chain-3 aggregate decode vs stock, parallel 8')!.target, undefined);
    assert.equal(three.some((x) => x.name.includes('micro-batching') || x.name.includes('slot groups')), false);
  });
});

describe('the report', () => {
  const report = (configs: ConfigResult[]): BenchReport => ({
    version: 3,
    startedAt: '2026-01-01T00:00:00.000Z',
    model: { path: '/m.gguf', layers: 6, fileBytes: 1e6, arch: 'llama' },
    machine: { cores: 2, cpu: 'cpu' },
    settings: { nodes: ['local0', 'local1'], promptTokens: [64], genTokens: 16, parallel: [1, 4, 8], repeat: 1, linkLatencyMs: 0, threads: 1, taskset: true, ctx: 1024 },
    configs,
    hopOverhead: [],
    scaling: scalingPoints(configs),
    onOff: onOffPoints(configs),
    findings: [],
  });
  it('names aggregate and per-request decode apart, with TTFT p50 and p95, and defines every column under the table', () => {
    const text = renderReport(report(runOf()));
    const header = text.split('\n').find((l) => l.startsWith('config  '))!;
    for (const h of THROUGHPUT_HEADERS) assert.ok(header.includes(h), h);
    // chain-2 at 4 requests: TTFTs 100..400 ms, aggregate 100 tok/s, each request 25 tok/s (40 ms per token)
    assert.match(text, /^chain-2\s+64\s+4\s+250\s+385\s+1000\.0\s+100\.0\s+25\.0\s+40\.00\s/m);
    for (const column of ['TTFT p50/p95 ms', 'prefill tok/s', 'agg decode tok/s', 'per-req decode tok/s', 'ms/tok']) {
      assert.ok(THROUGHPUT_LEGEND.some((l) => l.startsWith(`${column}: `)), `legend defines ${column}`);
      assert.ok(text.includes(`  ${column}: `), `report prints the legend of ${column}`);
    }
    assert.match(text, /Scaling, prompt 64/);
    assert.match(text, /Engine features on \/ off/);
  });
  it('leaves the serving tables out when there is nothing to show', () => {
    const text = renderReport(report([config('chain-2', () => 1)]));
    assert.doesNotMatch(text, /Engine features on \/ off/);
  });
});
