// One launcher at a time provisions a node's cache: an exclusive flock on <cache>/.lock, held by a small sh on the node
// for as long as the launcher keeps that command's stdin open. The lock goes with the fd, so it is released when the
// launcher releases it, dies, or loses the link (sshd closes the command's stdin; the sh sees EOF and exits).
import { ExternalError, UserError } from '../errors.js';
import { startProcess } from '../process/managed-process.js';
import type { Transport } from '../ssh/transport.js';

export const lockPath = (cacheDir: string): string => `${cacheDir}/.lock`;

/**
 * $1 cache dir, $2 owner line written into the lock file once held, $3 seconds to wait. Prints one status line:
 * `locked`, `held <owner>` (then waits), `timeout <owner>` (exit 75), or `unlocked <why>` (no flock on the node).
 */
export const LOCK_SCRIPT = [
  'dir=$1 owner=$2 wait=$3 lock=$1/.lock',
  'mkdir -p "$dir" || exit 73',
  // Without flock (not util-linux) provisioning goes on unguarded, as before the lock existed.
  'if ! command -v flock >/dev/null 2>&1; then echo "unlocked flock is not installed"; while IFS= read -r _; do :; done; exit 0; fi',
  'exec 9>>"$lock" || exit 73',
  'if ! flock -n 9; then',
  '  echo "held $(head -n 1 "$lock" 2>/dev/null)"',
  '  flock -w "$wait" 9 || { echo "timeout $(head -n 1 "$lock" 2>/dev/null)"; exit 75; }',
  'fi',
  'printf "%s\\n" "$owner" >"$lock"',
  'echo locked',
  // Held until stdin ends: the launcher releases it, or is gone.
  'while IFS= read -r _; do :; done',
].join('\n');

export function lockArgv(cacheDir: string, owner: string, waitSeconds: number): string[] {
  return ['sh', '-c', LOCK_SCRIPT, 'llama-relay-lock', cacheDir, owner, String(Math.max(0, Math.round(waitSeconds)))];
}

/** Who holds a lock: the owner line another launcher wrote (`pid=123 host=laptop`). */
export interface LockOwner {
  pid?: number;
  host?: string;
}

export const ownerLine = (o: { pid: number; host: string }): string => `pid=${o.pid} host=${o.host.replace(/\s+/g, '_')}`;

export function parseOwner(text: string): LockOwner {
  const pid = /\bpid=(\d+)/.exec(text)?.[1];
  const host = /\bhost=(\S+)/.exec(text)?.[1];
  return { ...(pid ? { pid: Number(pid) } : {}), host };
}

export const describeOwner = (o: LockOwner): string =>
  o.pid === undefined ? 'pid unknown' : `pid ${o.pid}${o.host ? ` on ${o.host}` : ''}`;

export type LockStatus = { kind: 'locked' } | { kind: 'held' | 'timeout'; owner: LockOwner } | { kind: 'unlocked'; why: string };

export function parseLockLine(line: string): LockStatus | undefined {
  const m = /^(locked|held|timeout|unlocked)(?: (.*))?$/.exec(line.trim());
  if (!m) return undefined;
  if (m[1] === 'locked') return { kind: 'locked' };
  if (m[1] === 'unlocked') return { kind: 'unlocked', why: m[2] ?? '' };
  return { kind: m[1] as 'held' | 'timeout', owner: parseOwner(m[2] ?? '') };
}

export interface NodeLock {
  /** True when another launcher held the lock first (what it did may have changed the node's cache). */
  waited: boolean;
  /** False when the node has no flock (provisioning is not guarded there). */
  held: boolean;
  /** The local process that keeps the lock's command open (ssh, or sh for the local node). */
  pid: number | undefined;
  release(): Promise<void>;
}

export interface LockOptions {
  owner: { pid: number; host: string };
  waitSeconds: number;
  wrap?: (argv: string[]) => string[];
  signal?: AbortSignal;
  /** Another launcher holds the lock; this one waits. */
  onWaiting?: (owner: LockOwner) => void;
  onUnguarded?: (why: string) => void;
}

/** Takes the node's cache lock, waiting up to `waitSeconds` for another launcher to finish. */
export async function acquireNodeLock(t: Transport, cacheDir: string, o: LockOptions): Promise<NodeLock> {
  const wrap = o.wrap ?? ((a: string[]) => a);
  const lock = lockPath(cacheDir);
  let waited = false;
  let timedOut: LockOwner | undefined;
  let settle!: (held: boolean) => void;
  const ready = new Promise<boolean>((r) => (settle = r));
  const p = startProcess(
    { ...t.commandSpec(wrap(lockArgv(cacheDir, ownerLine(o.owner), o.waitSeconds)), `provisioning lock on ${t.name}`), keepStdinOpen: true, stopByClosingStdin: true },
    {
      signal: o.signal,
      forceKillAfterMs: 3000,
      onLine: (line, stream) => {
        const s = stream === 'stdout' ? parseLockLine(line) : undefined;
        if (!s) return;
        if (s.kind === 'locked') settle(true);
        else if (s.kind === 'unlocked') {
          o.onUnguarded?.(s.why);
          settle(false);
        } else if (s.kind === 'held') {
          waited = true;
          o.onWaiting?.(s.owner);
        } else timedOut = s.owner;
      },
    },
  );
  const exited = p.done.then((r) => {
    if (timedOut) {
      throw new UserError(
        `node ${t.name}: another llama-relay (${describeOwner(timedOut)}) has been provisioning it for over ${o.waitSeconds} s; its lock ${lock} is still held`,
        [
          'wait for that launcher to finish provisioning, then run the command again',
          `if it is stuck, stop it (the lock is released when it exits; on ${t.name}: fuser -v ${lock} shows who holds it)`,
          'or give this node another cache directory: --node-cache DIR',
        ],
      );
    }
    if (r.isCanceled) throw new UserError(`node ${t.name}: waiting for the provisioning lock ${lock} was stopped`);
    throw new ExternalError(`node ${t.name}: could not take the provisioning lock ${lock} (${r.meaning})`, {
      command: r.command,
      exitCode: r.exitCode,
      signal: r.signal,
      stderrTail: r.stderrTail.slice(-10).join('\n'),
    });
  });
  exited.catch(() => undefined);
  const held = await Promise.race([ready, exited]);
  return {
    waited,
    held,
    pid: p.pid,
    release: async () => {
      await p.stop();
    },
  };
}
