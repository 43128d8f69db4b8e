// `llama-relay up` with the REAL patched llama-server: a 3-node chain through a real sshd (remote head, local,
// remote), token-identical to stock llama-server; a killed rank restarts; teardown leaves no llama-server behind.
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { assertSameCompletion, binDirs, complete, startStock, type Server } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { carrying, pidsMatching, processKinds, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { launchUp } from '../helpers/up-launcher.js';

// This run's marker: the launcher's TMPDIR (its ssh masters and forwards carry it in their environment) and the dir of
// the model and the run dir (every rank, local or remote, carries it in its argv).
const work = mkdtempSync('/tmp/lr-eng-');
const marker = uniqueMarker('lreng');
let sshd: TestSshd;
let stock: Server | undefined;
let launcher: ChildProcessWithoutNullStreams | undefined;
let model = '';
let llamaServer = '';

before(async () => {
  sshd = await startSshd();
  llamaServer = join((await binDirs()).patched, 'llama-server');
  const fixture = await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 });
  // A marker in the model path makes every rank of this test findable with pgrep.
  model = join(work, `${marker}.gguf`);
  symlinkSync(fixture, model);
});

after(async () => {
  if (launcher && launcher.exitCode === null) launcher.kill('SIGKILL');
  await stock?.stop();
  reap(work);
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('up with the patched llama-server over a real sshd', { timeout: 240_000 }, () => {
  it('serves token-identical output to stock, survives a killed rank, and tears down cleanly', async () => {
    const apiPort = await getPort({ host: '127.0.0.1' });
    const base = 20_000 + Math.floor(Math.random() * 9000);
    const up = launchUp(
      [
        model, '--nodes', `${sshd.alias},local,root@${sshd.alias}`, '--llama-server', llamaServer,
        '--ctx', '1024', '--threads', '1', '--server', '--json', '--api-port', String(apiPort), '--stage-port-base', String(base),
        '-F', sshd.configFile, '--run-dir', work, '--ready-timeout', '120', '--stage-timeout', '10',
      ],
      { TMPDIR: work },
    );
    launcher = up.child;
    const { events, exit, ready, show } = up;
    assert.ok(await waitFor(() => ready() || launcher!.exitCode !== null, 180_000, 250) && ready(), `chain never ready:\n${show()}`);
    const planned = events.filter((e) => e.kind === 'rank-planned').map((e) => e.layers);
    assert.equal(planned.length, 3);
    // Positive control for the leftover check at the end: the same query sees the ranks, masters and the API forward.
    const running = carrying(work).map((p) => p.args);
    const kinds = processKinds(running);
    for (const k of ['rank', 'rank over ssh', 'ssh master', 'ssh forward']) assert.ok(kinds.has(k), `no ${k} carries ${work}:\n${running.join('\n')}`);
    for (const layers of planned as number[][]) {
      const rank = `--layer-range ${layers.join(':')}`;
      assert.ok(running.some((a) => !/^\S*ssh /.test(a) && a.includes(llamaServer) && a.includes(rank)), `no process of the rank with ${rank} carries ${work}`);
    }

    stock = await startStock(model);
    const prompt = { prompt: 'Hello there', n_predict: 16 };
    const want = await complete(stock.port, prompt);
    assertSameCompletion(await complete(apiPort, prompt), want, 1e-4, 'chain via up vs stock');

    // Kill the local middle rank's llama-server; supervision restarts it and the chain serves the same answer.
    const victim = pidsMatching(`${marker}.gguf`).find((pid) => {
      const args = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
      return args.startsWith(llamaServer) && args.includes(`--layer-range ${(planned[1] as number[]).join(':')}`);
    });
    assert.ok(victim, 'rank 1 not found');
    process.kill(victim, 'SIGKILL');
    assert.ok(await waitFor(() => events.some((e) => e.kind === 'rank-exited' && e.rank === 1), 15_000));
    const readyAgain = () => events.filter((e) => e.kind === 'node-phase' && e.rank === 1 && e.phase === 'ready').length >= 2;
    assert.ok(await waitFor(readyAgain, 120_000, 250), 'rank 1 did not come back');
    let again: Awaited<ReturnType<typeof complete>> | undefined;
    assert.ok(
      await waitFor(async () => {
        try {
          again = await complete(apiPort, prompt);
          return true;
        } catch {
          return false;
        }
      }, 60_000, 500),
      'the chain did not serve again',
    );
    assertSameCompletion(again!, want, 1e-4, 'after restart');

    await stock.stop();
    stock = undefined;
    launcher.kill('SIGTERM');
    await exit;
    assert.deepEqual(await survivorsAfter(work, 10_000), []);
  });
});
