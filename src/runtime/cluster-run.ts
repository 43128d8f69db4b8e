// Runs a launch plan: starts ranks downstream-first, exposes the head's API, restarts crashed ranks, tears everything down.
import type { Emit } from '../events/events.js';
import { BugError, UserError } from '../errors.js';
import { chooseSpare, type SpareNode } from '../plan/spares.js';
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
  /** Spare nodes standing by (up --replace-after): a worker rank lost for replaceAfterMs moves to one. */
  spares?: SpareSupervision;
}

export interface SpareSupervision {
  nodes: readonly SpareNode[];
  replaceAfterMs: number;
  /** The plan's memory estimate per rank, when known (a spare's budget must hold the rank it takes). */
  rankMemory?: readonly (number | undefined)[];
  /** Pause between attempts to restart a lost rank on its own node while it may still come back. */
  retryDelayMs?: number;
  /** The chain's launches with each rank in `moves` on its spare (ranks whose argv changes restart). */
  relaunch(moves: ReadonlyMap<number, string>): readonly RankLaunch[];
  /** After the moved rank is ready, before its neighbours restart (the head's relay dials the new address). */
  onMoved?(launches: readonly RankLaunch[]): void | Promise<void>;
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

  /** Per worker rank lost while spares stand by: when the launcher saw it go. */
  private readonly lostSince = new Map<number, number>();
  private readonly moveTimers = new Map<number, NodeJS.Timeout>();
  /** rank -> the spare it runs on now. */
  private readonly moves = new Map<number, string>();
  /** Ranks for which no spare was left: their restarts count against the budget as without spares. */
  private readonly noSpare = new Set<number>();
  private current: readonly RankLaunch[];

  constructor(
    launches: readonly RankLaunch[],
    private readonly o: ClusterRunOptions,
  ) {
    this.current = launches;
    this.fatal = new Promise<never>((_, reject) => (this.rejectFatal = reject));
    this.fatal.catch(() => undefined);
  }

  /** Every rank's launch as it runs now (a moved rank on its spare, its neighbours dialling it). */
  get launches(): readonly RankLaunch[] {
    return this.current;
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
    if (this.o.spares && l.rank > 0 && !this.noSpare.has(l.rank)) return this.whileLost(l, outcome);
    const n = (this.restarts.get(l.rank) ?? 0) + 1;
    const restarting = n <= (this.o.maxRestarts ?? 3);
    this.emitExit(l, outcome, restarting);
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

  private emitExit(l: RankLaunch, outcome: Awaited<RankHandle['process']['done']>, restarting: boolean): void {
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
  }

  /**
   * A worker rank lost while spares stand by: it is restarted on its own node (after a pause, without counting
   * against the budget: its node may be away) until it is ready again or replaceAfterMs have passed since it was
   * first lost; then it moves to a spare.
   */
  private async whileLost(l: RankLaunch, outcome: Awaited<RankHandle['process']['done']>): Promise<void> {
    const spares = this.o.spares!;
    this.emitExit(l, outcome, true);
    if (!this.lostSince.has(l.rank)) {
      this.lostSince.set(l.rank, Date.now());
      const timer = setTimeout(() => void this.moveToSpare(l.rank), spares.replaceAfterMs);
      timer.unref();
      this.moveTimers.set(l.rank, timer);
    }
    const current = this.handles.get(l.rank);
    await new Promise((r) => setTimeout(r, spares.retryDelayMs ?? 1000));
    // Moved, stopped or already restarted meanwhile: this attempt is not needed.
    if (this.stopping || this.handles.get(l.rank) !== current || this.current.find((x) => x.rank === l.rank) !== l) return;
    const again = this.spawn(l);
    try {
      await again.ready;
      if (this.stopping || this.handles.get(l.rank) !== again) return;
      this.found(l.rank);
      this.o.emit({ kind: 'node-phase', rank: l.rank, node: l.node.name, phase: 'ready' });
    } catch {
      // Its exit comes back here through the done handler: the next attempt, or the move.
    }
  }

  /** The rank is whole again: no move pending. */
  private found(rank: number): void {
    this.lostSince.delete(rank);
    clearTimeout(this.moveTimers.get(rank));
    this.moveTimers.delete(rank);
  }

  /** Starts a lost worker rank on a free spare, then restarts the ranks that must dial its new address. */
  private async moveToSpare(rank: number): Promise<void> {
    const spares = this.o.spares!;
    const since = this.lostSince.get(rank);
    this.moveTimers.delete(rank);
    if (this.stopping || since === undefined) return;
    const lost = this.current.find((x) => x.rank === rank)!;
    const taken = new Set(this.moves.values());
    const spare = chooseSpare({ rank, lostNode: lost.node.name, spares: spares.nodes, taken, rankMemory: spares.rankMemory?.[rank] });
    if (spare instanceof UserError) {
      // Back to plain supervision: the pending attempt on its own node goes on, and the restart budget counts.
      this.noSpare.add(rank);
      this.found(rank);
      this.o.emit({ kind: 'error', message: spare.message, next: spare.next, rank, node: lost.node.name });
      return;
    }
    this.lostSince.delete(rank);
    this.moves.set(rank, spare.name);
    const next = spares.relaunch(this.moves);
    const same = (a: RankLaunch, b: RankLaunch | undefined) => !!b && a.argv.join('\0') === b.argv.join('\0') && a.node.name === b.node.name;
    const moved = next.find((x) => x.rank === rank)!;
    const restarted = next.filter((x) => x.rank !== rank && !same(x, this.current.find((c) => c.rank === x.rank)));
    if (restarted.some((x) => x.role === 'head')) {
      this.rejectFatal(new BugError(`moving rank ${rank} would restart the head, which must dial rank 1 through a relay`));
      return;
    }
    this.current = next;
    this.o.emit({
      kind: 'rank-moved',
      rank,
      from: lost.node.name,
      to: spare.name,
      layers: lost.layers,
      lostSeconds: (Date.now() - since) / 1000,
      restarted: restarted.map((x) => x.rank),
    });
    // The old node's attempt (or hung session) goes: its wrapper stops the rank there when its ssh session ends.
    const old = this.handles.get(rank);
    this.handles.delete(rank);
    void old?.process.stop();
    try {
      await this.start1(moved);
    } catch (err) {
      // Its exit is supervised by its done handler (restarts on the spare, or the next spare); the ranks that dial it
      // are re-pointed all the same, or a later restart there would leave them dialling the lost node for good.
      if (!this.stopping) this.o.emit({ kind: 'error', message: err instanceof Error ? err.message : String(err), rank });
    }
    try {
      await spares.onMoved?.(next);
    } catch (err) {
      if (!this.stopping) this.o.emit({ kind: 'error', message: `re-pointing the links to rank ${rank} on ${spare.name} failed: ${err instanceof Error ? err.message : String(err)}`, rank });
    }
    // Downstream first, as at launch: each restarted rank finds its new peer listening.
    for (const r of [...restarted].sort((a, b) => b.rank - a.rank)) {
      try {
        const before = this.handles.get(r.rank);
        this.handles.delete(r.rank);
        await before?.process.stop();
        await this.start1(r);
      } catch (err) {
        // A failed start's own exit is supervised by its done handler (retries, or the next spare).
        if (!this.stopping) this.o.emit({ kind: 'error', message: err instanceof Error ? err.message : String(err), rank: r.rank });
      }
    }
  }

  private async start1(l: RankLaunch): Promise<void> {
    if (this.stopping) return;
    const h = this.spawn(l);
    await h.ready;
    if (!this.stopping && this.handles.get(l.rank) === h) this.o.emit({ kind: 'node-phase', rank: l.rank, node: l.node.name, phase: 'ready' });
  }

  /** Stops every rank in parallel (wrapper: SIGTERM, then SIGKILL after the grace), then forwards and connections. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.moveTimers.values()) clearTimeout(t);
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
