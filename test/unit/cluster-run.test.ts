// A 3-rank chain of fixture llama-servers on this machine: start order, tokens, a crash with restart, clean teardown.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import getPort from 'get-port';
import { ClusterRun } from '../../src/runtime/cluster-run.js';
import { headHealth, streamCompletion } from '../../src/runtime/head-client.js';
import { planLaunch } from '../../src/runtime/launch-plan.js';
import { generateSecret } from '../../src/runtime/secret.js';
import { EventBus } from '../../src/events/event-bus.js';
import type { RelayEvent } from '../../src/events/events.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';

const runDir = mkdtempSync(join(tmpdir(), 'lr-run-'));
const marker = uniqueMarker();
const runs: ClusterRun[] = [];
after(async () => {
  for (const r of runs) await r.stop().catch(() => undefined);
  reap(marker);
  rmSync(runDir, { recursive: true, force: true });
});

async function localChain(over: { env?: Record<string, string> } = {}) {
  const ports = [await getPort(), await getPort(), await getPort()];
  const apiPort = await getPort();
  const node = { name: 'local', stageHost: '127.0.0.1', binary: fixtureBin('fake-llama-server.mjs'), model: marker };
  const launches = planLaunch({
    ranks: [0, 1, 2].map((i) => ({ node, layerStart: i * 4, layerEnd: i * 4 + 4 })),
    stagePorts: ports,
    api: { host: '127.0.0.1', port: apiPort },
    runtime: { ctx: 256, parallel: 1 },
    runName: `t-${marker}`,
  });
  const bus = new EventBus();
  const events: RelayEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const run = new ClusterRun(launches, {
    transports: new Map([['local', new LocalTransport()]]),
    secret: generateSecret(),
    emit: bus.emit,
    readyTimeoutMs: 15_000,
    graceSeconds: 1,
    heartbeatSeconds: 0,
    healthIntervalMs: 200,
    memoryIntervalMs: 300,
    runDir,
    ...(over.env ? { env: over.env } : {}),
  });
  runs.push(run);
  return { run, events, launches };
}

describe('ClusterRun on local fixture ranks', () => {
  it('starts downstream-first, serves tokens, restarts a killed rank, and leaves nothing behind', async () => {
    const { run, events } = await localChain({ env: { FAKE_TOKEN_MS: '20' } });
    const api = (await run.start())!;
    const readyOrder = events.filter((e) => e.kind === 'node-phase' && e.phase === 'ready').map((e) => (e as { rank: number }).rank);
    assert.deepEqual(readyOrder, [2, 1, 0]);
    assert.deepEqual(await headHealth(api), { ok: true });
    assert.ok(await waitFor(() => [0, 1, 2].every((r) => events.some((e) => e.kind === 'memory' && e.rank === r && e.rssBytes > 1e6)), 3000), 'memory per rank');

    const toks: string[] = [];
    const r = await streamCompletion(api, { prompt: 'hi', maxTokens: 5 }, (t) => toks.push(t));
    assert.equal(r.text, 'Hello from the relay chain');
    assert.equal(toks.length, 5);

    // A long generation is in flight when rank 1 dies (SIGKILL to its group, as the OOM killer would).
    const inflight = streamCompletion(api, { prompt: 'long', maxTokens: 400 }, () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(-run.rankProcess(1)!.childPgid()!, 'SIGKILL');
    const t1 = Date.now();
    await assert.rejects(inflight, /generation failed on the chain|closed the stream/);
    assert.ok(Date.now() - t1 < 5000, 'in-flight request must fail fast, not hang');
    assert.ok(await waitFor(() => events.some((e) => e.kind === 'rank-exited' && e.rank === 1), 5000));
    const exited = events.find((e) => e.kind === 'rank-exited') as Extract<RelayEvent, { kind: 'rank-exited' }>;
    assert.equal(exited.exitCode, 137);
    assert.match(exited.meaning, /killed/);
    assert.equal(exited.restarting, true);
    // The chain comes back and serves again.
    assert.ok(await waitFor(async () => (await headHealth(api)).ok, 15_000), 'chain never healed');
    const again = await streamCompletion(api, { prompt: 'hi', maxTokens: 3 }, () => undefined);
    assert.equal(again.text, 'Hello from the');

    const t0 = Date.now();
    await run.stop();
    assert.ok(Date.now() - t0 < 10_000);
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });
});
