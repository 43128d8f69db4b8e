// The prediction's parts beyond compute, table-style: each link's own latency, a CPU quota's bound, prefill; what a
// calibration run records for them; link latency timed by the node-side script (a real bash against a real listener);
// a cgroup's CPU quota; bench's predicted-vs-measured rows; the plain line of the decode-vs-predicted event.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { predictChains } from '../../src/bench/chain-prediction.js';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { formatPlain } from '../../src/events/plain-format.js';
import { MB, planModel as model, planRuntime as rt, spans } from '../helpers/plan-model.js';
import { chainLinkSeconds, lookupLink, mergeLinks, nodeSpeedOf, recordsFromChainStats, type SpeedRecord } from '../../src/plan/speed-cache.js';
import { predictDecode, prefillSeconds, type NodeSpeed } from '../../src/plan/speed-model.js';
import { planOnSpeed } from '../../src/plan/speed-planner.js';
import { linkArgv, parseLinkProbe } from '../../src/provision/link-latency.js';
import { parseCpuQuota, parseDevicesProbe } from '../../src/provision/node-devices.js';
import { measureLink } from '../../src/provision/probe-links.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
// 1 ns a byte: a 100 MB layer takes 100 ms; the 400 MB output 400 ms.
const FAST: NodeSpeed = { secondsPerByte: 1e-9 };

describe('prediction: links, CPU quota, prefill', () => {
  it('table: each link counts with its own latency; a quota bounds the token time; the planner weighs both', () => {
    const info = model();
    const rows: { what: string; speeds: NodeSpeed[]; links: number | number[]; split?: string; tokenS: number; plan?: string; bound?: number }[] = [
      // 10 + 10 layers: 0.4 + 1.0 + 1.0 compute; links 1 ms out, 20 ms back.
      { what: 'two links, two latencies', speeds: [FAST, FAST], links: [0.001, 0.02], split: '0:10,10:20', tokenS: 2.4 + 0.021 },
      { what: 'one latency for all', speeds: [FAST, FAST], links: 0.005, split: '0:10,10:20', tokenS: 2.4 + 0.01 },
      // Node b may compute a tenth of the time: 10 layers need 1.0 s of CPU, so 10 s a token (over the 2.4 s sum).
      { what: 'quota binds', speeds: [FAST, { ...FAST, cpuShare: 0.1 }], links: 0, split: '0:10,10:20', tokenS: 10, bound: 1 },
      // One layer on b: 0.1 s of CPU, 1 s a token at a tenth; the sum 2.4 s is longer: no bound.
      { what: 'quota within its share', speeds: [FAST, { ...FAST, cpuShare: 0.1 }], links: 0, split: '0:19,19:20', tokenS: 2.4 },
      // b is twice as fast but may compute an eighth of the time: k layers on b take 2.4 - 0.05k s a token, and at
      // least 0.4k s: 5 layers (2.15 s). Without the quota all but one would go to b.
      { what: 'planner under a quota of 0.125', speeds: [FAST, { secondsPerByte: 0.5e-9, cpuShare: 0.125 }], links: 0, plan: '0:15,15:20', tokenS: 2.15 },
      { what: 'planner without the quota', speeds: [FAST, { secondsPerByte: 0.5e-9 }], links: 0, plan: '0:1,1:20', tokenS: 0.4 + 0.1 + 0.95 },
    ];
    for (const r of rows) {
      if (r.split) {
        const ranges = r.split.split(',').map((x) => ({ layerStart: Number(x.split(':')[0]), layerEnd: Number(x.split(':')[1]) }));
        const p = predictDecode(info, ranges, r.speeds, r.links)!;
        close(p.tokenSeconds, r.tokenS, r.what);
        assert.equal(p.linkSeconds.length, 2, r.what);
        assert.equal(p.quotaBound?.rank, r.bound, r.what);
      }
      if (r.plan) {
        const plan = planOnSpeed(info, [{ name: 'a', speed: r.speeds[0]! }, { name: 'b', speed: r.speeds[1]! }], rt(), { hopSeconds: r.links, objective: 'token' });
        assert.equal(spans(plan), r.plan, r.what);
        close(plan.prediction!.tokenSeconds, r.tokenS, r.what);
      }
    }
  });

  it('the planner under a quota is the best of all splits by brute force', () => {
    const info = model({ nLayer: 12, layerWeights: [30, 70, 50, 90, 20, 60, 80, 40, 10, 100, 55, 65].map((x) => x * MB) });
    for (const share of [0.05, 0.1, 0.2, 0.5]) {
      const speeds: NodeSpeed[] = [FAST, { secondsPerByte: 2e-9, cpuShare: share }];
      const plan = planOnSpeed(info, [{ name: 'a', speed: speeds[0]! }, { name: 'b', speed: speeds[1]! }], rt(), { hopSeconds: [0.001, 0.002], objective: 'token' });
      const got = plan.prediction!.tokenSeconds;
      for (let k = 1; k < 12; k++) {
        const t = predictDecode(info, [{ layerStart: 0, layerEnd: k }, { layerStart: k, layerEnd: 12 }], speeds, [0.001, 0.002])!.tokenSeconds;
        assert.ok(got <= t * (1 + 1e-9), `share ${share}: split at ${k} gives ${t}, the planner's ${spans(plan)} ${got}`);
      }
    }
  });

  it('prefill: the first ubatch passes every rank, the rest are bounded by the slowest; a node not measured gives none', () => {
    const info = model();
    const ranges = [{ layerStart: 0, layerEnd: 5 }, { layerStart: 5, layerEnd: 20 }];
    const speeds: NodeSpeed[] = [{ ...FAST, prefillSecondsPerByte: 1e-11 }, { ...FAST, prefillSecondsPerByte: 2e-11 }];
    // per token: 5 ms on a, 30 ms on b
    close(prefillSeconds(info, ranges, speeds, [0.001, 0.001], 512, 512)!, 512 * 0.035 + 0.002, 'one ubatch');
    close(prefillSeconds(info, ranges, speeds, [0, 0], 1024, 512)!, 512 * 0.035 + 512 * 0.03, 'two ubatches, pipelined');
    assert.equal(prefillSeconds(info, ranges, [FAST, speeds[1]!], [0, 0], 512), undefined);
    close(predictDecode(info, ranges, speeds, 0)!.prefillTokensPerSecond!, 512 / (512 * 0.035), 'in the prediction');
  });
});

describe('calibration records', () => {
  const info = model({ nLayer: 18 });
  const key = { binary: '/b/llama-server', model: '/m.gguf (1 bytes)', at: '2026-12-04T20:00:00.000Z' };
  const ranks = [{ node: 'a', layerStart: 0, layerEnd: 9 }, { node: 'slow', layerStart: 9, layerEnd: 18 }];

  it('a quota-bound node is recorded at full speed; the hop overhead, the prefill factor and the links', () => {
    // Decode 100 ms a token; the slow node's 9 layers took 60 ms of it, but at a quota of 0.33 cores (1 thread) it
    // can have computed at most 33 ms of CPU a token: its full speed.
    const stats = { ranks: [{ rank: 0, computeMsPerToken: 9 }, { rank: 1, computeMsPerToken: 60 }], hopMs: 0.5, roundTripMsPerToken: 61 };
    const recs = recordsFromChainStats(info, ranks, stats, 100, key, { prompt: { ms: 2000, tokens: 100 }, cpuQuotaCores: { slow: 0.33 }, threads: 1, linkSeconds: [0.0001, 0.0003] });
    const [a, slow] = recs as [SpeedRecord, SpeedRecord];
    close(a.secondsPerByte, 9e-3 / (900 * MB), 'a');
    close(slow.secondsPerByte, 33e-3 / (900 * MB), 'slow at full speed');
    assert.equal(slow.computeMsPerToken, 60); // what was measured stays on record
    assert.equal(slow.cpuQuotaCores, 0.33);
    close(a.hopOverheadSeconds!, 0.0005 - 0.0002, 'overhead: the mean hop less the mean link');
    // Prefill: (2 s - 2 links x (overhead + mean link)) / 100 tokens, over a's 9 ms and slow's 60 ms as measured.
    const factor = ((2 - 2 * 0.0005) / 100) / (0.009 + 0.06);
    close(a.prefillSecondsPerByte!, (factor * 9e-3) / (900 * MB), 'a prefill');
    close(slow.prefillSecondsPerByte!, (factor * 60e-3) / (900 * MB), 'slow prefill, its stalls as measured');
    assert.deepEqual(nodeSpeedOf(slow), { secondsPerByte: slow.secondsPerByte, prefillSecondsPerByte: slow.prefillSecondsPerByte, cpuShare: 0.33 });
  });

  it('links: measured either way, replaced by a fresh one; a link never measured costs the mean hop', () => {
    const at = '2026-12-04T20:00:00.000Z';
    const links = mergeLinks([{ from: 'a', to: 'b', oneWaySeconds: 0.004, measuredAt: at }, { from: 'b', to: 'c', oneWaySeconds: 0.001, measuredAt: at }], [{ from: 'b', to: 'a', oneWaySeconds: 0.002, measuredAt: at }]);
    assert.equal(links.length, 2);
    assert.equal(lookupLink(links, 'a', 'b'), 0.002);
    assert.equal(lookupLink(links, 'c', 'b'), 0.001);
    assert.equal(lookupLink(links, 'a', 'c'), undefined);
    const r = (node: string): SpeedRecord => ({ node, binary: 'x', model: 'm', secondsPerByte: 1e-9, hopSeconds: 0.003, hopOverheadSeconds: 0.0005, measuredAt: at, layers: '0:1', computeMsPerToken: 1 });
    const got = chainLinkSeconds(['a', 'b', 'c'], [r('a'), r('b'), r('c')], links);
    [0.0025, 0.0015, 0.003].forEach((want, i) => close(got[i]!, want, `link ${i}`));
  });
});

describe('node-side measurements', () => {
  it('a link: bash times TCP connects to a real listener; this machine times them itself', async () => {
    const server = createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const [cmd, ...args] = linkArgv('127.0.0.1', port, 5);
      const { stdout } = await promisify(execFile)(cmd!, args);
      assert.equal(stdout.trim().split('\n').length, 5, stdout);
      const oneWay = parseLinkProbe(stdout)!;
      assert.ok(oneWay >= 0 && oneWay < 1, `loopback one-way ${oneWay} s`);
      const here = await measureLink(new LocalTransport(), '127.0.0.1', port);
      assert.ok(here !== undefined && here >= 0 && here < 1, `measured here: ${here}`);
      process.stderr.write(`loopback link: bash ${(oneWay * 1e3).toFixed(3)} ms, here ${(here * 1e3).toFixed(3)} ms one-way\n`);
    } finally {
      server.close();
    }
    assert.equal(parseLinkProbe('garbage\n'), undefined);
    // connects of 0.2, 0.4 and 0.1 ms: the median halved
    close(parseLinkProbe('1.000100 1.000300\n1.000000 1.000400\n1.0 1.0001\n')!, 0.0001, 'parsed');
  });

  it('a cgroup CPU quota: v1 quota and period, v2 cpu.max; none where unlimited', () => {
    const rows: [string, number | undefined][] = [['33000\n100000\n', 0.33], ['-1\n100000\n', undefined], ['150000 100000\n', 1.5], ['max 100000\n', undefined], ['', undefined]];
    for (const [text, want] of rows) assert.equal(parseCpuQuota(text), want, JSON.stringify(text));
    const probe = ['@@llama-relay-devices os', 'Linux', '@@llama-relay-devices cpuquota', '50000', '100000', ''].join('\n');
    assert.equal(parseDevicesProbe(probe).cpuQuotaCores, 0.5);
  });
});

describe('bench and the event stream', () => {
  it('bench: each chain split predicted from the cached speeds, the emulated latency on every link, against the measured', () => {
    const info = model({ nLayer: 4, layerWeights: [100, 100, 100, 100].map((x) => x * MB) });
    const spread = (median: number) => ({ median, min: median, max: median, n: 1 });
    const measurement = (decode: number) => ({ promptTokens: 256, parallel: 1, samples: [], ttftMs: spread(1), prefillTps: spread(50), aggregateDecodeTps: spread(decode), perRequestDecodeTps: spread(decode), decodeMsPerToken: 1000 / decode, prefillBytesPerPromptToken: 0, decodeBytesPerToken: 0 });
    const node = (rank: number, name: string, layers: [number, number]) => ({ rank, node: name, role: rank ? 'worker' : 'head', layers, loadMs: 1, peakRssBytes: 1 });
    const report = {
      model: { path: '/m.gguf', layers: 4, fileBytes: 1, arch: 'llama' },
      settings: { nodes: ['local0', 'local1'], linkLatencyMs: 1 },
      configs: [
        { id: 'chain-2', kind: 'chain', nodes: [node(0, 'local0', [0, 2]), node(1, 'local1', [2, 4])], measurements: [measurement(1), { ...measurement(9), parallel: 4 }] },
        { id: 'rpc-2', kind: 'rpc', nodes: [], measurements: [] },
      ],
    } as unknown as BenchReport;
    const rec: SpeedRecord = { node: 'local', binary: 'x', model: 'm', secondsPerByte: 1e-9, hopSeconds: 0.002, measuredAt: 't', layers: '0:1', computeMsPerToken: 1 };
    const { rows, missing } = predictChains(info, report, ['local', 'local'], 'm', [rec], []);
    assert.deepEqual(missing, []);
    assert.equal(rows.length, 1); // one request at a time only
    // 0.4 s output + 0.4 s layers + 2 links x (2 ms hop + 1 ms emulated)
    close(rows[0]!.predictedDecodeTps, 1 / 0.806, 'predicted');
    close(rows[0]!.error, (1 - 1 / 0.806) / (1 / 0.806), 'error');
    assert.equal(rows[0]!.split, '0:2,2:4');
    assert.deepEqual(predictChains(info, report, ['local', 'elsewhere'], 'm', [rec], []).missing, ['elsewhere']);
  });

  it('decode-vs-predicted: plain shows the prediction at once, the measured one with --verbose', () => {
    assert.equal(formatPlain({ kind: 'decode-vs-predicted', predictedDecodeTps: 7.44, predictedPrefillTps: 30.7 }), 'predicted decode: 7.4 tok/s, prefill 30.7 tok/s (from the speeds measured on these nodes)');
    const e = { kind: 'decode-vs-predicted', predictedDecodeTps: 7.44, measuredDecodeTps: 7.06, tokens: 64 } as const;
    assert.equal(formatPlain(e), null);
    assert.equal(formatPlain(e, { verbose: true }), 'decode: measured 7.1 tok/s over 64 tokens (chain timing), predicted 7.4 tok/s');
  });
});
