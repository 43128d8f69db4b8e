// `llama-relay up` end to end through a real sshd with fixture ranks: a 3-node chain, kill cases, bad input.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { streamCompletion } from '../../src/runtime/head-client.js';
import { carrying, fixtureBin, isAlive, pidsMatching, processKinds, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { skipOrFail } from '../helpers/prereq.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
let sshd: TestSshd;
const work = mkdtempSync('/tmp/lr-up-');
const markers: string[] = [];
const launchers: ChildProcessWithoutNullStreams[] = [];

before(async () => {
  sshd = await startSshd();
});
after(async () => {
  for (const l of launchers) if (l.exitCode === null) l.kill('SIGKILL');
  await waitFor(() => launchers.every((l) => l.exitCode !== null || l.signalCode !== null), 5000);
  markers.forEach(reap);
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Launch {
  proc: ChildProcessWithoutNullStreams;
  marker: string;
  /** This launch's own dir (its TMPDIR and its model's dir): every process it starts carries it in argv or environment. */
  dir: string;
  /** Every process seen carrying `dir` while the launcher ran (polled): the positive control of the leftover check. */
  seen: Map<number, string>;
  apiPort: number;
  events: { kind: string; [k: string]: unknown }[];
  stderr: () => string;
  exit: Promise<number | null>;
}

/** A free run of 4 ports below the ephemeral range, so outgoing connections cannot take a rank's port. */
async function stagePortBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 9000);
    const want = [base, base + 1, base + 2, base + 3];
    const got = await Promise.all(want.map((p) => getPort({ host: '127.0.0.1', port: p })));
    if (got.every((g, i) => g === want[i])) return base;
  }
}

/**
 * Starts the CLI with a dir of its own as TMPDIR and the model in it, so every process it starts can be found afterwards:
 * ranks (and remote ranks) by the model path in argv, ssh masters and forwards by TMPDIR in their environment.
 */
async function launch(nodes: string, extra: string[] = [], llamaServer = fixtureBin('fake-llama-server.mjs')): Promise<Launch> {
  const marker = uniqueMarker('lrup');
  const dir = join(work, marker);
  mkdirSync(dir, { mode: 0o700 }); // the rank wrapper refuses a run dir others can read
  markers.push(dir);
  const model = join(dir, `${marker}.gguf`);
  writeFileSync(model, 'not a real model');
  const apiPort = await getPort({ host: '127.0.0.1' });
  const base = await stagePortBase();
  const args = [
    cli, 'up', model, '--nodes', nodes, '--layers', '12', '--llama-server', llamaServer,
    '--api-port', String(apiPort), '--stage-port-base', String(base), '-F', sshd.configFile, '--json',
    '--run-dir', dir, '--ready-timeout', '30', ...extra,
  ];
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } });
  launchers.push(proc);
  const events: Launch['events'] = [];
  let buf = '';
  let err = '';
  const seen = new Map<number, string>();
  const look = (): boolean => {
    try {
      for (const p of carrying(dir)) seen.set(p.pid, p.args);
      return true;
    } catch (e) {
      seen.set(-1, `the marker query failed: ${String(e)}`); // shown by assertSaw
      return false;
    }
  };
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        events.push(JSON.parse(line) as Launch['events'][number]);
        // Also at every event: a short --prompt run's processes (a rank's ssh, the API's forward) can all live
        // between two polls on a loaded machine, but each is up when the launcher reports on it.
        look();
      } catch {
        /* not an event */
      }
    }
  });
  proc.stderr.on('data', (d) => (err += d));
  // 'close', not 'exit': the exit can come before the last of stdout and stderr has been read.
  const exit = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  void (async () => {
    while (proc.exitCode === null && proc.signalCode === null && look()) await new Promise((r) => setTimeout(r, 100));
  })();
  return { proc, marker, dir, seen, apiPort, events, stderr: () => err, exit };
}

function assertSaw(l: Launch, kinds: string[]): void {
  const got = processKinds(l.seen.values());
  const saw = () => `${[...got].join(', ')}:\n${[...l.seen.values()].map((a) => a.slice(0, 200)).join('\n')}`;
  for (const k of kinds) assert.ok(got.has(k), `the marker query never saw a ${k} while the launcher ran; it saw ${saw()}`);
}

const chainReady = (l: Launch) => waitFor(() => l.events.some((e) => e.kind === 'info' && String(e.message).startsWith('chain ready')), 45_000, 200);

/** The fixture llama-server process (not its wrapper) of the rank with these layers. */
function rankPid(marker: string, layers: string): number | undefined {
  return pidsMatching(`${marker}.gguf --layer-range ${layers}`).find((pid) => {
    try {
      return execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' }).trim() === 'node';
    } catch {
      return false;
    }
  });
}

describe('up over a real sshd (fixture ranks)', { timeout: 240_000 }, () => {
  it('runs a 3-node chain (remote head, local, remote) for one prompt and leaves nothing running', async () => {
    const l = await launch(`${sshd.alias},local,root@${sshd.alias}`, ['--prompt', 'hi', '--max-tokens', '6']);
    const code = await l.exit;
    assert.equal(code, 0, l.stderr());
    const text = l.events.filter((e) => e.kind === 'token').map((e) => e.text).join('');
    assert.equal(text, 'Hello from the relay chain.');
    const ready = l.events.filter((e) => e.kind === 'node-phase' && e.phase === 'ready').map((e) => e.rank);
    assert.deepEqual(ready, [2, 1, 0], 'downstream first');
    const api = l.events.find((e) => e.kind === 'api-listening');
    assert.equal(api?.url, `http://127.0.0.1:${l.apiPort}`, 'remote head API forwarded to --api-port');
    assertSaw(l, ['rank', 'rank over ssh', 'ssh master', 'ssh forward']);
    assert.deepEqual(await survivorsAfter(l.dir, 10_000), []);
  });

  it('--tunnel-activations: ranks bind loopback and dial through ssh tunnels', async () => {
    const l = await launch(`${sshd.alias},local,root@${sshd.alias}`, ['--prompt', 'hi', '--max-tokens', '4', '--tunnel-activations', '--server']);
    assert.ok(await chainReady(l), l.stderr());
    const argvs = pidsMatching(`${l.marker}.gguf --layer-range`).map((pid) => execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }));
    const flag = (a: string, f: string) => new RegExp(`${f} (\\S+)`).exec(a)?.[1];
    const listens = new Set(argvs.map((a) => flag(a, '--stage-listen')));
    assert.ok(argvs.length >= 3);
    for (const a of argvs) {
      // Three node names are three machines to the launcher: every rank has one to itself and busy-polls its links.
      assert.equal(flag(a, '--stage-poll'), '10000', a.slice(0, 300));
      assert.match(flag(a, '--stage-listen')!, /^127\.0\.0\.1:/);
      assert.ok(!listens.has(flag(a, '--stage-next')), `next should be a tunnel, not a listen address: ${a.slice(0, 200)}`);
    }
    const api = `http://127.0.0.1:${l.apiPort}`;
    assert.equal((await streamCompletion(api, { prompt: 'x', maxTokens: 4 }, () => undefined)).text, 'Hello from the relay');
    // The tunnels are ssh processes of this launch (found by its TMPDIR), and every rank dials one of them.
    const tunnels = carrying(l.dir).filter((p) => /^ssh .* -[LR] 127\.0\.0\.1:/.test(p.args));
    const tunnelPorts = new Set(tunnels.map((p) => /-[LR] 127\.0\.0\.1:(\d+):/.exec(p.args)![1]));
    for (const a of argvs) assert.ok(tunnelPorts.has(/--stage-next 127\.0\.0\.1:(\d+)/.exec(a)?.[1] ?? ''), `no tunnel for ${a.slice(0, 200)}`);
    l.proc.kill('SIGTERM');
    await l.exit;
    assert.deepEqual(await survivorsAfter(l.dir, 10_000), [], 'tunnels, masters or ranks left running');
    for (const t of tunnels) assert.equal(isAlive(t.pid), false, `tunnel left running: ${t.args}`);
  });

  it('server: restarts a killed rank, serves again, and SIGKILL of the launcher leaves nothing running', async () => {
    const l = await launch(`local,${sshd.alias},root@${sshd.alias}`, ['--server']);
    assert.ok(await chainReady(l), l.stderr());
    const api = `http://127.0.0.1:${l.apiPort}`;
    assert.equal((await streamCompletion(api, { prompt: 'x', maxTokens: 2 }, () => undefined)).text, 'Hello from');
    const gen = await fetch(`${api}/v1/generate`, { method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 3 }) });
    assert.deepEqual(await gen.json(), { text: 'Hello from the', tokens: 3 });
    assert.ok(await waitFor(() => l.events.some((e) => e.kind === 'requests' && (e.total as number) >= 2), 2000), 'request counts reported');

    const victim = rankPid(l.marker, '4:8');
    assert.ok(victim, 'rank 1 process not found');
    process.kill(victim, 'SIGKILL');
    assert.ok(await waitFor(() => l.events.some((e) => e.kind === 'rank-exited' && e.rank === 1), 10_000));
    const ex = l.events.find((e) => e.kind === 'rank-exited')!;
    assert.equal(ex.exitCode, 137);
    assert.equal(ex.restarting, true);
    assert.ok(await waitFor(() => l.events.filter((e) => e.kind === 'node-phase' && e.rank === 1 && e.phase === 'ready').length >= 2, 20_000));
    assert.ok(
      await waitFor(async () => {
        try {
          return (await streamCompletion(api, { prompt: 'x', maxTokens: 2 }, () => undefined)).text === 'Hello from';
        } catch {
          return false;
        }
      }, 15_000, 300),
      'chain did not serve again after the restart',
    );

    assertSaw(l, ['rank', 'rank over ssh', 'ssh master']);
    l.proc.kill('SIGKILL');
    // Nothing ignored: the orphaned ssh masters go too, ControlPersist (30 s) after their last session.
    assert.deepEqual(await survivorsAfter(l.dir, 45_000), []);
  });

  it('SIGKILL of a launcher with a remote head and ssh tunnels leaves nothing running, here or on the node', async () => {
    const l = await launch(`${sshd.alias},local`, ['--server', '--tunnel-activations']);
    assert.ok(await chainReady(l), l.stderr());
    assert.ok(await waitFor(() => processKinds(l.seen.values()).has('ssh reverse forward'), 5000));
    assertSaw(l, ['rank', 'rank over ssh', 'ssh master', 'ssh forward', 'ssh reverse forward']);
    l.proc.kill('SIGKILL');
    // The API forward and the tunnels are ssh processes of their own: they must end with the launcher too.
    assert.deepEqual(await survivorsAfter(l.dir, 45_000), []);
  });

  it('SIGTERM tears the chain down in order and exits', async () => {
    const l = await launch(`${sshd.alias},local`, ['--server']);
    assert.ok(await chainReady(l), l.stderr());
    // The positive control below needs the API forward sampled once before the teardown (a loaded CI host missed it).
    assert.ok(await waitFor(() => processKinds(l.seen.values()).has('ssh forward'), 5000), `no ssh forward seen: ${[...l.seen.values()].map((a) => a.slice(0, 120)).join('\n')}`);
    l.proc.kill('SIGTERM');
    await l.exit;
    assert.ok(l.events.filter((e) => e.kind === 'node-phase' && e.phase === 'stopped').length === 2);
    assertSaw(l, ['rank', 'rank over ssh', 'ssh master', 'ssh forward']);
    assert.deepEqual(await survivorsAfter(l.dir, 10_000), []);
  });

  it('cutting the ssh connections stops the remote ranks', async () => {
    const l = await launch(`local,${sshd.alias}`, ['--server']);
    assert.ok(await chainReady(l), l.stderr());
    const remoteRank = rankPid(l.marker, '6:12');
    assert.ok(remoteRank);
    // Kill the node-side sshd processes: the TCP link and every session on it drop at once.
    assert.ok(sshd.dropConnections() > 0, 'no ssh connection to cut');
    assert.ok(await waitFor(() => !isAlive(remoteRank), 10_000), 'remote rank survived the dropped connection');
    // The launcher notices (ssh exits 255) and reports it, naming the node.
    assert.ok(await waitFor(() => l.events.some((e) => e.kind === 'rank-exited' && e.rank === 1), 10_000));
    l.proc.kill('SIGTERM');
    await l.exit;
    assertSaw(l, ['rank', 'rank over ssh', 'ssh master']);
    assert.deepEqual(await survivorsAfter(l.dir, 10_000), []);
  });
});

describe('up: bad input names the node and what to do', { timeout: 240_000 }, () => {
  it('unreachable node', async () => {
    const closed = await getPort({ host: '127.0.0.1' });
    const l = await launch(`local,127.0.0.1:${closed}`, ['--prompt', 'x']);
    assert.equal(await l.exit, 2);
    assert.match(l.stderr(), new RegExp(`node 127\\.0\\.0\\.1:${closed}: 127\\.0\\.0\\.1 refused the ssh connection`));
    assert.deepEqual(await survivorsAfter(l.dir, 5000), []);
  });

  it('unreachable node (silent: a network namespace where nothing answers)', async (t) => {
    // A veth pair into a namespace this test creates; the address .99 does not exist, so packets go nowhere else.
    const ns = `lrt${process.pid}`;
    const net3 = 100 + Math.floor(Math.random() * 150);
    const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { stdio: 'pipe' });
    try {
      sh(`ip netns add ${ns} && ip link add ${ns}a type veth peer name ${ns}b && ip link set ${ns}b netns ${ns} && ip addr add 10.213.${net3}.1/24 dev ${ns}a && ip link set ${ns}a up && ip netns exec ${ns} ip link set ${ns}b up`);
    } catch (e) {
      sh(`ip link del ${ns}a 2>/dev/null; ip netns del ${ns} 2>/dev/null; true`);
      // Needs iproute2 (installed by .ci/run) and CAP_NET_ADMIN.
      return skipOrFail(t, `cannot create a network namespace here (${String((e as { stderr?: Buffer }).stderr ?? e).trim()})`, 'run as root with CAP_NET_ADMIN and iproute2');
    }
    try {
      const t0 = Date.now();
      const l = await launch(`local,root@10.213.${net3}.99`, ['--prompt', 'x', '--connect-timeout', '2']);
      assert.equal(await l.exit, 2);
      // Silence, not a refusal: the launcher waited out its connect timeout (a lower bound; no upper one).
      assert.ok(Date.now() - t0 >= 2000, `gave up after ${Date.now() - t0} ms, before the 2 s connect timeout`);
      assert.match(l.stderr(), new RegExp(`node root@10\\.213\\.${net3}\\.99: 10\\.213\\.${net3}\\.99 is unreachable \\(connection timed out\\)`));
      assert.match(l.stderr(), /check that the machine is on/);
      assert.deepEqual(await survivorsAfter(l.dir, 5000), []);
    } finally {
      sh(`ip link del ${ns}a 2>/dev/null; ip netns del ${ns} 2>/dev/null; true`);
    }
  });

  it('wrong user', async () => {
    const l = await launch(`local,nobody@${sshd.alias}`, ['--prompt', 'x']);
    assert.equal(await l.exit, 2);
    assert.match(l.stderr(), /node nobody@relaynode: ssh authentication failed .*wrong user or key/);
    assert.match(l.stderr(), /ssh-copy-id/);
    assert.deepEqual(await survivorsAfter(l.dir, 5000), []);
  });

  it('the API port is already taken', async () => {
    const l0 = await getPort({ host: '127.0.0.1' });
    const blocker = net.createServer().listen(l0, '127.0.0.1');
    try {
      const dir = join(work, uniqueMarker('lrup'));
      mkdirSync(dir, { mode: 0o700 });
      markers.push(dir);
      const model = join(dir, 'm.gguf');
      writeFileSync(model, '');
      const p = spawn(process.execPath, [cli, 'up', model, '--nodes', 'local,local', '--layers', '4', '--llama-server', fixtureBin('fake-llama-server.mjs'), '--api-port', String(l0), '--prompt', 'x', '--run-dir', dir], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, TMPDIR: dir },
      });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      const code = await new Promise((r) => p.on('close', r));
      assert.equal(code, 2);
      assert.match(err, new RegExp(`port ${l0} is already taken on this machine[\\s\\S]*--api-port`));
      assert.deepEqual(await survivorsAfter(dir, 5000), []);
    } finally {
      blocker.close();
    }
  });

  it('a node without llama-server or the model', async () => {
    const l = await launch(`local,${sshd.alias}`, ['--prompt', 'x'], '/nonexistent/llama-server');
    assert.equal(await l.exit, 2);
    assert.match(l.stderr(), /node relaynode: missing llama-server: \/nonexistent\/llama-server/);
    assert.match(l.stderr(), /node local: missing llama-server/);
    assert.deepEqual(await survivorsAfter(l.dir, 5000), []);
  });
});
