// Maps ssh's stderr to what the user must do, naming the node; ssh itself exits 255 for all of these.
import { ExternalError, UserError } from '../errors.js';
import type { ProcessOutcome } from '../process/process-spec.js';
import { displayTarget, type SshTarget } from './ssh-target.js';

export type SshFailureKind = 'host-key-unknown' | 'host-key-changed' | 'auth' | 'refused' | 'unreachable' | 'unknown-host' | 'closed';

const patterns: [SshFailureKind, RegExp][] = [
  ['host-key-changed', /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i],
  ['host-key-unknown', /Host key verification failed|No \S+ host key is known for/i],
  ['auth', /Permission denied|Too many authentication failures|no mutual signature/i],
  ['refused', /Connection refused/i],
  ['unknown-host', /Could not resolve hostname|Name or service not known|nodename nor servname/i],
  ['unreachable', /timed out|No route to host|Network is unreachable|Host is down/i],
  ['closed', /Connection (closed|reset) by|kex_exchange_identification|Broken pipe|mux_client|Connection to .* closed/i],
];

export function classifySshStderr(stderr: string): SshFailureKind | undefined {
  return patterns.find(([, re]) => re.test(stderr))?.[0];
}

/** The user-facing error for an ssh failure on `target`, or undefined if stderr does not look like one. */
export function sshFailureError(target: SshTarget, stderr: string, s: { configFile?: string } = {}): UserError | undefined {
  const kind = classifySshStderr(stderr);
  if (!kind) return undefined;
  const who = `node ${target.name}`;
  const dest = displayTarget(target);
  const port = target.port ? ` -p ${target.port}` : '';
  const cfg = s.configFile ? ` -F ${s.configFile}` : '';
  switch (kind) {
    case 'host-key-unknown':
      return new UserError(`${who}: the host key of ${target.host} is not known, and llama-relay never accepts host keys silently`, [
        `connect once by hand and verify the fingerprint: ssh${cfg}${port} ${dest}`,
        'or, on a network you trust, pass --accept-new-host-keys',
      ]);
    case 'host-key-changed':
      return new UserError(`${who}: the host key of ${target.host} has CHANGED since it was recorded (possible man-in-the-middle, or a reinstalled host)`, [
        `if the change is expected: ssh-keygen -R ${target.host}, then connect once by hand to verify the new key`,
      ]);
    case 'auth':
      return new UserError(`${who}: ssh authentication failed for ${dest} (wrong user or key)`, [
        `check the user name: write the node as user@${target.host}`,
        'load your key into the agent: ssh-add',
        `install your public key on the node: ssh-copy-id${port} ${dest}`,
      ]);
    case 'refused':
      return new UserError(`${who}: ${target.host} refused the ssh connection${target.port ? ` on port ${target.port}` : ''}`, [
        'check that sshd is running on the node',
        'check the port: write the node as host:port',
      ]);
    case 'unknown-host':
      return new UserError(`${who}: cannot resolve the host name ${target.host}`, [
        'check the spelling, or add a Host entry to your ssh config',
      ]);
    case 'unreachable':
      return new UserError(`${who}: ${target.host} is unreachable (connection timed out)`, [
        'check that the machine is on and on your network (ping it)',
        'check firewalls between this machine and the node',
      ]);
    case 'closed':
      return new UserError(`${who}: the ssh connection to ${dest} was closed`, [
        'check the node is up; run the command again to reconnect',
      ]);
  }
}

/** The error to throw for a failed remote command: an ssh problem (exit 255) or the command's own failure. */
export function remoteFailure(target: SshTarget, o: ProcessOutcome, what: string, s: { configFile?: string } = {}): Error {
  const stderr = o.stderrTail.join('\n');
  if (o.exitCode === 255) {
    const e = sshFailureError(target, stderr, s);
    if (e) return e;
  }
  return new ExternalError(`node ${target.name}: ${what} failed (${o.meaning})`, {
    command: o.command,
    exitCode: o.exitCode,
    signal: o.signal,
    stderrTail: o.stderrTail.slice(-10).join('\n'),
  });
}
