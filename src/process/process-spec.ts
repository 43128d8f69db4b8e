// A process to start, as plain data: plans build these, tests assert them, one module runs them.

export interface ProcessSpec {
  /** Who this is for the user, e.g. "rank 1 on bob@gpu-box". Named in every error. */
  label: string;
  command: string;
  args: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Written to stdin right after start; how secrets travel (never argv). */
  input?: string;
  /** Keep stdin open after `input` (the remote wrapper treats EOF as "stop"). */
  keepStdinOpen?: boolean;
  /** Stop gracefully by closing stdin first (remote wrapper) instead of signalling. */
  stopByClosingStdin?: boolean;
}

/** How a process ended, with flags rather than an error hierarchy (execa's model). */
export interface ProcessOutcome {
  label: string;
  command: string;
  pid: number | undefined;
  exitCode: number | null;
  signal: string | null;
  /** Human meaning of exitCode/signal, e.g. "exit code 137: killed (SIGKILL …)". */
  meaning: string;
  /** We asked it to stop (stop() or abort). */
  isTerminated: boolean;
  /** Stopped through an AbortSignal. */
  isCanceled: boolean;
  /** It ignored the graceful stop and got SIGKILL. */
  isForcefullyTerminated: boolean;
  /** It could not start at all (ENOENT, EACCES). */
  spawnError?: string;
  stderrTail: string[];
}
