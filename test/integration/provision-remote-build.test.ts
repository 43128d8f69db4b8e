// A full cold build of the real patched llama.cpp on a "remote" node (the loopback sshd): the source ships as a
// tar stream, the node builds llama-server from it, and the result is the patched engine. A cold build takes
// ~10 minutes on 2 cores, so it runs when LLAMA_RELAY_TEST_REMOTE_BUILD=1 (.ci/run sets it).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RelayEvent } from '../../src/events/events.js';
import { engineSourceKey, localEngine } from '../../src/provision/local-engine.js';
import { provision } from '../../src/provision/provision-nodes.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import { makeControlDir, SshTransport } from '../../src/ssh/ssh-transport.js';
import type { Transport } from '../../src/ssh/transport.js';
import { survivorsAfter, uniqueMarker } from '../helpers/processes.js';
import { binDirs } from '../helpers/engine.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

const enabled = process.env.LLAMA_RELAY_TEST_REMOTE_BUILD === '1';
let sshd: TestSshd;
let control: { dir: string; remove: () => void };
let node: SshTransport;
const work = mkdtempSync('/tmp/lr-rbuild-');

before(async () => {
  if (!enabled) return;
  sshd = await startSshd();
  control = makeControlDir();
  node = new SshTransport({ name: sshd.alias, host: sshd.alias }, { controlDir: control.dir, configFile: sshd.configFile });
  await node.connect();
});
after(async () => {
  await node?.close();
  control?.remove();
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The patched llama-server scripts/build-llama.sh built here (it prints where; cached, so seconds). */
async function localPatchedBuild(): Promise<string | undefined> {
  const p = join((await binDirs()).patched, 'llama-server');
  return existsSync(p) ? p : undefined;
}

describe('cold build of the patched engine on a remote node', { timeout: 3_600_000 }, () => {
  it('ships the pinned, patched tree over ssh, builds llama-server there, and the node binary is the patched engine', async (t) => {
    if (!enabled) return t.skip('set LLAMA_RELAY_TEST_REMOTE_BUILD=1 (a cold build takes ~10 min on 2 cores; .ci/run does)');
    const built = await localPatchedBuild();
    assert.ok(built, 'scripts/build-llama.sh has built the patched engine');
    const local = await localEngine(built);
    assert.ok(local.source, 'the local llama.cpp tree is in the patched state');
    // Without a local binary to copy, the node has to build from the shipped source.
    const { localBinary: _drop, ...engine } = local;
    const marker = uniqueMarker('lrcold');
    const cache = join(work, `${marker}-cache`);
    const model = join(work, 'model.gguf');
    writeFileSync(model, 'x');
    const events: RelayEvent[] = [];
    const transports = new Map<string, Transport>([['local', new LocalTransport()], [node.name, node]]);
    const req = {
      ranks: [
        { rank: 0, node: 'local', layerStart: 0, layerEnd: 2 },
        { rank: 1, node: node.name, layerStart: 2, layerEnd: 4 },
      ],
      transports,
      binary: { engine, local: built },
      model: { path: model },
      runDir: join(work, 'run'),
      nodeCacheDir: cache,
      emit: (e: RelayEvent) => events.push(e),
    };
    const r = await provision(req);
    assert.equal(r.plans.get(node.name)!.binary!.kind, 'build');
    const bin = r.ranks[1]!.binary;
    assert.ok(bin.startsWith(`${cache}/bin/`), bin);
    const build = events.flatMap((e) => (e.kind === 'node-phase' && e.phase === 'build' && e.node === node.name ? [e.progress ?? -1] : []));
    assert.equal(build.at(-1), 1, 'the build reached 100%');

    // The node's binary is the patched server of the pin: it knows the stage flags and names the pinned commit.
    const help = await node.exec([bin, '--help']);
    for (const flag of ['--layer-range', '--stage-listen', '--stage-next', '--stage-secret-file']) assert.ok(help.stdout.includes(flag), `${flag} in --help`);
    const version = await node.exec([bin, '--version']);
    assert.match(`${version.stdout}${version.stderr}`, new RegExp(`commit ${engineSourceKey().commit.slice(0, 7)}`));

    // A second launch reuses the node's cached build.
    const again = await provision({ ...req, emit: () => undefined });
    assert.equal(again.plans.get(node.name)!.binary!.kind, 'reuse');
    assert.equal(again.ranks[1]!.binary, bin);
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });
});
