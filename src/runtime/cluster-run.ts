// Runs a launch plan: starts ranks downstream-first, exposes the head's API, restarts crashed ranks, tears everything down.
import type { Emit } from '../events/events.js';
import { BugError, UserError } from '../errors.js';
import type { Forward, Transport } from '../ssh/transport.js';
import { headHealth } from './head-client.js';
import type { RankLaunch } from './launch-plan.js';
import { startRank, type RankHandle } from './rank-process.js';

export interface ClusterRunOptions {
  /** The transport for each node name in the plan. */
  transports: ReadonlyMap<string, Transport>;
  secret: string;
  emit: Emit;
  readyTimeoutMs?: number;
  /** Restarts allowed per rank before the run fails. */
  maxRestarts?: number;
  graceSeconds?: number;
  heartbeatSeconds?: number;
  healthIntervalMs?: number;
  /** How often to sample each rank's resident memory (0 disables). */
  memoryIntervalMs?: number;
  runDir?: string;
  env?: Readonly<Record<string, string>>;
}

export class ClusterRun {
  private readonly handles = new Map<number, RankHandle>();
  private readonly restarts = new Map<number, number>();
  private forward: Forward | undefined;
  private apiUrl: string | undefined;
  private stopping = false;
  private healthTimer: NodeJS.Timeout | undefined;
  private rejectFatal!: (e: Error) => void;
  /** Rejects when supervision gives up (restart budget exhausted); never resolves. */
  readonly fatal: Promise<never>;

  constructor(
    readonly launches: readonly RankLaunch[],
    private readonly o: ClusterRunOptions,
  ) {
    this.fatal = new Promise<never>((_, reject) => (this.rejectFatal = reject));
    this.fatal.catch(() => undefined);
  }

  /** The head, if this run includes it (a hand-started worker rank runs without one). */
  get head(): RankLaunch | undefined {
    return this.launches.find((l) => l.role === 'head');
  }

  /** The head's API as reachable from this machine, once started. */
  get api(): string | undefined {
    return this.apiUrl;
  }

  /** The current process of a rank (diagnostics, tests). */
  rankProcess(rank: number): RankHandle['process'] | undefined {
    return this.handles.get(rank)?.process;
  }

  private transport(l: RankLaunch): Transport {
    const t = this.o.transports.get(l.node.name);
    if (!t) throw new BugError(`no transport for node ${l.node.name}`);
    return t;
  }

  private spawn(l: RankLaunch): RankHandle {
    const h = startRank(l, {
      transport: this.transport(l),
      secret: this.o.secret,
      emit: this.o.emit,
      apiUrl: () => this.apiUrl,
      readyTimeoutMs: this.o.readyTimeoutMs ?? 120_000,
      graceSeconds: this.o.graceSeconds ?? 3,
      heartbeatSeconds: this.o.heartbeatSeconds ?? 3,
      runDir: this.o.runDir,
      env: this.o.env,
    });
    this.handles.set(l.rank, h);
    void h.process.done.then((outcome) => {
      if (this.stopping || this.handles.get(l.rank) !== h) return;
      void this.onCrash(l, h, outcome);
    });
    return h;
  }

  /** Starts every rank in plan order (downstream first), each ready before the next; the head last. Returns the head's API. */
  async start(signal?: AbortSignal): Promise<string | undefined> {
    for (const l of this.launches) {
      if (signal?.aborted || this.stopping) throw new UserError('launch canceled');
      if (l.role === 'head') await this.exposeApi(l);
      const h = this.spawn(l);
      await h.ready;
      this.o.emit({ kind: 'node-phase', rank: l.rank, node: l.node.name, phase: 'ready' });
    }
    this.healthTimer = setInterval(() => void this.checkHealth(), this.o.healthIntervalMs ?? 2000);
    this.healthTimer.unref();
    const memEvery = this.o.memoryIntervalMs ?? 5000;
    if (memEvery > 0) {
      void this.sampleMemory();
      this.memoryTimer = setInterval(() => void this.sampleMemory(), memEvery);
      this.memoryTimer.unref();
    }
    return this.apiUrl;
  }

  private async exposeApi(head: RankLaunch): Promise<void> {
    if (head.readiness.kind !== 'http-health') return;
    const t = this.transport(head);
    const { host, port } = head.readiness;
    // A remote head's API stays on the node's loopback; the launcher reaches it through an ssh forward.
    this.forward = await t.forward(host, port);
    this.apiUrl = `http://${this.forward.address}`;
  }

  private memoryTimer: NodeJS.Timeout | undefined;
  /** One `ps` per node for all its ranks; the rank's pgid is the llama-server's pid (setsid + exec). */
  private async sampleMemory(): Promise<void> {
    const byNode = new Map<string, { rank: number; pid: number }[]>();
    for (const h of this.handles.values()) {
      const pid = h.process.childPgid();
      if (pid !== undefined) byNode.set(h.launch.node.name, [...(byNode.get(h.launch.node.name) ?? []), { rank: h.launch.rank, pid }]);
    }
    await Promise.all(
      [...byNode].map(async ([name, ranks]) => {
        try {
          const { stdout } = await this.o.transports.get(name)!.exec(['ps', '-o', 'pid=,rss=', '-p', ranks.map((r) => r.pid).join(',')], { timeoutMs: 5000 });
          for (const line of stdout.split('\n')) {
            const [pid, rssKb] = line.trim().split(/\s+/).map(Number);
            const r = ranks.find((x) => x.pid === pid);
            if (r && rssKb !== undefined && !this.stopping) this.o.emit({ kind: 'memory', rank: r.rank, rssBytes: rssKb * 1024 });
          }
        } catch {
          // ps exits 1 when a rank is gone between samples; supervision reports that.
        }
      }),
    );
  }

  private healthy = true;
  /** Samples the head's health and chain timing now (also every few seconds while the run lasts). */
  async checkHealth(): Promise<void> {
    if (!this.apiUrl || this.stopping) return;
    const h = await headHealth(this.apiUrl);
    // the engine times every decode token: each worker's hop cost into it, once tokens have flowed
    if (h.ok && h.chain && h.chain.tokens > 0 && !this.stopping) {
      for (const r of h.chain.ranks) if (r.rank > 0) this.o.emit({ kind: 'hop-time', rank: r.rank, ms: h.chain.hop_ms });
      const c = h.chain;
      this.o.emit({
        kind: 'chain-stats',
        ranks: c.ranks.map((r) => ({ rank: r.rank, computeMsPerToken: r.compute_ms_per_token })),
        hopMs: c.hop_ms,
        roundTripMsPerToken: c.round_trip_ms_per_token,
        tokens: c.tokens,
      });
    }
    if (h.ok !== this.healthy) {
      this.healthy = h.ok;
      if (h.ok) this.o.emit({ kind: 'info', message: 'chain connected: the head serves again' });
      else this.o.emit({ kind: 'error', message: `the head reports the chain is down: ${h.message}` });
    }
  }

  private async onCrash(l: RankLaunch, h: RankHandle, outcome: Awaited<RankHandle['process']['done']>): Promise<void> {
    const n = (this.restarts.get(l.rank) ?? 0) + 1;
    const restarting = n <= (this.o.maxRestarts ?? 3);
    this.o.emit({
      kind: 'rank-exited',
      rank: l.rank,
      node: l.node.name,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      meaning: outcome.meaning,
      lastLines: outcome.stderrTail.filter((x) => !x.startsWith('llama-relay-wrapper:')).slice(-5),
      restarting,
    });
    if (!restarting) {
      this.rejectFatal(h.failure(outcome));
      return;
    }
    this.restarts.set(l.rank, n);
    try {
      const again = this.spawn(l);
      await again.ready;
      if (!this.stopping) this.o.emit({ kind: 'node-phase', rank: l.rank, node: l.node.name, phase: 'ready' });
    } catch (err) {
      if (!this.stopping) this.o.emit({ kind: 'error', message: err instanceof Error ? err.message : String(err), rank: l.rank, node: l.node.name });
      // The failed restart's own exit is handled by its done handler (next attempt or fatal).
    }
  }

  /** Stops every rank in parallel (wrapper: SIGTERM, then SIGKILL after the grace), then forwards and connections. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.healthTimer);
    clearInterval(this.memoryTimer);
    await Promise.all(
      [...this.handles.values()].map(async (h) => {
        await h.process.stop();
        this.o.emit({ kind: 'node-phase', rank: h.launch.rank, node: h.launch.node.name, phase: 'stopped' });
      }),
    );
    await this.forward?.stop();
  }
}
