import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifySshStderr, sshFailureError } from '../../src/ssh/ssh-errors.js';
import { sshArgs, sshExecArgs, sshForwardArgs, sshMasterArgs } from '../../src/ssh/ssh-options.js';

const opt = (args: string[], key: string) => args.find((a) => a.startsWith(`${key}=`));

describe('ssh argv builders', () => {
  const t = { name: 'bob@gpu-box:2222', host: 'gpu-box', user: 'bob', port: 2222 };
  it('is non-interactive, strict about host keys and keeps links alive', () => {
    const a = sshArgs(t, { controlDir: '/tmp/lr-x' });
    assert.equal(opt(a, 'BatchMode'), 'BatchMode=yes');
    assert.equal(opt(a, 'StrictHostKeyChecking'), 'StrictHostKeyChecking=yes');
    assert.equal(opt(a, 'ConnectTimeout'), 'ConnectTimeout=10');
    assert.equal(opt(a, 'ServerAliveInterval'), 'ServerAliveInterval=5');
    assert.equal(opt(a, 'ServerAliveCountMax'), 'ServerAliveCountMax=3');
    assert.equal(opt(a, 'ControlMaster'), 'ControlMaster=no', 'clients reuse a master but never become one');
    assert.equal(opt(a, 'ControlPath'), 'ControlPath=/tmp/lr-x/%C');
    assert.deepEqual(a.slice(-5), ['-p', '2222', '-l', 'bob', 'gpu-box']);
  });
  it('accepts new host keys only when asked', () => {
    assert.equal(opt(sshArgs(t, { acceptNewHostKeys: true }), 'StrictHostKeyChecking'), 'StrictHostKeyChecking=accept-new');
  });
  it('honours -F and aliases', () => {
    const a = sshArgs({ name: 'n1', host: 'n1' }, { configFile: '/x/ssh_config' });
    assert.deepEqual(a.slice(0, 2), ['-F', '/x/ssh_config']);
    assert.equal(a.at(-1), 'n1');
    assert.equal(opt(a, 'ControlPath'), 'ControlPath=none', 'no control dir: no multiplexing');
  });
  it('master: auto (clears stale sockets), persists, runs `true`', () => {
    const a = sshMasterArgs(t, { controlDir: '/tmp/lr-x', controlPersistSeconds: 7 });
    assert.equal(opt(a, 'ControlMaster'), 'ControlMaster=auto');
    assert.equal(opt(a, 'ControlPersist'), 'ControlPersist=7');
    assert.equal(a.at(-1), 'true');
  });
  it('exec: no pty, one command line after the destination', () => {
    const a = sshExecArgs(t, {}, "echo 'hi'");
    assert.equal(a[0], '-T');
    assert.deepEqual(a.slice(-2), ['gpu-box', "echo 'hi'"]);
  });
  it('forward: own connection, loopback only, fails if the port cannot be bound', () => {
    const a = sshForwardArgs(t, { controlDir: '/tmp/lr-x' }, { localPort: 8000, remoteHost: '127.0.0.1', remotePort: 47103 });
    assert.ok(a.includes('127.0.0.1:8000:127.0.0.1:47103'));
    assert.ok(a.includes('ExitOnForwardFailure=yes'));
    assert.equal(opt(a, 'ControlPath'), 'ControlPath=none');
    // Not -N: a session that ends with ssh's stdin, so the forward ends with the launcher (up-ssh's SIGKILL test).
    assert.ok(!a.includes('-N'));
    assert.deepEqual(a.slice(-2), ['gpu-box', 'exec cat >/dev/null']);
  });
});

describe('ssh failure classification', () => {
  const table: [string, ReturnType<typeof classifySshStderr>][] = [
    ['Host key verification failed.', 'host-key-unknown'],
    ['No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.', 'host-key-unknown'],
    ['@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @', 'host-key-changed'],
    ['bob@gpu-box: Permission denied (publickey).', 'auth'],
    ['ssh: connect to host gpu-box port 22: Connection refused', 'refused'],
    ['ssh: connect to host 10.9.9.9 port 22: Connection timed out', 'unreachable'],
    ['ssh: connect to host 10.9.9.9 port 22: No route to host', 'unreachable'],
    ['ssh: Could not resolve hostname gpu-bx: Name or service not known', 'unknown-host'],
    ['Connection closed by 10.0.0.5 port 22', 'closed'],
    ['bash: line 1: llama-server: command not found', undefined],
  ];
  for (const [stderr, kind] of table) it(`${kind}: ${stderr.slice(0, 40)}`, () => assert.equal(classifySshStderr(stderr), kind));

  it('names the node and the next step', () => {
    const e = sshFailureError({ name: 'bob@gpu-box', host: 'gpu-box', user: 'bob' }, 'Permission denied (publickey).');
    assert.match(e!.message, /^node bob@gpu-box: ssh authentication failed for bob@gpu-box/);
    assert.ok(e!.next.some((n) => n.includes('ssh-copy-id bob@gpu-box')));
  });
});
