// Starts a real Debian sshd on a loopback port with generated keys, plus an ssh_config (Host alias) to reach it.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import getPort from 'get-port';
import { startProcess, type ManagedProcess } from '../../src/process/managed-process.js';
import { waitForPort } from '../../src/ssh/wait-for-port.js';

export interface TestSshd {
  dir: string;
  port: number;
  /** Alias with a known host key, user root, our identity. */
  alias: string;
  /** Same server, but with an empty known_hosts file. */
  unknownKeyAlias: string;
  configFile: string;
  logs: () => string;
  /** Cuts every ssh connection from the server side (kills the per-connection sshd processes, not their sessions). */
  dropConnections: () => number;
  stop: () => Promise<void>;
}

function descendants(pid: number, only?: RegExp): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)!;
      return [Number(m[1]), Number(m[2]), m[3]!] as const;
    });
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp, args] of rows) if (pp === p) (!only || only.test(args)) && out.push(c), walk(c);
  };
  walk(pid);
  return out;
}

export async function startSshd(): Promise<TestSshd> {
  const dir = mkdtempSync('/tmp/lr-sshd-');
  chmodSync(dir, 0o700);
  mkdirSync('/run/sshd', { recursive: true }); // privilege separation directory
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  keygen(join(dir, 'host_ed25519'));
  keygen(join(dir, 'id_ed25519'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id_ed25519.pub')));
  const port = await getPort({ host: '127.0.0.1' });
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/host_ed25519`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'AllowUsers root',
      'StrictModes no',
      'UsePAM no',
      'ClientAliveInterval 2',
      'ClientAliveCountMax 2',
      'MaxSessions 50',
      'MaxStartups 50',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const hostPub = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);
  writeFileSync(join(dir, 'empty_known_hosts'), '');
  const hostBlock = (alias: string, knownHosts: string) => [
    `Host ${alias}`,
    '  HostName 127.0.0.1',
    `  Port ${port}`,
    '  User root',
    `  IdentityFile ${dir}/id_ed25519`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '  GlobalKnownHostsFile /dev/null',
    '  IdentityAgent none',
  ];
  const configFile = join(dir, 'ssh_config');
  writeFileSync(
    configFile,
    [...hostBlock('relaynode', join(dir, 'known_hosts')), ...hostBlock('relaynode-newkey', join(dir, 'empty_known_hosts')), ''].join('\n'),
  );
  let log = '';
  const sshd: ManagedProcess = startProcess(
    { label: 'test sshd', command: '/usr/sbin/sshd', args: ['-D', '-e', '-f', join(dir, 'sshd_config')] },
    { onLine: (l) => (log += `${l}\n`), forceKillAfterMs: 2000 },
  );
  if (!(await waitForPort('127.0.0.1', port, { timeoutMs: 10_000, until: sshd.done }))) {
    await sshd.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`sshd did not start:\n${log}`);
  }
  return {
    dir,
    port,
    alias: 'relaynode',
    unknownKeyAlias: 'relaynode-newkey',
    configFile,
    logs: () => log,
    dropConnections: () => {
      const conns = sshd.pid ? descendants(sshd.pid, /^sshd: /) : [];
      for (const pid of conns) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      return conns.length;
    },
    stop: async () => {
      // Per-connection sshd processes outlive the listener; reap the ones this sshd forked.
      const kids = sshd.pid ? descendants(sshd.pid) : [];
      await sshd.stop();
      for (const pid of kids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
