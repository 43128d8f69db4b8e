// Test helpers to find and reap the processes a test started, by a unique marker in their argv.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const fixtureBin = (name: string) => fileURLToPath(new URL(`../fixtures/bin/${name}`, import.meta.url));

export const uniqueMarker = (prefix = 'lrtest') => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Pids whose full command line contains `marker` (never this test process). */
export function pidsMatching(marker: string): number[] {
  try {
    const out = execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' });
    return out.split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); treat it as gone.
    const state = execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    return state !== '' && !state.startsWith('Z');
  } catch {
    return false;
  }
}

function argsOf(pid: number): string {
  try {
    return execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Waits until no live process carries `marker`; returns the survivors (empty on success). */
export async function survivorsAfter(marker: string, timeoutMs: number, ignore?: RegExp): Promise<string[]> {
  let alive: number[] = [];
  const relevant = (pid: number) => isAlive(pid) && !(ignore && ignore.test(argsOf(pid)));
  await waitFor(() => (alive = pidsMatching(marker).filter(relevant)).length === 0, timeoutMs);
  // Name the survivors, so a failure says what was left behind.
  return alive.map((pid) => {
    try {
      return `${pid} ${execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim().slice(0, 120)}`;
    } catch {
      return `${pid}`;
    }
  });
}

/** Cleanup for `after`: SIGKILL whatever still carries the marker. */
export function reap(marker: string): void {
  for (const pid of pidsMatching(marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
