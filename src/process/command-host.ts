// Where a command runs: this machine or a node over ssh. Hosts turn an argv into a ProcessSpec; only src/process runs it.
import { BugError } from '../errors.js';
import type { ProcessSpec } from './process-spec.js';

export interface CommandHost {
  /** The node as the user wrote it, e.g. "bob@gpu-box" or "local"; named in every error. */
  readonly name: string;
  readonly isLocal: boolean;
  /** How to run `argv` on this host, as data. */
  commandSpec(argv: readonly string[], label: string): ProcessSpec;
}

export const localHost: CommandHost = {
  name: 'local',
  isLocal: true,
  commandSpec: (argv, label) => {
    const [command, ...args] = argv;
    if (command === undefined) throw new BugError('empty argv');
    return { label, command, args };
  },
};
