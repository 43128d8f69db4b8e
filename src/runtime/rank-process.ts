// Starts one rank under the remote wrapper and resolves when it is ready (worker: stage-ready line; head: /health 200).
import type { Emit } from '../events/events.js';
import type { ProcessOutcome } from '../process/process-spec.js';
import { startWrapped, type WrappedProcess } from '../process/wrapped-process.js';
import { SshTransport } from '../ssh/ssh-transport.js';
import type { Transport } from '../ssh/transport.js';
import type { RankLaunch } from './launch-plan.js';
import { rankFailure } from './rank-failure.js';
import { parseResumeLine } from './resume-line.js';
import { readyLineWatch, waitReady } from './readiness.js';

export interface RankStartOptions {
  transport: Transport;
  secret: string;
  emit: Emit;
  /** Where the launcher reaches the head's API (direct or forwarded); heads only. */
  apiUrl?: () => string | undefined;
  readyTimeoutMs: number;
  graceSeconds: number;
  heartbeatSeconds: number;
  runDir?: string;
  env?: Readonly<Record<string, string>>;
}

export interface RankHandle {
  launch: RankLaunch;
  process: WrappedProcess;
  ready: Promise<void>;
  /** The error to show for this rank's exit (ssh failure, port taken, crash). */
  failure(o: ProcessOutcome): Error;
}

export function startRank(l: RankLaunch, o: RankStartOptions): RankHandle {
  const ssh = o.transport instanceof SshTransport ? { target: o.transport.target, configFile: o.transport.settings.configFile } : undefined;
  const failure = (outcome: ProcessOutcome) => rankFailure(l, outcome, ssh);
  const line = readyLineWatch(l.readiness);
  o.emit({ kind: 'node-phase', rank: l.rank, node: l.node.name, phase: 'load' });
  const proc = startWrapped(
    o.transport,
    {
      label: `rank ${l.rank} on ${l.node.name}`,
      argv: l.argv,
      env: o.env,
      secret: o.secret,
      wrapper: {
        name: l.wrapperName,
        secretEnv: 'LLAMA_RELAY_SECRET',
        graceSeconds: o.graceSeconds,
        heartbeatSeconds: o.heartbeatSeconds,
        runDir: o.runDir,
      },
    },
    {
      onLine: (text, stream) => {
        line.onLine(text);
        o.emit({ kind: 'log', rank: l.rank, node: l.node.name, stream, line: text });
        // every head line is read, so a resume shorter than the /health poll is still shown
        const resume = l.role === 'head' ? parseResumeLine(text) : undefined;
        if (resume) o.emit(resume);
      },
    },
  );

  const ready = (async () => {
    // Heads: /health through apiUrl (direct or forwarded), which is known once the launcher exposed the API.
    const r = await waitReady(proc.done, l.readiness, { lineSeen: line.seen, healthUrl: () => o.apiUrl?.(), timeoutMs: o.readyTimeoutMs });
    if (r.kind === 'ready') return;
    if (r.kind === 'exited') throw failure(r.outcome);
    await proc.stop();
    const lastHealth = r.kind === 'timeout' ? r.lastHealth : '';
    throw rankFailure(l, {
      ...(await proc.done),
      meaning: `not ready after ${Math.round(o.readyTimeoutMs / 1000)} s${lastHealth ? `; /health said: ${lastHealth}` : ''}`,
    }, ssh);
  })();
  ready.catch(() => undefined);
  return { launch: l, process: proc, ready, failure };
}
