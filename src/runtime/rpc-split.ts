// The llama.cpp RPC flags that reproduce a chain's layer split. Pure.
//
// llama.cpp keeps "layers" [0, L+1-ngl) on the CPU of the llama-server process and spreads the last `ngl`
// (the L blocks plus the output layer, index L) over the offload devices by cumulative --tensor-split
// fractions (llama-model.cpp: upper_bound(splits, float(il - i_gpu_start) / ngl)). So remote ranges
// [a_1, b_1) .. [a_k, L) need ngl = L - a_1 + 1 and -ts = their sizes with the last one + 1 (the output
// index falls on the last device); the output tensors are then overridden back onto the head's CPU
// (-ot), where the chain's head keeps them too, so logits never cross the network.
import { BugError } from '../errors.js';

export interface RpcSplit {
  /** -ngl */
  readonly gpuLayers: number;
  /** -ts, one entry per RPC device */
  readonly tensorSplit: readonly number[];
  /** -dev: llama.cpp names RPC devices RPC0, RPC1, ... in --rpc order */
  readonly devices: readonly string[];
  /** -ot: the output layer's tensors stay on the head (token_embd for tied embeddings). */
  readonly overrides: readonly string[];
}

export const OUTPUT_ON_HOST = ['^output\\.weight=CPU', '^output\\.bias=CPU', '^output_norm\\.weight=CPU', '^output_norm\\.bias=CPU', '^token_embd\\.weight=CPU'];

export function rpcSplit(ranges: readonly (readonly [number, number])[], layers: number): RpcSplit {
  if (ranges.length < 2) throw new BugError('an RPC configuration needs a head and at least one remote');
  ranges.forEach(([a, b], i) => {
    const prevEnd = i === 0 ? 0 : ranges[i - 1]![1];
    if (a !== prevEnd || b <= a) throw new BugError(`ranges are not contiguous at ${i}: ${a}:${b}`);
  });
  if (ranges.at(-1)![1] !== layers) throw new BugError(`ranges end at ${ranges.at(-1)![1]}, the model has ${layers} layers`);
  const remotes = ranges.slice(1);
  return {
    gpuLayers: layers - ranges[0]![1] + 1,
    tensorSplit: remotes.map(([a, b], i) => b - a + (i === remotes.length - 1 ? 1 : 0)),
    devices: remotes.map((_, i) => `RPC${i}`),
    overrides: OUTPUT_ON_HOST,
  };
}

/** Which device llama.cpp assigns layer `il` (0..L, L = output) to before -ot; -1 is the CPU. Mirrors llama-model.cpp. */
export function llamaCppLayerDevice(il: number, layers: number, split: Pick<RpcSplit, 'gpuLayers' | 'tensorSplit'>): number {
  const iGpuStart = Math.max(layers + 1 - split.gpuLayers, 0);
  const act = Math.min(split.gpuLayers, layers + 1);
  if (il < iGpuStart || il - iGpuStart >= act) return -1;
  const f = Math.fround;
  let sum = f(0);
  const cum = split.tensorSplit.map((x) => (sum = f(sum + f(x))));
  const splits = cum.map((c) => f(c / sum));
  const v = f(f(il - iGpuStart) / f(act));
  const idx = splits.findIndex((s) => s > v);
  return idx === -1 ? splits.length - 1 : idx;
}
