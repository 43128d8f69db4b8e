// bench: statistics over repeats, per-token costs, hop overhead against the limit, and the targets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { effectiveLinkMs, findings, hopOverheads } from '../../src/bench/bench-analysis.js';
import type { ConfigResult, Sample } from '../../src/bench/bench-result.js';
import { summarize } from '../../src/bench/measurement.js';
import { tokensAfter } from '../../src/bench/stream-timing.js';
import { parseVmHwm } from '../../src/runtime/proc-status.js';
import { mean, median, percentile, spread } from '../../src/bench/stats.js';

// One request at a time: its own decode rate is the aggregate one.
const sample = (decodeTps: number, prefillTps = 1000, o: Partial<Sample> = {}): Sample => ({
  requestTtftMs: [50],
  prefillTps,
  aggregateDecodeTps: decodeTps,
  decodeWindowMs: (127 / decodeTps) * 1000,
  decodeWindowTokens: 127,
  requestDecodeTps: [decodeTps],
  promptTokens: 512,
  generatedTokens: 128,
  prefillBytes: 0,
  decodeBytes: 0,
  ...o,
});

function config(id: string, kind: ConfigResult['kind'], hops: number, decode: number[], prefill: number[] = [1000], o: Partial<ConfigResult> = {}): ConfigResult {
  const ranks = Number(/-(\d+)/.exec(id)?.[1] ?? 1);
  return {
    id,
    kind,
    description: id,
    ranks,
    pipeline: !id.endsWith('nopipe'),
    hops,
    nodes: [],
    links: [],
    networkMeasured: true,
    loadMs: 1000,
    startBytes: 0,
    measurements: [
      summarize(512, 1, decode.map((d, i) => sample(d, prefill[i] ?? prefill[0]))),
      summarize(2048, 1, decode.map((d, i) => sample(d, prefill[i] ?? prefill[0]))),
    ],
    ...o,
  };
}

describe('stats', () => {
  it('median, spread and mean', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.deepEqual(spread([5, 1, 3, Number.NaN]), { median: 3, min: 1, max: 5, n: 3 });
    assert.equal(spread([]).n, 0);
    assert.equal(mean([1, 2, 3, 6]), 3);
  });
  it('percentiles by linear interpolation between the closest ranks', () => {
    const v = [60, 10, 30, 20, 50, 40];
    assert.equal(percentile(v, 50), 35);
    assert.equal(percentile(v, 50), median(v));
    assert.equal(percentile(v, 95), 57.5); // rank 0.95 x 5 = 4.75: 50 + 0.75 x (60 - 50)
    assert.equal(percentile(v, 0), 10);
    assert.equal(percentile(v, 100), 60);
    assert.equal(percentile([7], 95), 7);
    assert.equal(percentile([1, 2, Number.NaN], 100), 2);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.ok(Number.isNaN(percentile([1], 101)));
  });
  it('summarizes repeats: aggregate and per-request decode apart, TTFT percentiles over every request, bytes per token after the first', () => {
    const bytes = { decodeBytes: 2540, generatedTokens: 256, prefillBytes: 1024, promptTokens: 1024 };
    const m = summarize(512, 2, [
      sample(40, 900, { ...bytes, requestDecodeTps: [20, 22], requestTtftMs: [10, 30] }),
      sample(50, 1100, { ...bytes, requestDecodeTps: [25, 26], requestTtftMs: [20, 40] }),
      sample(60, 1000, { ...bytes, requestDecodeTps: [30, Number.NaN], requestTtftMs: [50, 60] }),
    ]);
    assert.deepEqual(m.aggregateDecodeTps, { median: 50, min: 40, max: 60, n: 3 });
    // each repeat's median over its requests (a request without a rate is left out), then over repeats
    assert.deepEqual(m.perRequestDecodeTps, { median: 25.5, min: 21, max: 30, n: 3 });
    assert.equal(m.decodeMsPerToken, 1000 / 25.5);
    assert.equal(m.ttftP50Ms, 35);
    assert.equal(m.ttftP95Ms, 57.5);
    assert.equal(m.decodeBytesPerToken, 10); // 2540 bytes over 254 tokens after the two first tokens
    assert.equal(m.prefillBytesPerPromptToken, 1);
  });
  it('charges decode bytes to the tokens after the first-token reading where a sample says which; none after it: not measured', () => {
    const late = { decodeBytes: 900, generatedTokens: 64, prefillBytes: 100, promptTokens: 64 };
    assert.equal(summarize(32, 2, [sample(40, 900, { ...late, decodeBytesTokens: 45 }), sample(40, 900, { ...late, decodeBytesTokens: 45 })]).decodeBytesPerToken, 20);
    const over = summarize(32, 1, [sample(40, 900, { ...late, decodeBytes: 0, decodeBytesTokens: 0 })]);
    assert.ok(Number.isNaN(over.decodeBytesPerToken), 'decode ended before the counters were read: NaN, not 0');
  });
  it('counts the tokens streams received after a moment', () => {
    const traces = [
      { arrivals: [{ at: 10, tokens: 1 }, { at: 20, tokens: 2 }, { at: 30, tokens: 4 }] },
      { arrivals: [{ at: 25, tokens: 1 }, { at: 35, tokens: 3 }] },
    ];
    assert.equal(tokensAfter(traces, 20), 2 + 3);
    assert.equal(tokensAfter(traces, 0), 4 + 3);
    assert.equal(tokensAfter(traces, Number.POSITIVE_INFINITY), 0);
  });
  it('reads VmHWM', () => {
    assert.equal(parseVmHwm('Name:\tllama-server\nVmPeak:\t  9 kB\nVmHWM:\t  123456 kB\nVmRSS: 1 kB\n'), 123456 * 1024);
    assert.equal(parseVmHwm('Name: x\n'), undefined);
  });
});

describe('hop overhead', () => {
  const stock = config('stock', 'stock', 0, [50]); // 20 ms/token
  it('measures the distance to stock ms/token + hops x link latency', () => {
    const chain = config('chain-3', 'chain', 3, [40], [1000], { links: [0, 1, 2].map((i) => ({ name: `${i}`, startBytes: 0, totalBytes: 0, meanHeldMs: 1 })) });
    const [h] = hopOverheads([stock, chain], 1);
    assert.equal(h!.limitMsPerToken, 23);
    assert.equal(h!.msPerToken, 25);
    assert.ok(Math.abs(h!.overheadPerHopMs - 2 / 3) < 1e-9);
  });
  it('uses the relays measured hold time, and none at latency 0', () => {
    const c = config('chain-2', 'chain', 2, [40], [1000], { links: [{ name: 'a', startBytes: 0, totalBytes: 0, meanHeldMs: 1.2 }, { name: 'b', startBytes: 0, totalBytes: 0, meanHeldMs: 1.4 }] });
    assert.ok(Math.abs(effectiveLinkMs(c, 1) - 1.3) < 1e-9);
    assert.equal(effectiveLinkMs(c, 0), 0);
  });
  it('skips failed configurations and runs without stock', () => {
    assert.deepEqual(hopOverheads([config('chain-2', 'chain', 2, [40])], 0), []);
    const failed = { ...config('chain-2', 'chain', 2, [40]), error: 'boom', measurements: [] };
    assert.deepEqual(hopOverheads([stock, failed], 0), []);
  });
});

describe('findings', () => {
  const settings = { promptTokens: [512, 2048], parallel: [1], linkLatencyMs: 1 };
  it('evaluates the targets on the largest chain', () => {
    const f = findings(
      [
        config('stock', 'stock', 0, [50]),
        config('chain-3', 'chain', 3, [46], [2000]),
        config('chain-3-nopipe', 'chain', 3, [46], [1000]),
        config('rpc-3', 'rpc', 4, [20], [500], { loadMs: 3000, startBytes: 1e6 }),
      ],
      settings,
    );
    const by = (prefix: string) => f.find((x) => x.name.startsWith(prefix))!;
    assert.equal(by('chain-3 decode vs stock').value, 46 / 50);
    assert.equal(by('chain-3 decode vs stock').target, undefined, 'the stock target is for loopback without emulated latency');
    const loopback = (chain: number) => findings([config('stock', 'stock', 0, [50]), config('chain-3', 'chain', 3, [chain])], { ...settings, linkLatencyMs: 0 });
    assert.equal(loopback(48).find((x) => x.name === 'chain-3 decode vs stock')!.pass, true);
    assert.equal(loopback(46).find((x) => x.name === 'chain-3 decode vs stock')!.pass, false, 'parallel 1: no regression below 0.95x stock');
    assert.equal(by('chain-3 decode vs rpc-3').value, 2.3);
    assert.equal(by('chain-3 decode vs rpc-3').target, 1.5);
    assert.equal(by('chain-3 prefill').value, 2);
    assert.equal(by('load time').value, 3);
    assert.match(by('network bytes').detail, /1\.00 MB/);
    assert.ok(by('chain-3 overhead per hop'));
    // limit = stock 1000/50 ms + 3 hops x 1 ms = 23 ms; rpc at 20 tok/s = 50 ms; chain at 46 tok/s = 21.7 ms
    assert.equal(by('chain-3 vs rpc-3 decode ceiling').value, 50 / 23);
    assert.match(by('chain-3 vs rpc-3 decode ceiling').detail, /reaches 106% of its limit/);
  });
  it('says what was not measured and sets no RPC target without latency', () => {
    const f = findings([config('stock', 'stock', 0, [50]), config('chain-2', 'chain', 2, [30])], { ...settings, linkLatencyMs: 0 });
    const rpc = f.find((x) => x.name.includes('rpc'))!;
    assert.equal(rpc.value, undefined);
    assert.equal(rpc.target, undefined);
    assert.equal(f.find((x) => x.name.includes('decode vs stock'))!.pass, false);
  });
});
