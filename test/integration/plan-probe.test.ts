// `plan --probe` as a user runs it, with the real patched engine and Gemma 3 270M on this machine's two local ranks:
// a calibration run fills the speed cache (a file of the test's own), the next `plan` predicts from it at once, and
// `up` shows its prediction next to the decode it measures. Speeds are printed, never asserted.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { linkPatchedServer, realModelOrSkip, runCli, stagePortBase } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-plan-probe');
let llamaServer = '';
const env = () => ({ LLAMA_RELAY_SPEED_CACHE: join(work.path, 'speeds.json') });

before(async () => {
  llamaServer = await linkPatchedServer(work);
});
after(() => work.remove());

describe('plan --probe, real engine', { timeout: 900_000 }, () => {
  it('measures the nodes, caches the speeds, and plan and up predict decode from them', async (t) => {
    const m = await realModelOrSkip(t);
    if (!m) return;
    const before = runCli(work, ['plan', m, '--nodes', 'local,local', '--ctx', '1024'], env());
    assert.equal(await before.exit, 0, before.stderr());
    assert.match(before.stdout(), /^Placement: balanced on compute \(the ranks share one machine\)$/m);
    assert.match(before.stdout(), /^Predicted speed: not measured yet; `plan --probe` runs a short calibration/m);

    const probe = runCli(
      work,
      ['plan', m, '--nodes', 'local,local', '--probe', '--llama-server', llamaServer, '--threads', '1', '--ctx', '1024', '--run-dir', work.path, '--stage-port-base', String(await stagePortBase(3))],
      env(),
    );
    assert.equal(await probe.exit, 0, probe.stderr());
    const out = probe.stdout();
    process.stderr.write(`plan --probe:\n${out}\n`);
    assert.match(out, /^Placement: balanced on measured speed$/m);
    assert.match(out, /^Predicted decode: [\d.]+ tok\/s \(one request: [\d.]+ ms a token = [\d.]+ ms \+ [\d.]+ ms compute \+ links [\d.]+ \+ [\d.]+ ms\)$/m);
    assert.match(out, /^Predicted prefill: [\d.]+ tok\/s \(a 512-token prompt\)$/m);
    assert.match(out, /^ {2}local: CPU only; [\d.]+ GB of [\d.]+ GB RAM available$/m);
    assert.match(out, /^ {2}calibration: layers \d+:\d+,\d+:18 decoded [\d.]+ tok\/s \(measured\)$/m);
    // --ctx 1024 holds 4 slots of the calibration: the batch phase ran (its gain printed, never asserted beyond > 0).
    assert.match(out, /^ {2}batching: 4 requests in one batch decoded at [\d.]+x one request's rate \(measured; (up batches groups from 4 requests per rank|under 1\.15x: up keeps one micro-batch per request)\)$/m);
    // The budget came from the probed memory (no mem= given).
    assert.match(out, /^Node 1: local Layers: \d+ - 17, Estimated Memory: ~[\d.]+ MB of [\d.]+ GB$/m);
    const cache = JSON.parse(readFileSync(join(work.path, 'speeds.json'), 'utf8')) as {
      records: { node: string; binary: string; secondsPerByte: number; outputSeconds?: number; hopSeconds?: number; hopOverheadSeconds?: number; prefillSecondsPerByte?: number; batchGain?: number }[];
      links: { from: string; to: string; oneWaySeconds: number }[];
    };
    assert.equal(cache.records.length, 1);
    const rec = cache.records[0]!;
    assert.equal(rec.node, 'local');
    assert.equal(rec.binary, llamaServer);
    assert.ok(rec.secondsPerByte > 0 && rec.outputSeconds! > 0 && rec.hopSeconds! >= 0 && rec.hopOverheadSeconds! >= 0 && rec.prefillSecondsPerByte! > 0 && rec.batchGain! > 0, JSON.stringify(rec));
    // Both links of the ring are loopback on this machine: one record, timed here.
    assert.deepEqual(cache.links.map((l) => [l.from, l.to]), [['local', 'local']]);
    assert.ok(cache.links[0]!.oneWaySeconds >= 0, JSON.stringify(cache.links));
    assert.deepEqual(await work.survivors(15_000), []);

    // The next plan is instant: from the cache, no run.
    const again = runCli(work, ['plan', m, '--nodes', 'local,local', '--ctx', '1024', '--json'], env());
    assert.equal(await again.exit, 0, again.stderr());
    const json = JSON.parse(again.stdout()) as { plan: { placement: string; prediction?: { decodeTokensPerSecond: number } }; speeds?: unknown[] };
    assert.equal(json.plan.placement, 'speed');
    assert.ok(json.plan.prediction!.decodeTokensPerSecond > 0);
    assert.equal(json.speeds?.length, 2);

    // up predicts before launching and reports the decode it measured against it, on the one event stream (--json).
    const up = runCli(
      work,
      ['up', m, '--nodes', 'local,local', '--llama-server', llamaServer, '--threads', '1', '--ctx', '1024', '--prompt', 'The history of the Roman Empire', '--raw', '--max-tokens', '64',
        '--json', '--api-port', String(await getPort()), '--run-dir', work.path, '--stage-port-base', String(await stagePortBase(3))],
      env(),
    );
    assert.equal(await up.exit, 0, up.stderr());
    const events = up.stdout().trim().split('\n').map((l) => JSON.parse(l) as { kind: string; message?: string; predictedDecodeTps?: number; predictedPrefillTps?: number; measuredDecodeTps?: number; tokens?: number });
    assert.ok(events.some((e) => e.kind === 'info' && /^placement: balanced on measured speed \(0:\d+,\d+:18\)$/.test(e.message ?? '')), up.stdout());
    const checks = events.filter((e) => e.kind === 'decode-vs-predicted');
    assert.ok(checks[0] && checks[0].measuredDecodeTps === undefined && checks[0].predictedDecodeTps! > 0 && checks[0].predictedPrefillTps! > 0, JSON.stringify(checks));
    const last = checks.at(-1)!;
    assert.ok(last.measuredDecodeTps! > 0 && last.tokens! > 0 && last.predictedDecodeTps === checks[0]!.predictedDecodeTps, JSON.stringify(checks));
    const head = events.find((e) => e.kind === 'info' && /^decode: measured [\d.]+ tok\/s, predicted [\d.]+ tok\/s$/.test(e.message ?? ''));
    assert.ok(head, up.stdout());
    process.stderr.write(`up: predicted ${last.predictedDecodeTps!.toFixed(1)} tok/s; measured ${last.measuredDecodeTps!.toFixed(1)} tok/s (chain timing, ${last.tokens} tokens), ${head.message}\n`);
    assert.deepEqual(await work.survivors(15_000), []);
  });
});
