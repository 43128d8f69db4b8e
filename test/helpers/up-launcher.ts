// Runs `llama-relay up ... --json` as a real child process and collects its event lines (and any plain stdout lines), for end-to-end tests.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;

export interface UpLauncher {
  child: ChildProcessWithoutNullStreams;
  events: { kind: string; [k: string]: unknown }[];
  /** stdout lines that are not JSON events (plain output without --json) */
  lines: string[];
  exit: Promise<unknown>;
  /** true once the chain reported ready */
  ready(): boolean;
  /** stderr plus every non-log event, for assertion messages */
  show(): string;
}

export function launchUp(args: readonly string[], env: NodeJS.ProcessEnv = {}): UpLauncher {
  const child = spawn(process.execPath, [cli, 'up', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const events: UpLauncher['events'] = [];
  const lines: string[] = [];
  let buf = '';
  let err = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        events.push(JSON.parse(line));
      } catch {
        lines.push(line);
      }
    }
  });
  child.stderr.on('data', (d) => (err += d));
  return {
    child,
    events,
    lines,
    exit: new Promise((r) => child.on('exit', r)),
    ready: () => events.some((e) => e.kind === 'info' && String(e.message).startsWith('chain ready')),
    show: () => `${err}\n${events.filter((e) => e.kind !== 'log').map((e) => JSON.stringify(e)).join('\n')}`,
  };
}
