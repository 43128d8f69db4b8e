// Real sshd on loopback: exec, upload, forward, the remote wrapper's cleanup on link loss, and clear connect errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tar from 'tar';
import getPort from 'get-port';
import { UserError } from '../../src/errors.js';
import { startWrapped } from '../../src/process/wrapped-process.js';
import { makeControlDir, SshTransport } from '../../src/ssh/ssh-transport.js';
import type { SshSettings } from '../../src/ssh/ssh-target.js';
import { fixtureBin, isAlive, pidsMatching, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let control: ReturnType<typeof makeControlDir>;
let settings: SshSettings;
let node: SshTransport;
const markers: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
const track = <T extends { stop: () => Promise<unknown> }>(p: T): T => {
  closers.push(() => p.stop());
  return p;
};
const mark = () => {
  const m = uniqueMarker();
  markers.push(m);
  return m;
};
const work = mkdtempSync('/tmp/lr-work-');

before(async () => {
  sshd = await startSshd();
  control = makeControlDir();
  settings = { configFile: sshd.configFile, controlDir: control.dir, connectTimeoutSeconds: 5 };
  node = new SshTransport({ name: 'relaynode', host: sshd.alias }, settings);
  await node.connect();
});

after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await node?.close();
  markers.forEach(reap);
  await sshd?.stop();
  control?.remove();
  rmSync(work, { recursive: true, force: true });
});

/** The pid of the ControlMaster for `node`, from `ssh -O check`. */
async function masterPid(t: SshTransport): Promise<number> {
  const { execFileSync } = await import('node:child_process');
  // `ssh -O check` reports "Master running (pid=N)" on stderr.
  const out = execFileSync('sh', ['-c', 'ssh -O check "$@" 2>&1', 'sh', ...t.baseArgs()], { encoding: 'utf8' });
  const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
  assert.ok(pid > 0, out);
  return pid;
}

describe('ssh transport against a real sshd', { timeout: 240_000 }, () => {
  it('connects through a Host alias and runs commands over one master connection', async () => {
    // sshd (LogLevel VERBOSE) logs each TCP connection's authentication and each session with the connection's port.
    const newLog = (from: number) => sshd.logs().slice(from);
    const sessions = (log: string) => [...log.matchAll(/Starting session: command for root from 127\.0\.0\.1 port (\d+)/g)].map((m) => m[1]);
    const logins = (log: string) => [...log.matchAll(/Accepted publickey for root from 127\.0\.0\.1 port (\d+)/g)].map((m) => m[1]);
    const masterPort = logins(sshd.logs()).at(-1);
    const from = sshd.logs().length;
    for (let i = 0; i < 3; i++) assert.equal((await node.exec(['sh', '-c', 'echo "$1 $2"', 'x', 'hello', "it's"])).stdout, "hello it's");
    assert.ok(await waitFor(() => sessions(newLog(from)).length === 3, 5000), newLog(from));
    assert.deepEqual(logins(newLog(from)), [], 'no new ssh connection was authenticated');
    assert.deepEqual(sessions(newLog(from)), [masterPort, masterPort, masterPort], 'all three sessions ran on the master connection');
    assert.ok((await masterPid(node)) > 0);
    // Positive control: the same log shows a connection of its own for a transport without a master.
    const from2 = sshd.logs().length;
    const { controlDir: _master, ...noMaster } = settings;
    await new SshTransport({ name: 'relaynode', host: sshd.alias }, noMaster).exec(['true']);
    assert.ok(await waitFor(() => sessions(newLog(from2)).length === 1, 5000), newLog(from2));
    const direct = logins(newLog(from2));
    assert.equal(direct.length, 1, newLog(from2));
    assert.notEqual(direct[0], masterPort);
    assert.deepEqual(sessions(newLog(from2)), direct);
  });

  it('reports a failing remote command with node, exit meaning and stderr', async () => {
    await assert.rejects(node.exec([fixtureBin('exit-with.mjs'), '3', 'disk full']), (e: Error) => {
      assert.match(e.message, /node relaynode: .* failed \(exit code 3/);
      assert.match(JSON.stringify(e), /disk full/);
      return true;
    });
  });

  it('uploads a file stream and a tar stream with progress', async () => {
    const dest = join(work, 'up', 'slice.bin');
    const data = Buffer.alloc(300_000, 7);
    let seen = 0;
    await node.upload(Readable.from([data]), dest, { onProgress: (n) => (seen = n) });
    assert.equal(seen, data.length);
    assert.deepEqual(readFileSync(dest), data);

    const src = join(work, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'a.txt'), 'alpha');
    await node.uploadTar(tar.c({ cwd: src }, ['sub']) as unknown as Readable, join(work, 'tree'));
    assert.equal(readFileSync(join(work, 'tree', 'sub', 'a.txt'), 'utf8'), 'alpha');
  });

  it('forwards a port on the node to the launcher', async () => {
    const port = await getPort({ host: '127.0.0.1' });
    const server = http.createServer((_q, s) => s.end('through the tunnel')).listen(port, '127.0.0.1');
    closers.push(async () => {
      server.closeAllConnections();
      server.close();
    });
    const f = await node.forward('127.0.0.1', port);
    closers.push(f.stop);
    assert.notEqual(f.address, `127.0.0.1:${port}`);
    const body = await (await fetch(`http://${f.address}/`)).text();
    assert.equal(body, 'through the tunnel');
    await f.stop();
  });
});

describe('remote wrapper over ssh', { timeout: 240_000 }, () => {
  it('passes the secret on stdin into the env and exits with the command', async () => {
    const out: string[] = [];
    const p = track(startWrapped(
      node,
      { label: 'env', argv: [fixtureBin('print-env.mjs')], secret: 'per-launch-secret', wrapper: { name: `env-${mark()}`, runDir: work, secretEnv: 'LLAMA_RELAY_SECRET' } },
      { onLine: (l) => out.push(l) },
    ));
    const o = await p.done;
    assert.equal(o.exitCode, 0, o.stderrTail.join('\n'));
    assert.ok(out.includes('env LLAMA_RELAY_SECRET=per-launch-secret'), out.join('\n'));
    assert.ok(!o.command.includes('per-launch-secret'));
  });

  it('stop() leaves nothing running on the node', async () => {
    const m = mark();
    const p = track(startWrapped(node, { label: 'tree', argv: [fixtureBin('forever.mjs'), '--child', m], wrapper: { name: `stop-${m}`, runDir: work, graceSeconds: 1 } }));
    assert.ok(await waitFor(() => pidsMatching(`grandchild ${m}`).length > 0, 8000));
    await p.stop();
    assert.deepEqual(await survivorsAfter(m, 5000), []);
  });

  it('kills the remote process group when the ssh connection drops', async () => {
    const m = mark();
    const p = track(startWrapped(node, { label: 'tree', argv: [fixtureBin('forever.mjs'), '--child', m], wrapper: { name: `drop-${m}`, runDir: work, graceSeconds: 1 } }));
    assert.ok(await waitFor(() => p.childPgid() !== undefined, 8000));
    const master = await masterPid(node);
    process.kill(master, 'SIGKILL'); // the TCP connection goes with it
    const o = await p.done;
    assert.equal(o.exitCode, 255);
    assert.deepEqual(await survivorsAfter(m, 10_000), []);
    await node.connect(); // a fresh master for the next tests
  });

  it('kills the remote process group when the link goes silent (heartbeat)', async () => {
    const m = mark();
    const p = track(startWrapped(node, {
      label: 'tree',
      argv: [fixtureBin('forever.mjs'), m],
      wrapper: { name: `silent-${m}`, runDir: work, graceSeconds: 1, heartbeatSeconds: 2 },
    }));
    assert.ok(await waitFor(() => p.childPgid() !== undefined, 8000));
    const master = await masterPid(node);
    process.kill(master, 'SIGSTOP'); // connection stays open, nothing flows
    try {
      // Only node-side processes count; the launcher's own ssh client is frozen along with its master.
      assert.deepEqual(await survivorsAfter(m, 10_000, /^ssh /), []);
    } finally {
      process.kill(master, 'SIGKILL');
      process.kill(master, 'SIGCONT');
    }
    await p.stop();
    await node.connect();
  });

  it('kills the remote process group when the launcher is SIGKILLed', async () => {
    const m = mark();
    const own = makeControlDir();
    closers.push(async () => own.remove());
    const cfg = {
      target: { name: 'relaynode', host: sshd.alias },
      settings: { ...settings, controlDir: own.dir },
      argv: [fixtureBin('forever.mjs'), '--child', m],
      wrapper: { name: `lk-${m}`, runDir: work, graceSeconds: 1 },
    };
    const launcher = spawn(process.execPath, ['--import', 'tsx', new URL('../fixtures/launch-wrapped.ts', import.meta.url).pathname, JSON.stringify(cfg), m], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    closers.push(async () => launcher.kill('SIGKILL'));
    let out = '';
    launcher.stdout.on('data', (d) => (out += d));
    assert.ok(await waitFor(() => out.includes('grandchild pid='), 20_000), out);
    launcher.kill('SIGKILL');
    assert.deepEqual(await survivorsAfter(m, 10_000), []);
    // The orphaned master lingers only on the launcher side (ControlPersist); close it.
    await new SshTransport(cfg.target, cfg.settings).close();
  });
});

describe('connection errors name the node and the fix', { timeout: 240_000 }, () => {
  it('unreachable host (nothing listening)', async () => {
    const closed = await getPort({ host: '127.0.0.1' });
    const t = new SshTransport({ name: '127.0.0.1:' + closed, host: '127.0.0.1', port: closed }, { ...settings, configFile: sshd.configFile });
    await assert.rejects(t.connect(), (e: Error) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /node 127\.0\.0\.1:\d+: 127\.0\.0\.1 refused the ssh connection/);
      return true;
    });
  });

  it('wrong user', async () => {
    const t = new SshTransport({ name: `nobody@${sshd.alias}`, host: sshd.alias, user: 'nobody' }, settings);
    await assert.rejects(t.connect(), (e: Error) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, /node nobody@relaynode: ssh authentication failed for nobody@relaynode \(wrong user or key\)/);
      assert.ok(e.next.some((s) => s.includes('ssh-copy-id')));
      return true;
    });
  });

  it('unknown host key is refused unless --accept-new-host-keys', async () => {
    // Its own control dir: the alias points at the same endpoint, and %C would reuse the trusted master.
    const own = makeControlDir();
    closers.push(async () => own.remove());
    const settings = { configFile: sshd.configFile, controlDir: own.dir, connectTimeoutSeconds: 5 };
    const t = new SshTransport({ name: sshd.unknownKeyAlias, host: sshd.unknownKeyAlias }, settings);
    await assert.rejects(t.connect(), (e: Error) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, /host key of relaynode-newkey is not known/);
      return true;
    });
    const accepting = new SshTransport({ name: sshd.unknownKeyAlias, host: sshd.unknownKeyAlias }, { ...settings, acceptNewHostKeys: true });
    await accepting.connect();
    closers.push(() => accepting.close());
    assert.match(readFileSync(join(sshd.dir, 'empty_known_hosts'), 'utf8'), /ssh-ed25519/);
  });
});

describe('closing the transport', { timeout: 60_000 }, () => {
  it('close() ends the ControlMaster process', async () => {
    const t = new SshTransport({ name: 'relaynode', host: sshd.alias }, settings);
    await t.connect();
    const master = await masterPid(t);
    assert.equal(isAlive(master), true);
    await t.close();
    assert.ok(await waitFor(() => !isAlive(master), 10_000), `master ${master} still running after close()`);
    assert.equal(await t.masterAlive(), false);
    await node.connect(); // the suite's own transport shares the master (same control path); the after hook closes it
  });
});
