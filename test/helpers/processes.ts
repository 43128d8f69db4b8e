// Test helpers to find and reap the processes a test started, by a unique marker in their argv or environment.
// A failing probe (no pgrep, no ps, no /proc) throws: "cannot look" must never read as "nothing running".
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const fixtureBin = (name: string) => fileURLToPath(new URL(`../fixtures/bin/${name}`, import.meta.url));

export const uniqueMarker = (prefix = 'lrtest') => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Runs a procps tool; `status 1 with no output` is its "no such process", anything else but 0 throws. */
function procps(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}): the leftover-process checks need procps`);
  if (r.status === 1 && r.stdout.trim() === '') return undefined;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}, signal ${r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Pids whose full command line contains `marker` (never this test process). */
export function pidsMatching(marker: string): number[] {
  const out = procps('pgrep', ['-f', '--', marker]) ?? '';
  return out.split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/**
 * Reads a /proc file of `pid`; '' when the process is gone, or (EACCES) not ours to read: kernel threads, the init of
 * the machine, privilege-separated sshd children. What a test starts runs as this user and stays readable.
 */
function procFile(pid: number, name: 'cmdline' | 'environ'): string {
  try {
    return readFileSync(`/proc/${pid}/${name}`, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES') return '';
    throw e;
  }
}

/** Pids whose environment contains `marker` (e.g. TMPDIR=<the test's work dir>): ssh forwards and masters carry no marker in argv. */
export function pidsWithEnv(marker: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => pid !== process.pid && procFile(pid, 'environ').includes(marker));
}

/** Every live process carrying `marker` in its command line or its environment, with its command line. */
export function carrying(marker: string): { pid: number; args: string }[] {
  const pids = [...new Set([...pidsMatching(marker), ...pidsWithEnv(marker)])].sort((a, b) => a - b);
  return pids.filter(isAlive).map((pid) => ({ pid, args: procFile(pid, 'cmdline').split('\0').join(' ').trim() }));
}

/** Names the kinds of process a launcher starts, from their command lines (for positive controls of leftover checks). */
export function processKinds(args: Iterable<string>): Set<string> {
  const kinds = new Set<string>();
  for (const a of args) {
    if (/--layer-range /.test(a)) kinds.add(/^\S*ssh /.test(a) ? 'rank over ssh' : 'rank');
    // A master in the background retitles itself "ssh: <control path> [mux]".
    else if (/^\S*ssh .*ControlMaster=auto/.test(a) || /^ssh: \S+ \[mux\]/.test(a)) kinds.add('ssh master');
    else if (/^\S*ssh .* -L 127\.0\.0\.1:/.test(a)) kinds.add('ssh forward');
    else if (/^\S*ssh .* -R 127\.0\.0\.1:/.test(a)) kinds.add('ssh reverse forward');
  }
  return kinds;
}

/** Alive and not a zombie, from the kernel's own record (/proc/<pid>/stat): no tool on PATH can make this read "gone". */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    readFileSync('/proc/self/stat'); // throws when /proc itself is missing: that is "cannot look", not "gone"
    return false;
  }
  // The state follows the command name, which is in parentheses and may itself hold ') '.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Waits until no live process carries `marker` (command line or environment); returns the survivors (empty on
 * success). `ignore` leaves out processes whose command line it matches.
 */
export async function survivorsAfter(marker: string, timeoutMs: number, ignore?: RegExp): Promise<string[]> {
  let alive: { pid: number; args: string }[] = [];
  await waitFor(() => (alive = carrying(marker).filter((p) => !(ignore && ignore.test(p.args)))).length === 0, timeoutMs);
  // Name the survivors, so a failure says what was left behind.
  return alive.map((p) => `${p.pid} ${p.args.slice(0, 160)}`);
}

/** Cleanup for `after`: SIGKILL whatever still carries the marker. */
export function reap(marker: string): void {
  for (const { pid } of carrying(marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
