// The one even split of N layers over k ranks (`up --layers`, `node --layers`, every bench configuration). Pure.
import { UserError } from '../errors.js';

/**
 * `layers` as `ranks` contiguous half-open ranges whose sizes differ by at most one; leftover layers go to the first
 * ranks (10 over 3 is 4,3,3), as `up --layers` has always launched them.
 */
export function evenSplit(layers: number, ranks: number): [number, number][] {
  if (!Number.isInteger(layers) || layers < 1) throw new UserError(`the model has no layers to split (${layers})`);
  if (!Number.isInteger(ranks) || ranks < 1) throw new UserError(`cannot split into ${ranks} ranks`);
  if (ranks > layers) throw new UserError(`${ranks} ranks but the model has only ${layers} layers`, [`use at most ${layers} nodes`]);
  const base = Math.floor(layers / ranks);
  const extra = layers % ranks;
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < ranks; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}
