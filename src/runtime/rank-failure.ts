// Turns a rank that died or never became ready into an error chosen by what the user must do.
import { ExternalError, UserError } from '../errors.js';
import type { ProcessOutcome } from '../process/process-spec.js';
import { runDirRefusal } from '../process/remote-wrapper.js';
import { sshFailureError } from '../ssh/ssh-errors.js';
import type { SshTarget } from '../ssh/ssh-target.js';
import type { RankLaunch } from './launch-plan.js';

export function rankFailure(l: RankLaunch, o: ProcessOutcome, ssh?: { target: SshTarget; configFile?: string }): Error {
  const who = `rank ${l.rank} on node ${l.node.name}`;
  const tail = o.stderrTail.filter((line) => !line.startsWith('llama-relay-wrapper:'));
  const text = tail.join('\n');
  if (ssh && o.exitCode === 255) {
    const e = sshFailureError(ssh.target, o.stderrTail.join('\n'), ssh);
    if (e) return e;
  }
  const refused = runDirRefusal(o.stderrTail);
  if (refused) {
    return new UserError(`${who}: run dir ${refused.path} ${refused.reason}; refusing to use it`, [
      `it must belong to the user running the rank, have mode 0700 and not be a symlink: check it on ${l.node.name} (ls -ld ${refused.path})`,
      'remove it if nothing of yours uses it, or choose another directory with --run-dir',
    ]);
  }
  const bind = /(?:couldn't bind|cannot bind|Address already in use|EADDRINUSE|bind\(\) failed)[^\n]*/i.exec(text);
  if (bind) {
    const port = /port:? (\d+)/i.exec(bind[0])?.[1] ?? /:(\d+)\b/.exec(bind[0])?.[1];
    return new UserError(`${who}: ${port ? `port ${port}` : 'a port it needs'} is already taken on ${l.node.name}`, [
      `stop whatever listens there (on the node: ss -ltnp | grep ${port ?? '<port>'})`,
      'or choose other ports: --api-port, --stage-port-base',
    ]);
  }
  if (o.exitCode === 127 && /command not found|No such file/i.test(o.stderrTail.join('\n') + (o.spawnError ?? ''))) {
    return new UserError(`${who}: ${l.argv[0]} was not found on ${l.node.name}`, ['provision the node first, or check --llama-server']);
  }
  return new ExternalError(`${who} exited (${o.meaning})`, {
    command: l.argv.join(' '),
    exitCode: o.exitCode,
    signal: o.signal,
    stderrTail: tail.slice(-10).join('\n'),
  });
}
