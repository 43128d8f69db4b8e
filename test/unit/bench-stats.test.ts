// bench: statistics over repeats, per-token costs, hop overhead against the limit, and the targets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { effectiveLinkMs, findings, hopOverheads } from '../../src/bench/bench-analysis.js';
import type { ConfigResult, Sample } from '../../src/bench/bench-result.js';
import { summarize } from '../../src/bench/measurement.js';
import { parseVmHwm } from '../../src/runtime/proc-status.js';
import { mean, median, spread } from '../../src/bench/stats.js';

const sample = (decodeTps: number, prefillTps = 1000, o: Partial<Sample> = {}): Sample => ({
  ttftMs: 50,
  prefillTps,
  decodeTps,
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
  it('summarizes repeats: ms/token per stream, bytes per token after the first', () => {
    const m = summarize(512, 2, [
      sample(40, 900, { decodeBytes: 2540, generatedTokens: 256, prefillBytes: 1024, promptTokens: 1024 }),
      sample(50, 1100, { decodeBytes: 2540, generatedTokens: 256, prefillBytes: 1024, promptTokens: 1024 }),
      sample(60, 1000, { decodeBytes: 2540, generatedTokens: 256, prefillBytes: 1024, promptTokens: 1024 }),
    ]);
    assert.deepEqual(m.decodeTps, { median: 50, min: 40, max: 60, n: 3 });
    assert.equal(m.decodeMsPerToken, 40); // two streams sharing 50 tok/s: 25 tok/s each
    assert.equal(m.decodeBytesPerToken, 10); // 2540 bytes over 254 tokens after the two first tokens
    assert.equal(m.prefillBytesPerPromptToken, 1);
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
    const loopback = findings([config('stock', 'stock', 0, [50]), config('chain-3', 'chain', 3, [46])], { ...settings, linkLatencyMs: 0 });
    assert.equal(loopback.find((x) => x.name === 'chain-3 decode vs stock')!.pass, true);
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
