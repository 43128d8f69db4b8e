// Measured speeds, kept per (node, binary, model) so the next plan is instant. Pure: the records and how a
// calibration run's chain timing becomes them; the speed store (a service, at the IO edge) reads and writes the file.
import type { ModelInfo } from './model-info.js';
import { layerBytes, secondsPerByteOf, type NodeSpeed } from './speed-model.js';

export interface SpeedRecord {
  /** The node as `up` names it ("local", "alice@gpu1:2222"). */
  readonly node: string;
  /** llama-server the rank ran (the launcher's path: a build directory is named by its pin, patches and flags). */
  readonly binary: string;
  /** The model file and its size. */
  readonly model: string;
  readonly secondsPerByte: number;
  /** Measured as a head: its output part (output norm, lm_head, sampling) per token. */
  readonly outputSeconds?: number;
  /** The mean cost of a hop per token, as the head timed it (/health `hop_ms`). */
  readonly hopSeconds?: number;
  /**
   * What a hop costs beyond its link's latency (sending, receiving, encrypting an activation): the head's mean hop
   * less the mean latency of the calibration's links, as measured apart (LinkRecord). A link is predicted at this plus
   * its own latency.
   */
  readonly hopOverheadSeconds?: number;
  /** Prefill: seconds per byte of layers per prompt token (speed-model.ts prefillSeconds). */
  readonly prefillSecondsPerByte?: number;
  /** The node's CPU quota in cores (its cgroup's), and the threads a rank ran with: cpuShare = quota / threads. */
  readonly cpuQuotaCores?: number;
  readonly threads?: number;
  /**
   * The calibration chain's aggregate decode with BATCH_ROWS requests decoded as one batch (micro-batches off), over its
   * one-stream decode: what batching rows gains on the chain this node was part of (batch-groups.ts).
   */
  readonly batchGain?: number;
  readonly measuredAt: string;
  /** What was measured: the rank's layers and its compute per token. */
  readonly layers: string;
  readonly computeMsPerToken: number;
}

/** One link's measured one-way latency (a TCP connect's round trip, halved), either way between two nodes. */
export interface LinkRecord {
  readonly from: string;
  readonly to: string;
  readonly oneWaySeconds: number;
  readonly measuredAt: string;
}

/** What else a calibration run measured, beyond the head's chain timing. */
export interface CalibrationExtra {
  /** The head's prompt timing of the calibration's prompt (llama-server timings prompt_ms, prompt_n). */
  readonly prompt?: { readonly ms: number; readonly tokens: number };
  /** Per node: its CPU quota in cores, where it has one. */
  readonly cpuQuotaCores?: Readonly<Record<string, number>>;
  /** Threads per rank in the run (default 1 for the quota's share). */
  readonly threads?: number;
  /** Per link of the run (rank i to i+1, the last back to the head): its one-way latency, where measured. */
  readonly linkSeconds?: readonly (number | undefined)[];
  /** The run's batch gain (SpeedRecord.batchGain), where it measured one. */
  readonly batchGain?: number;
}

export const modelKey = (path: string, bytes: number): string => `${path} (${bytes} bytes)`;

/**
 * A calibration run as one record per node (ranks on the same node pooled): the head's chain timing (/health
 * `chain`: each rank's layers' compute, the round trip through the workers, the hop) and the decode time per token
 * the head's own timings report, whose excess over the head's layers and the round trip is its output part.
 *
 * A node under a CPU quota that bound the run measured slower than its full speed: its compute is counted at most
 * cpuShare x the decode time per token (the quota's bound, speed-model.ts quotaSeconds), so that secondsPerByte is its
 * full speed and the quota stays a separate bound that applies to every split alike.
 *
 * Prefill: the engine times each rank's compute on decode tokens only, so the prompt's time is known for the chain as a
 * whole (the head's timings). It is shared over the nodes in proportion to their decode time for the same bytes as
 * measured in this run, stalls included: one factor from decode to prefill for the run, right for nodes of one kind
 * (CPUs; a GPU's factor differs, and its prefill prediction is then rough). Stalls included because a quota slows a
 * node less than 1/share where the machine's other load already keeps it under a core (a shared host): the
 * measured slowdown of its decode is what its prompt saw too (dividing by the share predicted prefill 2x too fast on
 * such a host).
 */
export function recordsFromChainStats(
  info: ModelInfo,
  ranks: readonly { node: string; layerStart: number; layerEnd: number }[],
  stats: { ranks: readonly { rank: number; computeMsPerToken: number }[]; hopMs: number; roundTripMsPerToken: number },
  decodeMsPerToken: number,
  key: { binary: string; model: string; at: string },
  extra: CalibrationExtra = {},
): SpeedRecord[] {
  const threads = extra.threads ?? 1;
  const shareOf = (node: string) => {
    const q = extra.cpuQuotaCores?.[node];
    return q !== undefined && q > 0 ? q / threads : undefined;
  };
  const byNode = new Map<string, { bytes: number; layers: string[]; ms: number[]; measuredMs: number[]; output?: number }>();
  const head = stats.ranks.find((s) => s.rank === 0);
  for (const s of stats.ranks) {
    const r = ranks[s.rank];
    if (!r) continue;
    if (secondsPerByteOf(info, r.layerStart, r.layerEnd, s.computeMsPerToken) === undefined) continue;
    const e = byNode.get(r.node) ?? { bytes: 0, layers: [], ms: [], measuredMs: [] };
    const share = shareOf(r.node);
    e.bytes += layerBytes(info, r.layerStart, r.layerEnd);
    e.layers.push(`${r.layerStart}:${r.layerEnd}`);
    e.ms.push(share === undefined ? s.computeMsPerToken : Math.min(s.computeMsPerToken, share * decodeMsPerToken));
    e.measuredMs.push(s.computeMsPerToken);
    if (s.rank === 0 && head) {
      const rtt = ranks.length > 1 ? stats.roundTripMsPerToken : 0;
      e.output = Math.max(0, decodeMsPerToken - head.computeMsPerToken - rtt) / 1000;
    }
    byNode.set(r.node, e);
  }
  const spb = new Map([...byNode].map(([node, e]) => [node, e.ms.reduce((a, b) => a + b, 0) / 1000 / e.bytes]));
  const measuredSpb = new Map([...byNode].map(([node, e]) => [node, e.measuredMs.reduce((a, b) => a + b, 0) / 1000 / e.bytes]));
  const links = ranks.length > 1 ? (extra.linkSeconds ?? []) : [];
  const measuredLinks = links.filter((x): x is number => x !== undefined);
  const hop = ranks.length > 1 && stats.hopMs >= 0 ? { hopSeconds: stats.hopMs / 1000 } : {};
  const overhead =
    ranks.length > 1 && stats.hopMs >= 0 && measuredLinks.length
      ? { hopOverheadSeconds: Math.max(0, stats.hopMs / 1000 - measuredLinks.reduce((a, b) => a + b, 0) / measuredLinks.length) }
      : {};
  // Prefill: the prompt's time less its link crossings, over the decode-equivalent time of its tokens.
  let factor: number | undefined;
  if (extra.prompt && extra.prompt.tokens > 0 && extra.prompt.ms > 0) {
    const decodeEquivalent = ranks.reduce((a, r) => a + layerBytes(info, r.layerStart, r.layerEnd) * (measuredSpb.get(r.node) ?? 0), 0);
    const linkS = ranks.length > 1 ? ranks.length * ((overhead.hopOverheadSeconds ?? 0) + (measuredLinks.length ? measuredLinks.reduce((a, b) => a + b, 0) / measuredLinks.length : (hop.hopSeconds ?? 0))) : 0;
    const perToken = Math.max(0, extra.prompt.ms / 1000 - linkS) / extra.prompt.tokens;
    if (decodeEquivalent > 0 && perToken > 0) factor = perToken / decodeEquivalent;
  }
  return [...byNode].map(([node, e]) => {
    const quota = extra.cpuQuotaCores?.[node];
    return {
      node,
      binary: key.binary,
      model: key.model,
      // Ranks on one node: their compute over their bytes together.
      secondsPerByte: spb.get(node)!,
      ...(e.output !== undefined ? { outputSeconds: e.output } : {}),
      ...hop,
      ...overhead,
      ...(factor !== undefined ? { prefillSecondsPerByte: factor * measuredSpb.get(node)! } : {}),
      ...(quota !== undefined ? { cpuQuotaCores: quota, threads } : {}),
      ...(extra.batchGain !== undefined ? { batchGain: extra.batchGain } : {}),
      measuredAt: key.at,
      layers: e.layers.join(','),
      computeMsPerToken: e.measuredMs.reduce((a, b) => a + b, 0),
    };
  });
}

/** The measured links with `fresh` replacing those between the same two nodes (either way). */
export function mergeLinks(old: readonly LinkRecord[], fresh: readonly LinkRecord[]): LinkRecord[] {
  const k = (l: LinkRecord) => [l.from, l.to].sort().join('\u0000');
  const latest = new Map(fresh.map((l) => [k(l), l]));
  return [...old.filter((l) => !latest.has(k(l))), ...latest.values()];
}

/** A link's one-way latency, measured either way; undefined where never measured. */
export function lookupLink(links: readonly LinkRecord[], from: string, to: string): number | undefined {
  return [...links].reverse().find((l) => (l.from === from && l.to === to) || (l.from === to && l.to === from))?.oneWaySeconds;
}

/**
 * Each link's cost per token in a chain of `nodes` (rank i to i+1, the last back to the head), from their records:
 * a measured link's latency plus the hop overhead; a link never measured, the mean hop the head timed.
 */
export function chainLinkSeconds(nodes: readonly string[], records: readonly SpeedRecord[], links: readonly LinkRecord[]): number[] {
  if (nodes.length < 2) return [];
  const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const hop = mean(records.flatMap((r) => (r.hopSeconds !== undefined ? [r.hopSeconds] : [])));
  const overheads = records.flatMap((r) => (r.hopOverheadSeconds !== undefined ? [r.hopOverheadSeconds] : []));
  return nodes.map((from, i) => {
    const l = lookupLink(links, from, nodes[(i + 1) % nodes.length]!);
    return l !== undefined && overheads.length ? mean(overheads) + l : hop;
  });
}

/** A record as the speed model takes it. */
export function nodeSpeedOf(r: SpeedRecord): NodeSpeed {
  return {
    secondsPerByte: r.secondsPerByte,
    ...(r.outputSeconds !== undefined ? { outputSeconds: r.outputSeconds } : {}),
    ...(r.prefillSecondsPerByte !== undefined ? { prefillSecondsPerByte: r.prefillSecondsPerByte } : {}),
    ...(r.cpuQuotaCores !== undefined ? { cpuShare: r.cpuQuotaCores / (r.threads ?? 1) } : {}),
  };
}

/** The records with `fresh` replacing those of the same (node, binary, model). */
export function mergeRecords(old: readonly SpeedRecord[], fresh: readonly SpeedRecord[]): SpeedRecord[] {
  const k = (r: SpeedRecord) => `${r.node}\u0000${r.binary}\u0000${r.model}`;
  const keys = new Set(fresh.map(k));
  return [...old.filter((r) => !keys.has(k(r))), ...fresh];
}

/** A node's record for a model: the one of `binary` where given and measured, else the newest. */
export function lookupSpeed(records: readonly SpeedRecord[], node: string, model: string, binary?: string): SpeedRecord | undefined {
  const mine = records.filter((r) => r.node === node && r.model === model).sort((a, b) => b.measuredAt.localeCompare(a.measuredAt));
  return mine.find((r) => r.binary === binary) ?? mine[0];
}
