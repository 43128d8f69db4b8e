// Ctrl-C / SIGTERM / SIGHUP for long-running commands, and the end of the process that started us (a killed `npx`,
// a `sh -c` wrapper): the first of these aborts for an orderly teardown; a second signal leaves at once (node-side
// wrappers still clean up when our pipes close). `interrupt` is the same as a SIGINT, for input that reads the
// terminal in raw mode (there Ctrl-C arrives as a key, not as a signal).
import { watchParent } from '../process/parent-watch.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function withSignalAbort<T>(run: (signal: AbortSignal, interrupt: () => void) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
    ac.abort();
  };
  // With the starter gone, our stdout/stderr may be a closed pipe: a failed write must not end us before teardown.
  const ignore = () => undefined;
  const stopWatch = watchParent(() => {
    process.stdout.on('error', ignore);
    process.stderr.on('error', ignore);
    onSignal('SIGHUP');
  });
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    return await run(ac.signal, () => onSignal('SIGINT'));
  } finally {
    stopWatch();
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}

/** `--rank-env K=V` pairs as an environment object. */
export function parseEnvPairs(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}
