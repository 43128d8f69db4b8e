// bench: a configuration measured in rounds is pooled into one result.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConfigResult, Sample } from '../../src/bench/bench-result.js';
import { summarize } from '../../src/bench/measurement.js';
import { mergeRounds } from '../../src/bench/merge-rounds.js';

const sample = (decodeTps: number): Sample => ({
  requestTtftMs: [50],
  prefillTps: 1000,
  aggregateDecodeTps: decodeTps,
  decodeWindowMs: (8 / decodeTps) * 1000,
  decodeWindowTokens: 8,
  requestDecodeTps: [decodeTps],
  promptTokens: 64,
  generatedTokens: 9,
  prefillBytes: 640,
  decodeBytes: 800,
});

function round(decode: number, loadMs: number, rss: number, o: Partial<ConfigResult> = {}): ConfigResult {
  return {
    id: 'chain-2',
    kind: 'chain',
    description: 'chain',
    ranks: 2,
    pipeline: true,
    hops: 2,
    nodes: [
      { rank: 0, node: 'local0', role: 'head', layers: [0, 2], loadMs, peakRssBytes: rss },
      { rank: 1, node: 'local1', role: 'worker', layers: [2, 4], loadMs: loadMs / 2, peakRssBytes: rss / 2 },
    ],
    links: [{ name: '0->1', startBytes: 100, totalBytes: 1000, meanHeldMs: 1 }],
    networkMeasured: true,
    loadMs,
    startBytes: 100,
    measurements: [summarize(64, 1, [sample(decode)]), summarize(128, 1, [sample(decode / 2)])],
    ...o,
  };
}

describe('mergeRounds', () => {
  it('pools the samples of every round per point, takes the median load time and the largest peak RSS', () => {
    const m = mergeRounds([round(10, 300, 1000), round(30, 100, 3000), round(20, 200, 2000)]);
    assert.deepEqual(m.measurements.map((x) => [x.promptTokens, x.aggregateDecodeTps.median, x.aggregateDecodeTps.min, x.aggregateDecodeTps.max, x.samples.length]), [
      [64, 20, 10, 30, 3],
      [128, 10, 5, 15, 3],
    ]);
    assert.equal(m.loadMs, 200);
    assert.deepEqual(m.nodes.map((n) => [n.loadMs, n.peakRssBytes]), [[200, 3000], [100, 1500]]);
    assert.deepEqual(m.links, [{ name: '0->1', startBytes: 100, totalBytes: 3000, meanHeldMs: 1 }]);
    assert.equal(m.measurements[0]!.decodeBytesPerToken, 100); // 3 x 800 bytes over 3 x 8 tokens after the first
  });
  it('a round that failed makes the configuration failed', () => {
    const failed = round(0, Number.NaN, 0, { error: 'rank 1 exited', measurements: [], nodes: [] });
    assert.equal(mergeRounds([round(10, 300, 1000), failed]).error, 'rank 1 exited');
  });
  it('one round is returned as it is', () => {
    const one = round(10, 300, 1000);
    assert.equal(mergeRounds([one]), one);
  });
});
