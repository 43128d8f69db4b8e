// Measured speeds, kept per (node, binary, model) so the next plan is instant. Pure: the records and how a
// calibration run's chain timing becomes them; the speed store (a service, at the IO edge) reads and writes the file.
import type { ModelInfo } from './model-info.js';
import { layerBytes, secondsPerByteOf } from './speed-model.js';

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
  /** One-way latency of the link into the next rank, as the head timed it. */
  readonly hopSeconds?: number;
  readonly measuredAt: string;
  /** What was measured: the rank's layers and its compute per token. */
  readonly layers: string;
  readonly computeMsPerToken: number;
}

export const modelKey = (path: string, bytes: number): string => `${path} (${bytes} bytes)`;

/**
 * A calibration run as one record per node (ranks on the same node pooled): the head's chain timing (/health
 * `chain`: each rank's layers' compute, the round trip through the workers, the hop) and the decode time per token
 * the head's own timings report, whose excess over the head's layers and the round trip is its output part.
 */
export function recordsFromChainStats(
  info: ModelInfo,
  ranks: readonly { node: string; layerStart: number; layerEnd: number }[],
  stats: { ranks: readonly { rank: number; computeMsPerToken: number }[]; hopMs: number; roundTripMsPerToken: number },
  decodeMsPerToken: number,
  key: { binary: string; model: string; at: string },
): SpeedRecord[] {
  const byNode = new Map<string, { bytes: number; layers: string[]; ms: number[]; output?: number }>();
  const head = stats.ranks.find((s) => s.rank === 0);
  for (const s of stats.ranks) {
    const r = ranks[s.rank];
    if (!r) continue;
    if (secondsPerByteOf(info, r.layerStart, r.layerEnd, s.computeMsPerToken) === undefined) continue;
    const e = byNode.get(r.node) ?? { bytes: 0, layers: [], ms: [] };
    e.bytes += layerBytes(info, r.layerStart, r.layerEnd);
    e.layers.push(`${r.layerStart}:${r.layerEnd}`);
    e.ms.push(s.computeMsPerToken);
    if (s.rank === 0 && head) {
      const rtt = ranks.length > 1 ? stats.roundTripMsPerToken : 0;
      e.output = Math.max(0, decodeMsPerToken - head.computeMsPerToken - rtt) / 1000;
    }
    byNode.set(r.node, e);
  }
  const hop = ranks.length > 1 && stats.hopMs >= 0 ? { hopSeconds: stats.hopMs / 1000 } : {};
  return [...byNode].map(([node, e]) => ({
    node,
    binary: key.binary,
    model: key.model,
    // Ranks on one node: their compute over their bytes together.
    secondsPerByte: e.ms.reduce((a, b) => a + b, 0) / 1000 / e.bytes,
    ...(e.output !== undefined ? { outputSeconds: e.output } : {}),
    ...hop,
    measuredAt: key.at,
    layers: e.layers.join(','),
    computeMsPerToken: e.ms.reduce((a, b) => a + b, 0),
  }));
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
