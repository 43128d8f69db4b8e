// One configuration measured in several rounds (each round starts it, measures every point once, stops it) as one
// result: samples pooled per point, load time as the median round, peak RSS as the largest. Pure.
import { BugError } from '../errors.js';
import type { ConfigResult, LinkResult, Measurement, NodeResult } from './bench-result.js';
import { summarizeFaults } from './fault-trial.js';
import { summarize } from './measurement.js';
import { median, sum } from './stats.js';

export function mergeRounds(rounds: readonly ConfigResult[]): ConfigResult {
  const first = rounds[0];
  if (!first) throw new BugError('mergeRounds needs at least one round');
  const failed = rounds.find((r) => r.error !== undefined);
  if (failed) return failed;
  if (rounds.length === 1) return first;

  const measurements: Measurement[] = first.measurements.map((m) => {
    const same = rounds.map((r) => r.measurements.find((x) => x.promptTokens === m.promptTokens && x.parallel === m.parallel));
    return summarize(m.promptTokens, m.parallel, same.flatMap((x) => x?.samples ?? []));
  });
  const nodes: NodeResult[] = first.nodes.map((n) => {
    const same = rounds.flatMap((r) => r.nodes.filter((x) => x.rank === n.rank));
    return { ...n, loadMs: median(same.map((x) => x.loadMs)), peakRssBytes: Math.max(...same.map((x) => x.peakRssBytes)) };
  });
  const links: LinkResult[] = first.links.map((l, i) => {
    const same = rounds.map((r) => r.links[i]).filter((x): x is LinkResult => x !== undefined);
    const held = same.filter((x) => x.meanHeldMs > 0);
    return {
      name: l.name,
      // What it takes to start is the same each round; the median round is the honest one.
      startBytes: median(same.map((x) => x.startBytes)),
      totalBytes: sum(same.map((x) => x.totalBytes)),
      meanHeldMs: held.length ? sum(held.map((x) => x.meanHeldMs)) / held.length : 0,
    };
  });
  return {
    ...first,
    nodes,
    links,
    loadMs: median(rounds.map((r) => r.loadMs)),
    startBytes: median(rounds.map((r) => r.startBytes)),
    measurements,
    ...(first.resume ? { resume: summarizeFaults(rounds.flatMap((r) => r.resume?.trials ?? [])) } : {}),
  };
}
