// Notices when the process the user started is gone, when that is not us. A process manager, `kill $!` or `docker stop`
// signals only the process it started; when that is `npx` (which does not pass SIGTERM on) or a `sh -c` wrapper, we
// would outlive it. Watched: the chain of pass-through ancestors above us (`sh -c` wrappers, npm's exec), so
// `npx llama-relay` ends when npx's own process ends. When our parent is anything else (a shell, nohup's caller, a test
// runner), we are the process the user started: signals reach us directly, and nothing is watched.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface ProcInfo {
  ppid: number;
  argv: string[];
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return Number.isInteger(ppid) ? { ppid, argv } : undefined;
  } catch {
    return psInfo(pid); // no /proc (macOS, BSD)
  }
}

function psInfo(pid: number): ProcInfo | undefined {
  try {
    const out = execFileSync('ps', ['-o', 'ppid=', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    const m = /^(\d+)\s+(.*)$/.exec(out);
    return m ? { ppid: Number(m[1]), argv: m[2]!.split(/\s+/) } : undefined;
  } catch {
    return undefined;
  }
}

/** A process that only passes its work on to us: `sh -c …`, `npm exec …`, `npx …`. Pure. */
export function isPassThrough(argv: readonly string[]): boolean {
  const base = (s: string | undefined) => (s ?? '').split('/').at(-1) ?? '';
  const exe = base(argv[0]);
  if (/^(sh|bash|dash|zsh)$/.test(exe) && argv.includes('-c')) return true;
  // npm titles its process "npm exec …"; otherwise it is `node …/npx-cli.js` or `node …/npm-cli.js exec`.
  if (/^(npm|npx)( |$)/.test(argv[0] ?? '') || exe === 'npx') return true;
  return argv.slice(0, 3).some((a) => /\/(npx|npm)-cli\.js$/.test(a) || /\/bin\/(npx|npm)$/.test(a));
}

/** The pass-through ancestors to watch, nearest first (empty when our parent is not one). */
export function watchedAncestors(ppid = process.ppid, info = procInfo): number[] {
  const out: number[] = [];
  let pid = ppid;
  for (let i = 0; i < 8 && pid > 1; i++) {
    const p = info(pid);
    if (!p || !isPassThrough(p.argv)) break;
    out.push(pid);
    pid = p.ppid;
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Calls `onGone` once when the parent or a watched ancestor has ended; returns a stop function. Polls every `everyMs`. */
export function watchParent(onGone: (pid: number) => void, everyMs = 1000): () => void {
  const ppid = process.ppid;
  const watched = watchedAncestors(ppid);
  if (!watched.length) return () => undefined;
  const timer = setInterval(() => {
    // Reparented (to init or a subreaper): the parent is gone even if its pid was reused.
    const gone = process.ppid !== ppid ? ppid : watched.find((p) => !alive(p));
    if (gone === undefined) return;
    clearInterval(timer);
    onGone(gone);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
