// Starts a long-running command under the remote wrapper on any host, with the secret on stdin and a heartbeat.
import { BugError } from '../errors.js';
import type { CommandHost } from './command-host.js';
import { signalGroup } from './kill-group.js';
import { startProcess, type ManagedProcess, type StartOptions } from './managed-process.js';
import { parseWrapperLine, wrapperArgv, type WrapperOptions } from './remote-wrapper.js';

export interface WrappedCommand {
  label: string;
  /** The command on the node; env assignments go through `env K=V …` so they work over ssh too. */
  argv: readonly string[];
  env?: Readonly<Record<string, string>>;
  /** Passed on stdin into `wrapper.secretEnv`; never on a command line. */
  secret?: string;
  wrapper: WrapperOptions;
}

export interface WrappedProcess extends ManagedProcess {
  /** Process group of the command on the node, once the wrapper reported it. */
  readonly childPgid: () => number | undefined;
}

export function startWrapped(host: CommandHost, cmd: WrappedCommand, options: StartOptions = {}): WrappedProcess {
  if (cmd.secret !== undefined && (!cmd.wrapper.secretEnv || /[\r\n]/.test(cmd.secret))) {
    throw new BugError('a secret needs wrapper.secretEnv and must be one line');
  }
  const envArgs = Object.entries(cmd.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const inner = envArgs.length ? ['env', ...envArgs, ...cmd.argv] : [...cmd.argv];
  const base = host.commandSpec(wrapperArgv(inner, cmd.wrapper), cmd.label);
  const grace = cmd.wrapper.graceSeconds ?? 3;
  let childPgid: number | undefined;
  const proc = startProcess(
    {
      ...base,
      input: cmd.secret !== undefined ? `${cmd.secret}\n` : undefined,
      keepStdinOpen: true,
      stopByClosingStdin: true,
    },
    {
      // The wrapper needs its own grace plus a moment to report.
      forceKillAfterMs: (grace + 2) * 1000,
      ...options,
      onLine: (line, stream) => {
        const w = stream === 'stderr' ? parseWrapperLine(line) : undefined;
        if (w?.event === 'started') childPgid = w.value;
        options.onLine?.(line, stream);
      },
    },
  );
  const beat = cmd.wrapper.heartbeatSeconds ?? 0;
  const timer = beat > 0 ? setInterval(() => proc.write('\n'), (beat * 1000) / 3) : undefined;
  timer?.unref();
  void proc.done.then(() => clearInterval(timer));

  const stop = async () => {
    clearInterval(timer);
    const outcome = await proc.stop();
    // If the local wrapper itself had to be SIGKILLed, its command's group is still ours to reap.
    if (host.isLocal && childPgid !== undefined && outcome.isForcefullyTerminated) signalGroup(childPgid, 'SIGKILL', false);
    return outcome;
  };
  return { ...proc, stop, childPgid: () => childPgid };
}
