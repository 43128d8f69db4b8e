// Runs one configuration end to end: link counters up (relays where latency is emulated), processes started in plan
// order (each timed spawn → ready), a warm-up, the measured request batches, peak RSS; then everything it started is
// stopped.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import getPort from 'get-port';
import { ExternalError, formatError, UserError } from '../errors.js';
import type { Emit } from '../events/events.js';
import type { ManagedProcess } from '../process/managed-process.js';
import type { BenchConfig, BenchNode, BenchRuntime } from './bench-config.js';
import type { ConfigResult, FaultTrial, LinkResult, Measurement, NodeResult, ResumePause, Sample } from './bench-result.js';
import { FAULT_MIN_TOKENS, runFaultTrial, summarizeFaults, type FaultInjection } from './fault-trial.js';
import { signalGroup } from '../process/kill-group.js';
import { tokenize } from './completion-client.js';
import { DelayRelay } from './delay-relay.js';
import { KernelLinkCounters, TcpInfoReader } from './kernel-link-counter.js';
import type { LinkCounter } from './link-counter.js';
import { startHere, type NodeHosts, type NodeProcess } from '../runtime/node-hosts.js';
import type { BenchSites } from './bench-sites.js';
import type { Binaries } from '../provision/llama-builds.js';
import { directLinks, planConfigLaunch, portNodes, portsNeeded, type PlannedProcess } from './config-launch.js';
import { measureBatch } from './measure-batch.js';
import { summarize } from './measurement.js';
import { buildPrompt, PROMPT_TEXT } from './prompt-tokens.js';
import { headHealth } from '../runtime/head-client.js';
import { exitError, readyLineWatch, waitReady, type Readiness } from '../runtime/readiness.js';
import { LOOPBACK } from '../runtime/server-argv.js';

export interface RunContext {
  readonly model: string;
  readonly bins: Binaries;
  readonly runtime: BenchRuntime;
  readonly nodes: readonly BenchNode[];
  readonly linkLatencyMs: number;
  /** Chain ranks with a core to themselves busy-poll their links this long around each frame (0: off); default LINK_POLL_US. */
  readonly linkPollUs?: number;
  readonly promptTokens: readonly number[];
  readonly genTokens: number;
  readonly parallel: readonly number[];
  readonly repeat: number;
  /** Fault trials on this configuration (a chain of 2 ranks or more; 0 or unset: none). */
  readonly faults?: number;
  readonly logitBias: readonly (readonly [number, false])[];
  readonly readyTimeoutMs: number;
  /** The nodes' transports, when some node is remote: configurations on them run without relays. */
  readonly remote?: { readonly hosts: NodeHosts; readonly sites: BenchSites };
  /** Distinguishes this run's wrapper pidfiles on the nodes. */
  readonly runTag?: string;
  /** Reads the kernel's TCP counters of direct local links; one per run, so a missing ss is said once. */
  readonly tcpInfo?: TcpInfoReader;
  /** Which round of the run this is (every round starts the configuration afresh). */
  readonly round?: { readonly index: number; readonly of: number };
  readonly signal?: AbortSignal;
  readonly emit: Emit;
}

interface Started {
  readonly planned: PlannedProcess;
  readonly proc: ManagedProcess;
  readonly peakRss: () => Promise<number | undefined>;
  readonly loadMs: number;
}

export async function runConfig(c: BenchConfig, ctx: RunContext): Promise<ConfigResult> {
  ctx.emit({ kind: 'bench-config-start', id: c.id, description: c.description, round: ctx.round });
  const started: Started[] = [];
  // One per planned link, in order: a relay (emulated latency) or the kernel's counters (a direct loopback link).
  const counters: LinkCounter[] = [];
  const forwards: { stop: () => Promise<void> }[] = [];
  let secretDir: string | undefined;
  const remote = ctx.remote && c.ranks.some((r) => !ctx.remote!.hosts.isLocal(r.node)) ? ctx.remote : undefined;
  // Links between remote nodes are real: their bytes are not measured (not zero). Local links are relayed only to
  // emulate latency; at 0 ms the ranks dial each other directly and the kernel counts the bytes.
  const networkMeasured = !remote || c.ranks.length === 1;
  const direct = directLinks(ctx.linkLatencyMs, !!remote);
  const base = {
    id: c.id,
    kind: c.kind,
    description: c.description,
    ranks: c.ranks.length,
    pipeline: c.pipeline,
    ...(c.encrypt === false ? { encrypt: false } : {}),
    ...(c.microbatch === false ? { microbatch: false } : {}),
    ...(c.groups !== undefined ? { groups: c.groups } : {}),
    ...(c.batchGroupsFrom !== undefined ? { batchGroupsFrom: c.batchGroupsFrom } : {}),
    ...(c.poll === false ? { poll: false } : {}),
    hops: c.hops,
    networkMeasured,
  };
  try {
    secretDir = await mkdtemp(join(tmpdir(), 'llama-relay-bench-'));
    const secretFile = join(secretDir, 'secret');
    const secret = randomBytes(24).toString('hex');
    await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
    const sites = remote ? await remote.sites.forConfig(c, secretFile) : undefined;
    const ports = remote
      ? await remote.hosts.ports(portNodes(c, true))
      : await Promise.all(Array.from({ length: portsNeeded(c, direct) }, () => getPort({ host: LOOPBACK })));
    const plan = planConfigLaunch(c, {
      model: ctx.model,
      bins: ctx.bins,
      runtime: ctx.runtime,
      nodes: ctx.nodes,
      ports,
      secretFile,
      sites,
      linkLatencyMs: ctx.linkLatencyMs,
      linkPollUs: ctx.linkPollUs,
    });

    // Starts one planned process and waits until it is ready: the bench's start, and a fault trial's restart.
    const launch = async (planned: PlannedProcess, ready: Readiness): Promise<{ np: NodeProcess; loadMs: number }> => {
      const line = readyLineWatch(ready);
      const t0 = performance.now();
      const np: NodeProcess = remote
        ? remote.hosts.start(planned.node, planned.spec, {
            onLine: line.onLine,
            wrapperName: `bench-${ctx.runTag ?? 'run'}-${c.id}-r${planned.rank}`,
            secret: planned.secretInEnv ? secret : undefined,
            signal: ctx.signal,
          })
        : startHere(planned.spec, { onLine: line.onLine, signal: ctx.signal });
      // In the list before it is ready, so a failed start is stopped too.
      const at = started.findIndex((s) => s.planned === planned);
      const entry = { planned, proc: np.proc, peakRss: np.peakRss, loadMs: Number.NaN };
      if (at >= 0) started[at] = entry;
      else started.push(entry);
      const command = commandOf(planned, ctx.nodes);
      const r = await waitReady(np.proc.done, ready, {
        lineSeen: line.seen,
        nodeListening: remote ? (port: number) => remote.hosts.listening(planned.node, port) : undefined,
        timeoutMs: ctx.readyTimeoutMs,
        pollMs: 25,
        signal: ctx.signal,
      });
      if (r.kind === 'aborted') throw new UserError('bench interrupted');
      if (r.kind === 'exited') throw exitError(r.outcome, 'exited before it was ready', command);
      if (r.kind === 'timeout') {
        throw new ExternalError(`${planned.spec.label} was not ready after ${Math.round(ctx.readyTimeoutMs / 1000)} s`, {
          command,
          stderrTail: np.proc.tail.last().slice(-15).join('\n'),
        });
      }
      return { np, loadMs: performance.now() - t0 };
    };

    const kernel = new KernelLinkCounters(ctx.tcpInfo ?? new TcpInfoReader((message) => ctx.emit({ kind: 'info', message })));
    for (const l of plan.links) {
      counters.push(
        l.listenPort === undefined
          ? kernel.counter(l.targetPort)
          : await DelayRelay.start({
              name: `${c.id} link ${l.name}`,
              listenPort: l.listenPort,
              target: { host: LOOPBACK, port: l.targetPort },
              delayMs: ctx.linkLatencyMs,
              signal: ctx.signal,
            }),
      );
    }

    // A remote head serves HTTP on its node's loopback: this machine reaches it through an ssh forward.
    let httpPort = plan.httpPort;
    for (const planned of plan.processes) {
      let ready: Readiness = planned.ready;
      if (remote && ready.kind === 'http-health') {
        const f = await remote.hosts.reach(planned.node, ready.port);
        forwards.push(f);
        ready = { kind: 'http-health', host: LOOPBACK, port: f.port };
        httpPort = f.port;
      }
      // The RPC head dials its servers on its own loopback: their tunnels go up first.
      if (remote && planned.role === 'rpc-head') {
        for (const t of plan.tunnels ?? []) forwards.push(await remote.hosts.tunnel(t.fromNode, t.listenPort, t.toNode, t.targetPort));
      }
      const { np, loadMs } = await launch(planned, ready);
      started[started.findIndex((x) => x.planned === planned)] = { planned, proc: np.proc, peakRss: np.peakRss, loadMs };
      ctx.emit({ kind: 'bench-process-ready', id: c.id, label: planned.spec.label, loadMs });
    }
    const startCounts = await Promise.all(counters.map((r) => r.snapshot()));

    const measurements = await measureAll(c, ctx, httpPort, networkMeasured ? counters : undefined, started);

    // --fault: a worker SIGKILLed mid-stream and started again the way it was started above; the head resumes.
    let resume: ResumePause | undefined;
    // The killed rank's peak RSS before its first kill: a restarted process's own peak starts over.
    let victimRss: { rank: number; bytes: number | undefined } | undefined;
    if ((ctx.faults ?? 0) > 0 && c.kind === 'chain' && c.ranks.length > 1) {
      const head = plan.processes.find((p) => p.rank === 0)!;
      const victim = plan.processes.find((p) => p.rank === 1)!;
      victimRss = { rank: victim.rank, bytes: await started.find((x) => x.planned === victim)!.peakRss() };
      const fault: FaultInjection = {
        rank: victim.rank,
        killAndRestart: async () => {
          const i = started.findIndex((x) => x.planned === victim);
          const old = started[i]!;
          const killedAt = performance.now();
          if (old.proc.pid !== undefined) signalGroup(old.proc.pid, 'SIGKILL');
          const rejoinedAt = chainBackAt(`http://${LOOPBACK}:${httpPort}`, ctx.readyTimeoutMs, ctx.signal);
          await old.proc.done;
          const { np } = await launch(victim, victim.ready);
          // The load time stays the first start's.
          started[i] = { planned: victim, proc: np.proc, peakRss: np.peakRss, loadMs: old.loadMs };
          return { killedAt, readyAt: performance.now(), rejoinedAt };
        },
      };
      const base = await tokenize(httpPort, PROMPT_TEXT, ctx.signal);
      const nPredict = Math.max(ctx.genTokens, FAULT_MIN_TOKENS);
      const trials: FaultTrial[] = [];
      for (let f = 0; f < ctx.faults!; f++) {
        const prompt = buildPrompt(base, ctx.promptTokens[0]!, 50_000 + f + (ctx.round?.index ?? 0) * 100_003);
        const trial = await runFaultTrial(httpPort, { prompt, nPredict, logitBias: ctx.logitBias, fault, signal: ctx.signal });
        trials.push(trial);
        const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : 'n/a');
        ctx.emit({
          kind: 'info',
          message:
            `bench: ${c.id} fault ${f + 1}/${ctx.faults}: rank ${trial.rank} SIGKILLed at token ${trial.faultAtToken}, ` +
            `next token after ${ms(trial.pauseMs)} (rank ready again after ${ms(trial.restartMs)}, chain whole again after ${ms(trial.rejoinMs)}), ` +
            `${trial.completed ? `completed ${trial.tokens}/${trial.expectedTokens} tokens` : `not completed: ${trial.error ?? `${trial.tokens}/${trial.expectedTokens} tokens`}`}`,
        });
        if (ctx.signal?.aborted) throw new UserError('bench interrupted');
        // The next trial starts on a whole chain (a failed one may have left it reconnecting).
        const h = started.find((x) => x.planned === head)!;
        const r = await waitReady(h.proc.done, head.ready, { lineSeen: () => false, timeoutMs: ctx.readyTimeoutMs, pollMs: 100, signal: ctx.signal });
        if (r.kind !== 'ready') throw new ExternalError(`${head.spec.label} did not report a whole chain after fault ${f + 1}`, { command: commandOf(head, ctx.nodes), stderrTail: h.proc.tail.last().slice(-15).join('\n') });
      }
      resume = summarizeFaults(trials);
    }

    const nodes: NodeResult[] = [];
    for (const s of [...started].sort((a, b) => a.planned.rank - b.planned.rank)) {
      const core = c.ranks[s.planned.rank]?.core;
      nodes.push({
        rank: s.planned.rank,
        node: ctx.nodes[s.planned.node]?.name ?? `node ${s.planned.node}`,
        role: s.planned.role,
        layers: s.planned.layers,
        core,
        loadMs: s.loadMs,
        peakRssBytes: peakOf([await s.peakRss(), s.planned.rank === victimRss?.rank ? victimRss.bytes : undefined]),
      });
    }
    const ends = await Promise.all(counters.map((r) => r.snapshot()));
    const links: LinkResult[] = ends.map((now, i) => {
      const start = startCounts[i]!;
      return {
        name: plan.links[i]!.name,
        startBytes: start.forwardBytes + start.backwardBytes,
        totalBytes: now.forwardBytes + now.backwardBytes,
        // Over the measured requests only: a start-up that pushes weights (RPC) queues behind backpressure.
        meanHeldMs: now.heldChunks > start.heldChunks ? (now.heldMsSum - start.heldMsSum) / (now.heldChunks - start.heldChunks) : 0,
      };
    });
    ctx.emit({ kind: 'bench-config-done', id: c.id });
    return {
      ...base,
      nodes,
      links,
      loadMs: Math.max(...nodes.map((n) => n.loadMs)),
      startBytes: networkMeasured ? links.reduce((a, l) => a + l.startBytes, 0) : Number.NaN,
      measurements,
      ...(resume ? { resume } : {}),
    };
  } catch (err) {
    const message = describeFailure(err, started);
    ctx.emit({ kind: 'bench-config-failed', id: c.id, message });
    return { ...base, nodes: [], links: [], loadMs: Number.NaN, startBytes: Number.NaN, measurements: [], error: message };
  } finally {
    await Promise.all([...started].reverse().map((s) => s.proc.stop()));
    await Promise.all(forwards.map((f) => f.stop()));
    await Promise.all(counters.map((r) => r.close()));
    if (secretDir) await rm(secretDir, { recursive: true, force: true });
  }
}

async function measureAll(
  c: BenchConfig,
  ctx: RunContext,
  port: number,
  links: readonly LinkCounter[] | undefined,
  started: readonly Started[],
): Promise<Measurement[]> {
  const base = await tokenize(port, PROMPT_TEXT, ctx.signal);
  // Warm-up: first requests pay for lazy allocations and page faults on every rank. Its bytes are not read (no ss runs).
  await measureBatch(port, [buildPrompt(base, 32, 0)], 4, ctx.logitBias, undefined, ctx.signal);
  const out: Measurement[] = [];
  // Other prompts in every round, so no round can reuse another's work.
  let variant = 1 + (ctx.round?.index ?? 0) * 100_003;
  for (const parallel of ctx.parallel) {
    for (const promptTokens of ctx.promptTokens) {
      const samples: Sample[] = [];
      for (let r = 0; r < ctx.repeat; r++) {
        const prompts = Array.from({ length: parallel }, () => buildPrompt(base, promptTokens, variant++));
        const sample = await measureBatch(port, prompts, ctx.genTokens, ctx.logitBias, links, ctx.signal).catch(async (err: unknown) => {
          throw (await exitedProcessError(started, ctx.nodes)) ?? err;
        });
        samples.push(sample);
        ctx.emit({ kind: 'bench-sample', id: c.id, promptTokens, parallel, repeat: (ctx.round?.index ?? 0) * ctx.repeat + r, sample });
      }
      out.push(summarize(promptTokens, parallel, samples));
    }
  }
  return out;
}

/** The largest of the readings there are (NaN for none). */
const peakOf = (xs: readonly (number | undefined)[]): number => {
  const known = xs.filter((x): x is number => x !== undefined);
  return known.length ? Math.max(...known) : Number.NaN;
};

/**
 * When the head's /health, once it has said the chain is down, first says it is whole again (polled every 20 ms; a
 * /health still 200 just after the kill is the head not having noticed yet). Undefined if that is not seen in time.
 */
async function chainBackAt(apiUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<number | undefined> {
  const deadline = performance.now() + timeoutMs;
  let sawDown = false;
  while (performance.now() < deadline && !signal?.aborted) {
    const h = await headHealth(apiUrl, signal);
    if (!h.ok) sawDown = true;
    else if (sawDown) return performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** A request failed: if a process died, that is the real story. */
async function exitedProcessError(started: readonly Started[], nodes: readonly BenchNode[]): Promise<Error | undefined> {
  const gone = await Promise.race([
    Promise.race(started.map((s) => s.proc.done.then((o) => ({ o, s })))),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)),
  ]);
  return gone ? exitError(gone.o, 'exited during the measurement', commandOf(gone.s.planned, nodes)) : undefined;
}

/** The server's own command line (a remote one runs it over ssh, under the wrapper). */
function commandOf(p: PlannedProcess, nodes: readonly BenchNode[]): string {
  const node = nodes[p.node];
  return `${[p.spec.command, ...p.spec.args].join(' ')}${node?.kind === 'ssh' ? ` (on ${node.name} over ssh)` : ''}`;
}

function describeFailure(err: unknown, started: readonly Started[]): string {
  const text = formatError(err).replace(/^error: /, '');
  const last = started.at(-1);
  return last && !text.includes('stderr') ? `${text}\nlast lines of ${last.planned.spec.label}:\n${last.proc.tail.toString(10)}` : text;
}
