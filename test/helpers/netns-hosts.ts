// Hosts as network namespaces on one bridge, each running a real sshd on its own address: a machine whose link can be
// taken down (ip link set ... down) while its processes keep running, as a laptop that leaves the Wi-Fi. They share
// this machine's filesystem; a process started over ssh to a host runs inside that host's namespace.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, type ManagedProcess } from '../../src/process/managed-process.js';
import { waitForPort } from '../../src/ssh/wait-for-port.js';

export interface NsHost {
  /** ssh alias in the config file. */
  readonly alias: string;
  readonly ns: string;
  readonly address: string;
  /** Takes the host's link down (its processes keep running, unreachable) or up again. */
  link(up: boolean): void;
  /** Pids of every process inside the host's namespace except its sshd listener. */
  pids(): number[];
}

export interface NsHosts {
  readonly hosts: NsHost[];
  readonly configFile: string;
  /** This machine's address on the bridge (where the hosts reach it). */
  readonly bridgeAddress: string;
  stop(): Promise<void>;
}

const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { stdio: 'pipe', encoding: 'utf8' });

/**
 * Throws (with ip's stderr) when namespaces cannot be made here: no root, no CAP_NET_ADMIN, no iproute2. The ssh
 * config for the hosts goes to `configFile` (in the test's work dir, so the ssh processes that read it carry its
 * path); the daemons' own files live in a dir of their own, so they are not mistaken for the test's leftovers.
 */
export async function startNsHosts(configFile: string, names: readonly string[]): Promise<NsHosts> {
  const tag = `${process.pid % 10000}`;
  const net = 100 + Math.floor(Math.random() * 150);
  const bridge = `lrbr${tag}`;
  const sshDir = mkdtempSync('/tmp/lr-nshosts-');
  mkdirSync('/run/sshd', { recursive: true });
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  keygen(join(sshDir, 'host_ed25519'));
  keygen(join(sshDir, 'id_ed25519'));
  writeFileSync(join(sshDir, 'authorized_keys'), readFileSync(join(sshDir, 'id_ed25519.pub')));
  const hostPub = readFileSync(join(sshDir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const made: string[] = [];
  const daemons: ManagedProcess[] = [];
  const cleanup = async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    for (const ns of made) {
      // whatever a test left inside goes with its namespace
      for (const pid of sh(`ip netns pids ${ns} 2>/dev/null || true`).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      sh(`ip link del ${ns}h 2>/dev/null; ip netns del ${ns} 2>/dev/null; true`);
    }
    sh(`ip link del ${bridge} 2>/dev/null; true`);
    rmSync(sshDir, { recursive: true, force: true });
  };
  try {
    sh(`ip link add ${bridge} type bridge && ip addr add 10.214.${net}.1/24 dev ${bridge} && ip link set ${bridge} up`);
    const hosts: NsHost[] = [];
    const config: string[] = [];
    const known: string[] = [];
    for (const [i, alias] of names.entries()) {
      const ns = `lrns${tag}${String.fromCharCode(97 + i)}`;
      const address = `10.214.${net}.${11 + i}`;
      made.push(ns);
      sh(
        `ip netns add ${ns} && ip link add ${ns}h type veth peer name ${ns}n && ip link set ${ns}n netns ${ns} && ` +
          `ip link set ${ns}h master ${bridge} && ip link set ${ns}h up && ` +
          `ip netns exec ${ns} ip addr add ${address}/24 dev ${ns}n && ip netns exec ${ns} ip link set ${ns}n up && ip netns exec ${ns} ip link set lo up`,
      );
      const cfg = join(sshDir, `sshd_${alias}`);
      writeFileSync(
        cfg,
        [
          'Port 22',
          `ListenAddress ${address}`,
          `HostKey ${sshDir}/host_ed25519`,
          `PidFile ${sshDir}/sshd_${alias}.pid`,
          `AuthorizedKeysFile ${sshDir}/authorized_keys`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PermitRootLogin prohibit-password',
          'StrictModes no',
          'UsePAM no',
          // a session whose client went silent ends within seconds, as a real sshd configured for flaky links
          'ClientAliveInterval 2',
          'ClientAliveCountMax 2',
          'MaxSessions 50',
          'MaxStartups 50',
          '',
        ].join('\n'),
      );
      const d = startProcess({ label: `sshd ${alias}`, command: 'ip', args: ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', cfg] }, { forceKillAfterMs: 2000 });
      daemons.push(d);
      if (!(await waitForPort(address, 22, { timeoutMs: 10_000, until: d.done }))) throw new Error(`sshd in ${ns} did not start`);
      config.push(
        `Host ${alias}`,
        `  HostName ${address}`,
        '  User root',
        `  IdentityFile ${sshDir}/id_ed25519`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${sshDir}/known_hosts`,
        '  GlobalKnownHostsFile /dev/null',
        '  IdentityAgent none',
      );
      known.push(`${address} ${hostPub}`);
      hosts.push({
        alias,
        ns,
        address,
        link: (up) => void sh(`ip link set ${ns}h ${up ? 'up' : 'down'}`),
        pids: () => {
          const listener = d.pid;
          return sh(`ip netns pids ${ns}`)
            .split('\n')
            .filter(Boolean)
            .map(Number)
            .filter((p) => p !== listener && !/^\/usr\/sbin\/sshd -D/.test(argsOf(p)));
        },
      });
    }
    writeFileSync(join(sshDir, 'known_hosts'), `${known.join('\n')}\n`);
    writeFileSync(configFile, `${config.join('\n')}\n`);
    return { hosts, configFile, bridgeAddress: `10.214.${net}.1`, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A process's command line ('' once it is gone). */
export function argsOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}
