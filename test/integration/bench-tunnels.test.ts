// The ssh tunnels bench uses to reach a loopback-only ggml-rpc-server (issue 14 item 5), over a real sshd on loopback:
// from this machine to a node (ssh -L), from a node to this machine (ssh -R), and between two nodes (both, chained
// here). A TCP echo server stands in for the RPC server; bytes must come back through every tunnel, the node-side
// readiness check must see a listening port and not a closed one, and stopping a tunnel leaves no ssh behind.
import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { NodeHosts } from '../../src/runtime/node-hosts.js';
import { benchNodes } from '../../src/bench/bench-nodes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { sshConfigIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-tunnels');
let sshd: TestSshd;
let hosts: NodeHosts;
let echo: net.Server;
let echoPort = 0;
const savedTmp = process.env.TMPDIR;

before(async () => {
  sshd = await startSshd();
  // The ssh config lives in the work dir (every ssh process carries -F with its path), with a second alias: node "b".
  const config = sshConfigIn(work, sshd, ['relaynode-b']);
  process.env.TMPDIR = work.path; // ssh control sockets go into the work dir
  hosts = await NodeHosts.open(benchNodes(`local,${sshd.alias},relaynode-b`, undefined), { sshConfig: config, runDir: work.path });
  echo = net.createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
  await new Promise((r) => echo.once('listening', r));
  echoPort = (echo.address() as net.AddressInfo).port;
});

after(async () => {
  await hosts?.close();
  echo?.close();
  process.env.TMPDIR = savedTmp;
  work.remove();
  await sshd?.stop();
});

function roundTrip(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => {
      got += d;
      if (got.length >= payload.length) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.write(payload);
  });
}

const sshProcesses = (flag: string) => work.processes().filter((l) => / ssh /.test(` ${l.split(' ').slice(1).join(' ')}`) && l.includes(flag));

describe('bench tunnels to a loopback-only server, over a real sshd', { timeout: 120_000 }, () => {
  it('sees a listening port on a node through ssh, and not a closed one', async () => {
    assert.equal(await hosts.listening(1, echoPort), true);
    const closed = await getPort({ host: '127.0.0.1' });
    assert.equal(await hosts.listening(1, closed), false);
    assert.equal(await hosts.listening(0, echoPort), true);
  });

  for (const [name, from, to, flag] of [
    ['this machine -> node (ssh -L)', 0, 1, '-L'],
    ['node -> this machine (ssh -R)', 1, 0, '-R'],
    ['node -> other node (ssh -L here, ssh -R there)', 1, 2, '-R'],
  ] as const) {
    it(name, async () => {
      const listen = await getPort({ host: '127.0.0.1' });
      const t = await hosts.tunnel(from, listen, to, echoPort);
      try {
        assert.ok(sshProcesses(flag).length > 0, `positive control: the tunnel's ssh is found:\n${work.processes().join('\n')}`);
        const payload = `hello through ${name} ${'x'.repeat(10_000)}`;
        assert.equal(await roundTrip(listen, payload), payload);
      } finally {
        await t.stop();
      }
      const left = work.processes().filter((l) => / -[LR] /.test(l));
      assert.deepEqual(left, [], 'tunnel ssh processes left');
    });
  }

  it('refuses a tunnel between two processes on this machine (a planning bug)', async () => {
    await assert.rejects(hosts.tunnel(0, 1, 0, 2), /tunnel between two local nodes/);
  });
});
