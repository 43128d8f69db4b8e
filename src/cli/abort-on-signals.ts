// Ctrl-C / SIGTERM for long-running commands: the first signal aborts for an orderly teardown; a second
// leaves at once (node-side wrappers still clean up when our pipes close). `interrupt` is the same as a SIGINT, for
// input that reads the terminal in raw mode (there Ctrl-C arrives as a key, not as a signal).
export async function withSignalAbort<T>(run: (signal: AbortSignal, interrupt: () => void) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(sig === 'SIGINT' ? 130 : 143);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(ac.signal, () => onSignal('SIGINT'));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `--rank-env K=V` pairs as an environment object. */
export function parseEnvPairs(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}
