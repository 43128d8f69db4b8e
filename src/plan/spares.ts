// Spare nodes (a cluster file's `spare` lines) and `up --replace-after`: which nodes are spares, whether each can
// take the ranks it may replace, the timeouts that make a move worth it, and which spare a lost rank moves to. Pure.
//
// A spare replaces a worker rank (1..N-1) only: the head holds the requests, their sampler state and the API, so a
// lost head ends them whatever starts in its place. A spare may be asked to take any worker's range (nobody knows
// which node will be lost), so it is provisioned with every worker's slice and its budget must hold the largest one.
import { UserError } from '../errors.js';
import type { NodeSpec } from './node-spec.js';
import { formatBytes } from './size.js';

/** `up --replace-after` when not given: long enough to ride out a Wi-Fi hiccup or a rank's own restart. */
export const DEFAULT_REPLACE_AFTER_SECONDS = 30;
/** The engine's own --stage-resume-timeout default. */
export const ENGINE_RESUME_TIMEOUT_SECONDS = 60;
/** Allowed on top of --replace-after in the default resume timeout: the spare loads its range, the chain re-forms. */
export const SPARE_START_ALLOWANCE_SECONDS = 60;

export interface SpareNode {
  /** The node's name as written (without its memory budget), as the transports name it. */
  readonly name: string;
  readonly memory?: number;
}

const nameOf = (n: NodeSpec): string => n.spec.replace(/=.*$/, '');

/** The chain's nodes and the spares, in file order. */
export function splitSpares(specs: readonly NodeSpec[]): { active: NodeSpec[]; spares: SpareNode[] } {
  const active = specs.filter((s) => !s.spare);
  const spares = specs.filter((s) => s.spare).map((s): SpareNode => ({ name: nameOf(s), ...(s.memory !== undefined ? { memory: s.memory } : {}) }));
  const activeNames = new Set(active.map(nameOf));
  const seen = new Set<string>();
  for (const s of spares) {
    if (activeNames.has(s.name)) {
      throw new UserError(`spare ${s.name} is also a node of the chain`, ['a spare must be another machine: drop its spare line, or its other line']);
    }
    if (seen.has(s.name)) throw new UserError(`spare ${s.name} is listed twice`, ['keep one spare line per machine']);
    seen.add(s.name);
  }
  return { active, spares };
}

/**
 * The replace-after and resume timeouts `up` runs with. Without spares: --replace-after is refused, the resume timeout
 * is the user's (or the engine default). With spares: replace-after defaults to 30 s, and the resume timeout to
 * replace-after plus time for the spare to start (at least the engine default), so requests in flight live through
 * the move; one the user set at or below replace-after would end every request before a spare could take over.
 */
export function spareTimeouts(o: { spares: number; replaceAfterSeconds?: number; resumeTimeoutSeconds?: number }): {
  replaceAfterSeconds?: number;
  resumeTimeoutSeconds?: number;
} {
  const r = o.replaceAfterSeconds;
  if (r !== undefined && !(Number.isFinite(r) && r > 0)) {
    throw new UserError(`--replace-after ${r} is not a positive number of seconds`, [`e.g. --replace-after ${DEFAULT_REPLACE_AFTER_SECONDS}`]);
  }
  const resume = o.resumeTimeoutSeconds;
  if (o.spares === 0) {
    if (r !== undefined) throw new UserError('--replace-after needs a spare node, and there is none', ['mark a node as a spare in the cluster file: gpu3 mem=8G spare']);
    return resume !== undefined ? { resumeTimeoutSeconds: resume } : {};
  }
  const replaceAfterSeconds = r ?? DEFAULT_REPLACE_AFTER_SECONDS;
  if (resume === undefined) {
    return { replaceAfterSeconds, resumeTimeoutSeconds: Math.max(ENGINE_RESUME_TIMEOUT_SECONDS, replaceAfterSeconds + SPARE_START_ALLOWANCE_SECONDS) };
  }
  // 0 turns resume off on purpose: a spare still restores the chain for the next request.
  if (resume > 0 && resume <= replaceAfterSeconds) {
    throw new UserError(
      `--resume-timeout ${resume} is not above --replace-after ${replaceAfterSeconds}: requests in flight would fail before a spare takes over the lost rank`,
      [
        `give the requests time for the move and the spare's start: --resume-timeout ${replaceAfterSeconds + SPARE_START_ALLOWANCE_SECONDS}`,
        `or move sooner: --replace-after ${Math.max(1, Math.floor(resume / 3))}`,
        'or leave both out (30 s and 90 s)',
      ],
    );
  }
  return { replaceAfterSeconds, resumeTimeoutSeconds: resume };
}

/**
 * Refuses spares that cannot do their job before anything starts: a chain with no worker to replace, or a spare whose
 * budget is below a worker's estimated memory (it may be asked to take any worker's range). `rankMemory[i]` is the
 * plan's estimate for rank i, when known.
 */
export function checkSpares(spares: readonly SpareNode[], rankMemory: readonly (number | undefined)[]): void {
  if (spares.length === 0) return;
  if (rankMemory.length < 2) {
    throw new UserError(`spare ${spares[0]!.name}: the chain has only the head, and a spare replaces a worker rank`, ['add a node to the chain, or drop the spare line']);
  }
  for (const s of spares) {
    if (s.memory === undefined) continue;
    const big = rankMemory.map((m, rank) => ({ m, rank })).filter((x) => x.rank > 0 && x.m !== undefined && x.m > s.memory!);
    if (big.length) {
      const worst = big.reduce((a, b) => (b.m! > a.m! ? b : a));
      throw new UserError(
        `spare ${s.name} has mem=${formatBytes(s.memory)}, but rank ${worst.rank} needs about ${formatBytes(worst.m!)} and a spare may have to take any worker's range`,
        [`give the spare a budget of at least ${formatBytes(worst.m!)} (mem= on its line), if the machine has it`, 'or use a bigger machine as the spare, or add nodes so each range is smaller'],
      );
    }
  }
}

/**
 * The spare a lost rank moves to: the first free one in file order whose budget holds the rank (unknown: it holds),
 * or the UserError saying why none can take it.
 */
export function chooseSpare(o: {
  rank: number;
  lostNode: string;
  spares: readonly SpareNode[];
  /** Spares already running a rank (or lost themselves). */
  taken: ReadonlySet<string>;
  rankMemory?: number;
}): SpareNode | UserError {
  const { rank, lostNode } = o;
  if (rank === 0) {
    return new UserError(`rank 0 (the head) on ${lostNode} is lost, and a spare cannot take its place: the head holds the requests and the API`, [
      `bring ${lostNode} back, or restart the cluster with another head`,
    ]);
  }
  if (o.spares.length === 0) return new UserError(`rank ${rank} on ${lostNode} stays lost and there is no spare`, ['mark a node as a spare in the cluster file: gpu3 mem=8G spare']);
  const free = o.spares.filter((s) => !o.taken.has(s.name));
  if (free.length === 0) {
    return new UserError(`rank ${rank} on ${lostNode} stays lost and no spare is left (${o.spares.map((s) => s.name).join(', ')} already in use)`, [
      `bring ${lostNode} back (its rank restarts there), or add spare lines to the cluster file for the next run`,
    ]);
  }
  const fits = free.find((s) => s.memory === undefined || o.rankMemory === undefined || s.memory >= o.rankMemory);
  if (!fits) {
    return new UserError(`rank ${rank} on ${lostNode} stays lost and no free spare has the memory for it (${free.map((s) => s.name).join(', ')})`, [
      `bring ${lostNode} back, or give a spare more memory`,
    ]);
  }
  return fits;
}
