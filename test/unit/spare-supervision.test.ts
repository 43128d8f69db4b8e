// The supervisor's side of spare nodes on local fixture ranks: a worker whose restarts keep failing moves to the spare
// after --replace-after (its upstream neighbour restarts to dial it, the head's relay is re-pointed for rank 1), a rank
// that comes back in time stays, and with no spare left the rank falls back to the restart budget with the error named.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { EventBus } from '../../src/events/event-bus.js';
import type { EventOf, RelayEvent } from '../../src/events/events.js';
import { ClusterRun } from '../../src/runtime/cluster-run.js';
import { headHealth, streamCompletion } from '../../src/runtime/head-client.js';
import { planLaunch, type LaunchInput, type LaunchNode } from '../../src/runtime/launch-plan.js';
import { startLinkRelay, type LinkRelay } from '../../src/runtime/link-relay.js';
import { generateSecret } from '../../src/runtime/secret.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'lr-spare-run-'));
const marker = uniqueMarker();
const runs: ClusterRun[] = [];
const relays: LinkRelay[] = [];
after(async () => {
  for (const r of runs) await r.stop().catch(() => undefined);
  for (const r of relays) await r.close();
  reap(marker);
  rmSync(dir, { recursive: true, force: true });
});

/** A llama-server for the "lost" node: the fixture, or an exit while the flag file exists (the node does not come back). */
function flakyServer(flag: string): string {
  const path = join(dir, `flaky-${marker}-${flag.replace(/\W/g, '_')}.sh`);
  writeFileSync(path, `#!/bin/sh\n[ -e '${flag}' ] && { echo 'node unreachable' >&2; exit 255; }\nexec '${fixtureBin('fake-llama-server.mjs')}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A llama-server for a spare whose first start fails (as when its node is slow to come up), then the fixture. */
function failsOnceServer(): string {
  const path = join(dir, `fails-once-${marker}.sh`);
  const once = join(dir, `fails-once-${marker}.done`);
  writeFileSync(path, `#!/bin/sh\n[ -e '${once}' ] || { : > '${once}'; echo 'not yet' >&2; exit 1; }\nexec '${fixtureBin('fake-llama-server.mjs')}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Ranks 1 and 2 on nodes that are lost while their flag file exists (`${flag}1`, `${flag}2`). */
async function chainWithSpare(flag: string, spareNames: string[], spareBinary = fixtureBin('fake-llama-server.mjs')) {
  const relay = await startLinkRelay('127.0.0.1:1');
  relays.push(relay);
  const node = (name: string, binary: string): LaunchNode => ({ name, stageHost: '127.0.0.1', binary, model: marker });
  const ports = [await getPort(), await getPort(), await getPort()];
  const sparePorts = new Map(await Promise.all(spareNames.map(async (n) => [n, await getPort()] as const)));
  const input: LaunchInput = {
    ranks: [0, 1, 2].map((i) => ({ node: node('local', i === 0 ? fixtureBin('fake-llama-server.mjs') : flakyServer(`${flag}${i}`)), layerStart: i * 4, layerEnd: i * 4 + 4 })),
    stagePorts: ports,
    api: { host: '127.0.0.1', port: await getPort() },
    runtime: { ctx: 256, parallel: 1 },
    runName: `sp-${marker}`,
    links: [relay.address, undefined, undefined],
  };
  relay.retarget(`127.0.0.1:${ports[1]}`);
  const relaunch = (moves: ReadonlyMap<number, string>) =>
    planLaunch({
      ...input,
      ranks: input.ranks.map((r, i) => (moves.has(i) ? { ...r, node: node(moves.get(i)!, spareBinary) } : r)),
      stagePorts: ports.map((p, i) => (moves.has(i) ? sparePorts.get(moves.get(i)!)! : p)),
    });
  const bus = new EventBus();
  const events: RelayEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const run = new ClusterRun(planLaunch(input), {
    transports: new Map([['local', new LocalTransport()], ...spareNames.map((n) => [n, new LocalTransport()] as const)]),
    secret: generateSecret(),
    emit: bus.emit,
    readyTimeoutMs: 15_000,
    graceSeconds: 1,
    heartbeatSeconds: 0,
    healthIntervalMs: 200,
    memoryIntervalMs: 0,
    runDir: dir,
    maxRestarts: 2,
    spares: {
      nodes: spareNames.map((name) => ({ name })),
      replaceAfterMs: 1500,
      retryDelayMs: 200,
      relaunch,
      onMoved: (now) => relay.retarget(now.find((l) => l.rank === 1)!.listen),
    },
  });
  runs.push(run);
  return { run, events, api: (await run.start())! };
}

const kill = (run: ClusterRun, rank: number) => process.kill(-run.rankProcess(rank)!.childPgid()!, 'SIGKILL');
const serves = (api: string) =>
  waitFor(async () => {
    try {
      return (await headHealth(api)).ok && (await streamCompletion(api, { prompt: 'hi', maxTokens: 3 }, () => undefined)).text === 'Hello from the';
    } catch {
      return false;
    }
  }, 20_000, 200);

describe('ClusterRun with a spare (local fixture ranks)', { timeout: 120_000 }, () => {
  it('a worker that comes back before --replace-after stays; one that does not moves, rank 2 then rank 1; no spare left: the budget and an error', async () => {
    const flag = join(dir, 'lost');
    const { run, events, api } = await chainWithSpare(flag, ['spare1']);
    assert.ok(await serves(api), 'the chain serves');

    // Back in time: killed, restarted on its own node, no move.
    kill(run, 2);
    assert.ok(await waitFor(() => events.filter((e) => e.kind === 'node-phase' && e.rank === 2 && e.phase === 'ready').length >= 2, 10_000));
    await new Promise((r) => setTimeout(r, 2000)); // past --replace-after: the timer was cleared
    assert.equal(events.filter((e) => e.kind === 'rank-moved').length, 0, 'a rank that came back moved');

    // Lost for good: every restart there fails; after 1.5 s rank 2 runs on the spare and rank 1 restarts to dial it.
    writeFileSync(`${flag}2`, '');
    kill(run, 2);
    assert.ok(await waitFor(() => events.some((e) => e.kind === 'rank-moved'), 15_000), 'no move');
    const moved = events.find((e): e is EventOf<'rank-moved'> => e.kind === 'rank-moved')!;
    assert.deepEqual([moved.rank, moved.from, moved.to, moved.layers, moved.restarted], [2, 'local', 'spare1', [8, 12], [1]]);
    assert.ok(moved.lostSeconds >= 1.5, `moved after ${moved.lostSeconds} s`);
    assert.ok(events.filter((e) => e.kind === 'rank-exited' && e.rank === 2).length >= 2, 'its restarts there failed first');
    assert.equal(run.launches.find((l) => l.rank === 2)!.node.name, 'spare1');
    assert.equal(run.launches.find((l) => l.rank === 1)!.next, run.launches.find((l) => l.rank === 2)!.listen, 'rank 1 dials the spare');
    assert.ok(await serves(api), 'the chain serves again through the spare');

    // Rank 1 is lost too, and the only spare is taken: an error names it, then the restart budget runs out.
    writeFileSync(`${flag}1`, '');
    kill(run, 1);
    await assert.rejects(run.fatal, /rank 1/);
    const err = events.find((e): e is EventOf<'error'> => e.kind === 'error' && /no spare is left/.test(e.message));
    assert.ok(err, `no error about the spares: ${JSON.stringify(events.filter((e) => e.kind === 'error'))}`);
    assert.match(err.message, /^rank 1 on local stays lost and no spare is left \(spare1 already in use\)/);
    assert.equal(events.filter((e) => e.kind === 'rank-moved').length, 1);

    await run.stop();
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it('rank 1 moves without restarting the head: the relay is re-pointed', async () => {
    const flag = join(dir, 'lost1');
    const { run, events, api } = await chainWithSpare(flag, ['spare1', 'spare2']);
    assert.ok(await serves(api));
    writeFileSync(`${flag}1`, '');
    kill(run, 1);
    assert.ok(await waitFor(() => events.some((e) => e.kind === 'rank-moved'), 15_000), 'no move');
    const moved = events.find((e): e is EventOf<'rank-moved'> => e.kind === 'rank-moved')!;
    assert.deepEqual([moved.rank, moved.to, moved.restarted], [1, 'spare1', []]);
    assert.ok(await serves(api), 'the chain serves again through the relay');
    assert.equal(events.filter((e) => e.kind === 'node-phase' && e.rank === 0 && e.phase === 'ready').length, 1, 'the head never restarted');
    await run.stop();
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });

  it("a spare whose first start fails is restarted there, and the relay still points at it", async () => {
    const flag = join(dir, 'lost1b');
    const { run, events, api } = await chainWithSpare(flag, ['spare1', 'spare2'], failsOnceServer());
    assert.ok(await serves(api));
    writeFileSync(`${flag}1`, '');
    kill(run, 1);
    assert.ok(await waitFor(() => events.some((e) => e.kind === 'rank-moved'), 15_000), 'no move');
    assert.ok(await waitFor(() => events.some((e) => e.kind === 'node-phase' && e.rank === 1 && e.node === 'spare1' && e.phase === 'ready'), 15_000), 'never ready on spare1');
    assert.ok(await serves(api), 'the chain serves again through the relay');
    assert.ok(events.some((e) => e.kind === 'rank-exited' && e.rank === 1 && e.node === 'spare1'), 'the first start on the spare did not fail');
    assert.equal(events.filter((e) => e.kind === 'rank-moved').length, 1, 'it moved on from the spare');
    await run.stop();
    assert.deepEqual(await survivorsAfter(marker, 5000), []);
  });
});
