// The provisioning lock over a real sshd: two launchers provisioning the same node cache take turns (the second waits,
// then finds the work done), a holder that dies releases it, and a lock held too long is a UserError naming the node.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UserError } from '../../src/errors.js';
import type { RelayEvent } from '../../src/events/events.js';
import { loadGgufModel } from '../../src/gguf/model.js';
import { acquireNodeLock, lockPath, type NodeLock } from '../../src/provision/node-lock.js';
import { provision, type ProvisionRequest } from '../../src/provision/provision-nodes.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import { makeControlDir, SshTransport } from '../../src/ssh/ssh-transport.js';
import type { Transport } from '../../src/ssh/transport.js';
import { makeFixture } from '../helpers/fixtures.js';
import { isAlive, waitFor } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
const work = mkdtempSync('/tmp/lr-lock-');
const controls: { remove: () => void }[] = [];
const transports: SshTransport[] = [];
const held: NodeLock[] = [];

before(async () => {
  sshd = await startSshd();
});
after(async () => {
  await Promise.all(held.map((l) => l.release()));
  await Promise.all(transports.map((t) => t.close()));
  controls.forEach((c) => c.remove());
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Each launcher has its own ssh connection (control master), as separate llama-relay processes would. */
async function launcherTransport(): Promise<SshTransport> {
  const control = makeControlDir();
  controls.push(control);
  const t = new SshTransport({ name: sshd.alias, host: sshd.alias }, { controlDir: control.dir, configFile: sshd.configFile });
  await t.connect();
  transports.push(t);
  return t;
}

/** Another launcher's lock, as it holds it while provisioning. */
async function holdLock(t: Transport, cache: string): Promise<NodeLock> {
  const lock = await acquireNodeLock(t, cache, { owner: { pid: 4242, host: 'other-box' }, waitSeconds: 30 });
  held.push(lock);
  assert.ok(lock.held, 'flock is installed here');
  return lock;
}

/** A stand-in for the llama.cpp tree: a tiny CMake project whose `llama-server` prints a line. */
function standInSource(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.c'), '#include <stdio.h>\nint main(void) { puts("stand-in llama-server"); return 0; }\n');
  writeFileSync(join(dir, 'CMakeLists.txt'), 'cmake_minimum_required(VERSION 3.14)\nproject(standin C)\nadd_executable(llama-server main.c)\n');
  return dir;
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const waiting = (events: RelayEvent[]) => events.filter((e): e is Extract<RelayEvent, { kind: 'info' }> => e.kind === 'info' && e.message.startsWith('waiting for another llama-relay'));

async function request(o: { node: Transport; cache: string; events: RelayEvent[]; sourceKey: string; lockWaitSeconds?: number }): Promise<ProvisionRequest> {
  const model = await makeFixture({ arch: 'llama', layers: 4, embd: 128, ff: 256, seed: 11 });
  return {
    ranks: [
      { rank: 0, node: 'local', layerStart: 0, layerEnd: 2 },
      { rank: 1, node: o.node.name, layerStart: 2, layerEnd: 4 },
    ],
    transports: new Map<string, Transport>([['local', new LocalTransport()], [o.node.name, o.node]]),
    binary: { engine: { sourceKey: o.sourceKey, source: { dir: standInSource(join(work, `src-${o.sourceKey}`)), bytes: 4096 }, buildOverheadBytes: 0 }, local: '/bin/true' },
    model: { path: model, gguf: await loadGgufModel(model) },
    nodeCacheDir: o.cache,
    localCacheDir: join(work, 'local-cache'),
    runDir: join(work, 'run'),
    cmakeFlags: () => ['-DCMAKE_BUILD_TYPE=Release'],
    ...(o.lockWaitSeconds !== undefined ? { lockWaitSeconds: o.lockWaitSeconds } : {}),
    emit: (e) => o.events.push(e),
  };
}

describe('provisioning lock over ssh', { timeout: 300_000 }, () => {
  it('two launchers provisioning one node at once: both succeed, the second waits and reuses what the first built and pushed', async () => {
    const cache = join(work, 'cache-two');
    const [a, b, other] = await Promise.all([launcherTransport(), launcherTransport(), launcherTransport()]);
    // A third launcher is busy with the node, so both of ours find the lock held before either starts.
    const first = await holdLock(other, cache);
    const events = { a: [] as RelayEvent[], b: [] as RelayEvent[] };
    const runs = [
      provision(await request({ node: a, cache, events: events.a, sourceKey: 'lock-two' })),
      provision(await request({ node: b, cache, events: events.b, sourceKey: 'lock-two' })),
    ];
    assert.ok(await waitFor(() => waiting(events.a).length > 0 && waiting(events.b).length > 0, 60_000), 'both launchers report the wait');
    for (const e of [...events.a, ...events.b]) assert.ok(!(e.kind === 'node-phase' && (e.phase === 'upload' || e.phase === 'build')), 'nothing runs while the lock is held');
    assert.equal(waiting(events.a)[0]!.message, 'waiting for another llama-relay provisioning relaynode (pid 4242 on other-box)');
    assert.ok(events.b.some((e) => e.kind === 'node-phase' && e.node === 'relaynode' && e.detail === 'waiting for another launcher'));
    await first.release();

    const [ra, rb] = await Promise.all(runs);
    // Whichever got the lock first built and pushed; the other waited for it and then had nothing left to do.
    const reports = [ra!, rb!].sort((x, y) => (y.sent.get('relaynode') ?? 0) - (x.sent.get('relaynode') ?? 0));
    assert.deepEqual(reports.map((r) => r.plans.get('relaynode')!.binary!.kind), ['build', 'reuse']);
    assert.ok(reports[0]!.sent.get('relaynode')! > 0);
    assert.equal(reports[1]!.sent.get('relaynode'), 0, 'the second launcher sent nothing');
    assert.equal(ra!.ranks[1]!.binary, rb!.ranks[1]!.binary);
    assert.equal(ra!.ranks[1]!.model, rb!.ranks[1]!.model);
    assert.match(execFileSync(ra!.ranks[1]!.binary, { encoding: 'utf8' }), /stand-in llama-server/);
    // One verified copy of each, nothing half-written.
    assert.equal(readdirSync(join(cache, 'bin')).length, 1);
    assert.deepEqual(readdirSync(join(cache, 'slices')).filter((f) => !f.endsWith('.gguf')), []);
    assert.equal(readdirSync(join(cache, 'slices')).length, 1);
    const local = join(work, 'local-cache', 'slices', readdirSync(join(cache, 'slices'))[0]!);
    assert.equal(sha(ra!.ranks[1]!.model), sha(local));
    assert.match(readFileSync(lockPath(cache), 'utf8'), new RegExp(`^pid=${process.pid} host=`), 'the lock file names its last holder');
  });

  it('the lock goes with its holder: a launcher killed while holding it does not block the next', async () => {
    const cache = join(work, 'cache-killed');
    const [dying, next] = await Promise.all([launcherTransport(), launcherTransport()]);
    const lock = await holdLock(dying, cache);
    assert.ok(lock.pid !== undefined && isAlive(lock.pid));
    process.kill(lock.pid, 'SIGKILL'); // the holder's ssh goes away as with a killed launcher
    const again = await acquireNodeLock(next, cache, { owner: { pid: process.pid, host: 'here' }, waitSeconds: 60 });
    held.push(again);
    assert.ok(again.held);
    await again.release();
  });

  it('a lock held longer than the wait: a UserError naming the node, the lock file and what to do; nothing is sent', async () => {
    const cache = join(work, 'cache-timeout');
    // Held through the local node: ssh and local launchers share the one lock file.
    await holdLock(new LocalTransport(), cache);
    const node = await launcherTransport();
    const events: RelayEvent[] = [];
    const err = await provision(await request({ node, cache, events, sourceKey: 'lock-timeout', lockWaitSeconds: 1 })).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof UserError, String(err));
    assert.equal(
      err.message,
      `node relaynode: another llama-relay (pid 4242 on other-box) has been provisioning it for over 1 s; its lock ${cache}/.lock is still held`,
    );
    assert.match(err.next.join('\n'), /wait for that launcher to finish[\s\S]*fuser -v .*\.lock[\s\S]*--node-cache/);
    assert.equal(waiting(events).length, 1);
    assert.ok(events.some((e) => e.kind === 'node-phase' && e.node === 'relaynode' && e.phase === 'failed'));
    assert.ok(!existsSync(join(cache, 'slices')) && !existsSync(join(cache, 'src')), 'nothing uploaded');
  });
});
