// Turns an exit code or signal into words a user understands (137 is "killed", not "error 137").
import { constants } from 'node:os';

const signalNames = Object.fromEntries(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
) as Record<number, string>;

const codeMeanings: Record<number, string> = {
  1: 'failed',
  2: 'misused (bad arguments)',
  126: 'not executable',
  127: 'command not found',
  255: 'ssh or remote failure',
};

const signalMeanings: Record<string, string> = {
  SIGKILL: 'killed (SIGKILL, often out of memory or forced stop)',
  SIGTERM: 'terminated (SIGTERM)',
  SIGINT: 'interrupted (SIGINT)',
  SIGSEGV: 'crashed (segmentation fault)',
  SIGABRT: 'aborted (assertion or abort())',
  SIGBUS: 'crashed (bus error)',
  SIGILL: 'crashed (illegal instruction: binary built for another CPU?)',
  SIGHUP: 'hung up (SIGHUP)',
  SIGPIPE: 'broken pipe (SIGPIPE)',
};

/** Shells report death by signal N as exit code 128+N; recover the signal name. */
export function signalFromExitCode(code: number | null | undefined): string | undefined {
  if (code == null || code <= 128 || code > 128 + 64) return undefined;
  return signalNames[code - 128];
}

export function describeExit(exitCode: number | null | undefined, signal?: string | null): string {
  const sig = signal ?? signalFromExitCode(exitCode);
  if (sig) {
    const meaning = signalMeanings[sig] ?? `stopped by ${sig}`;
    return exitCode != null ? `exit code ${exitCode}: ${meaning}` : meaning;
  }
  if (exitCode == null) return 'no exit status';
  if (exitCode === 0) return 'exit code 0: success';
  return `exit code ${exitCode}: ${codeMeanings[exitCode] ?? 'failed'}`;
}
