// Even contiguous layer ranges: the same split for the chain and for llama.cpp RPC. Pure.
import { UserError } from '../errors.js';

/**
 * Splits `layers` into `parts` contiguous half-open ranges whose sizes differ by at most one.
 * The head (part 0) also holds the embeddings and lm_head, so leftover layers go to the last parts.
 */
export function evenSplit(layers: number, parts: number): [number, number][] {
  if (!Number.isInteger(layers) || layers < 1) throw new UserError(`the model has no layers to split (${layers})`);
  if (!Number.isInteger(parts) || parts < 1) throw new UserError(`cannot split into ${parts} parts`);
  if (parts > layers) throw new UserError(`${parts} ranks but the model has only ${layers} layers`, [`use at most ${layers} nodes`]);
  const base = Math.floor(layers / parts);
  const extra = layers % parts;
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const size = base + (i >= parts - extra ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}
