// Pure builders for ssh argv: every invocation gets the same safe, non-interactive options.
import type { SshSettings, SshTarget } from './ssh-target.js';

/**
 * client: reuse the node's master if one is up, else connect directly (never become a master by accident).
 * master: become the master; `auto` rather than `yes` so ssh unlinks a stale socket left by a killed master.
 */
export type MuxMode = 'client' | 'master' | 'none';

/** Options shared by every ssh call to `target`, up to and including the destination. */
export function sshArgs(target: SshTarget, s: SshSettings, mux: MuxMode = 'client'): string[] {
  const o = (kv: string) => ['-o', kv];
  const args: string[] = [];
  if (s.configFile) args.push('-F', s.configFile);
  args.push(
    ...o('BatchMode=yes'),
    ...o(`StrictHostKeyChecking=${s.acceptNewHostKeys ? 'accept-new' : 'yes'}`),
    ...o(`ConnectTimeout=${s.connectTimeoutSeconds ?? 10}`),
    ...o(`ServerAliveInterval=${s.serverAliveIntervalSeconds ?? 5}`),
    ...o(`ServerAliveCountMax=${s.serverAliveCountMax ?? 3}`),
    ...o('LogLevel=ERROR'),
  );
  if (mux === 'none' || !s.controlDir) {
    args.push(...o('ControlMaster=no'), ...o('ControlPath=none'));
  } else {
    args.push(
      ...o(`ControlMaster=${mux === 'master' ? 'auto' : 'no'}`),
      // %C hashes host, port and user: short and unique per destination.
      ...o(`ControlPath=${s.controlDir}/%C`),
    );
    if (mux === 'master') args.push(...o(`ControlPersist=${s.controlPersistSeconds ?? 30}`));
  }
  if (target.port) args.push('-p', String(target.port));
  if (target.user) args.push('-l', target.user);
  args.push(target.host);
  return args;
}

/** argv that runs one remote command line (already shell-quoted) without a pty. */
export const sshExecArgs = (target: SshTarget, s: SshSettings, commandLine: string): string[] => [
  '-T',
  ...sshArgs(target, s),
  commandLine,
];

/**
 * argv that opens the node's master connection: the session runs `true`, then the master stays in the background
 * (stdio on /dev/null) until ControlPersist seconds after its last session, so a killed launcher leaves no ssh behind.
 */
export const sshMasterArgs = (target: SshTarget, s: SshSettings): string[] => ['-T', ...sshArgs(target, s, 'master'), 'true'];

/** argv for `ssh -O <op>` control commands (check, exit). */
export const sshControlArgs = (target: SshTarget, s: SshSettings, op: 'check' | 'exit'): string[] => [
  '-O',
  op,
  ...sshArgs(target, s),
];

/**
 * The session a forward keeps open instead of `-N`: it ends when ssh's stdin does, so a forward started with stdin kept
 * open (a pipe from the launcher) ends when the launcher exits, even by SIGKILL. An `ssh -N` would outlive it.
 */
export const FORWARD_SESSION = 'exec cat >/dev/null';

/** argv for a local port forward on its own connection, so its lifetime is the process's (see FORWARD_SESSION). */
export const sshForwardArgs = (
  target: SshTarget,
  s: SshSettings,
  f: { localPort: number; remoteHost: string; remotePort: number },
): string[] => [
  '-T',
  '-o',
  'ExitOnForwardFailure=yes',
  '-L',
  `127.0.0.1:${f.localPort}:${f.remoteHost}:${f.remotePort}`,
  ...sshArgs(target, s, 'none'),
  FORWARD_SESSION,
];

/** argv for a remote forward (node port -> launcher address) on its own connection; -v reports when it is set up. */
export const sshReverseForwardArgs = (
  target: SshTarget,
  s: SshSettings,
  f: { remotePort: number; localHost: string; localPort: number },
): string[] => [
  '-v',
  '-T',
  '-o',
  'ExitOnForwardFailure=yes',
  '-R',
  `127.0.0.1:${f.remotePort}:${f.localHost}:${f.localPort}`,
  ...sshArgs(target, s, 'none'),
  FORWARD_SESSION,
];
