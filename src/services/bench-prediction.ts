// bench: its chain configurations against the planner's prediction, from the speed cache (bench/chain-prediction.ts).
import { stat } from 'node:fs/promises';
import { predictChains, type ChainPrediction } from '../bench/chain-prediction.js';
import type { BenchReport } from '../bench/bench-result.js';
import { modelKey } from '../plan/speed-cache.js';
import { loadModelInfo } from './plan.js';
import { readLinks, readSpeeds } from './speed-store.js';

/** `cacheNames`: each bench node as the speed cache names it (this machine's are all "local"). */
export async function benchPredictions(report: BenchReport, cacheNames: readonly string[]): Promise<{ rows: ChainPrediction[]; missing: string[] }> {
  const { info } = await loadModelInfo(report.model.path);
  const key = modelKey(report.model.path, (await stat(report.model.path)).size);
  return predictChains(info, report, cacheNames, key, await readSpeeds(), await readLinks());
}
