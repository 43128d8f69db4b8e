// A per-test work dir whose path every process of the test carries (model, binaries, TMPDIR, --run-dir, ssh control
// sockets), and a strict query for those processes: pgrep exit 1 is "none", anything else fails the test.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface WorkDir {
  readonly path: string;
  /** Live (non-zombie) processes whose command line contains the work dir, as "pid args". */
  processes(): string[];
  /** Polls until none is left; returns the survivors (empty on success). */
  survivors(timeoutMs: number): Promise<string[]>;
  /** SIGKILLs whatever is left and removes the dir. */
  remove(): void;
}

/** pid → args of every process, from one `ps` (throws if ps is missing or fails). */
function allProcesses(): Map<number, { stat: string; args: string }> {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const rows = new Map<number, { stat: string; args: string }>();
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m) rows.set(Number(m[1]), { stat: m[2]!, args: m[3]! });
  }
  if (rows.size === 0) throw new Error('ps listed no processes');
  return rows;
}

export function makeWorkDir(prefix: string): WorkDir {
  const path = mkdtempSync(`/tmp/${prefix}-`);
  chmodSync(path, 0o700);
  const processes = () => {
    const rows = allProcesses();
    return [...rows]
      .filter(([pid, r]) => pid !== process.pid && !r.stat.startsWith('Z') && r.args.includes(path) && !/^ps -eo/.test(r.args))
      .map(([pid, r]) => `${pid} ${r.args}`);
  };
  return {
    path,
    processes,
    survivors: async (timeoutMs) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const left = processes();
        if (left.length === 0 || Date.now() > end) return left;
        await sleep(200);
      }
    },
    remove: () => {
      for (const p of processes()) {
        try {
          process.kill(Number(p.split(' ')[0]), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      rmSync(path, { recursive: true, force: true });
    },
  };
}
