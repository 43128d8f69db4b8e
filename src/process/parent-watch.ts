// Notices when the process that started us is gone. A process manager, `kill $!` or `docker stop` signals only the
// process it started; when that is `npx` (which does not pass SIGTERM on) or a `sh -c` wrapper, we outlive it unless
// we watch it. Watched: the parent, and above it every ancestor for which the one below is only a pass-through (a
// `sh -c` wrapper or npm's exec), so `npx llama-relay` ends when npx's own process ends.
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
    return undefined; // gone, or no /proc (then only the direct parent is watched)
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

/** The ancestors to watch, nearest first: the parent, and more while the one below passes through. */
export function watchedAncestors(ppid = process.ppid, info = procInfo): number[] {
  const out = [ppid];
  let pid = ppid;
  for (let i = 0; i < 8; i++) {
    const p = info(pid);
    if (!p || !isPassThrough(p.argv) || p.ppid <= 1) break;
    out.push(p.ppid);
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
