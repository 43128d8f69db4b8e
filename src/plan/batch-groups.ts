// Whether a chain's head batches its slot groups (llama-server --stage-batch-groups N), from what `plan --probe`
// measured: the chain's aggregate decode with BATCH_ROWS requests decoded as one batch, over its one-stream decode.
// A batch pays where its rows share each weight read (a compute-bound CPU, a GPU); where a row costs the same alone
// or in a batch, one group per rank leaves the head's sampling uncovered and is slower than a micro-batch per request.
// Pure.

/** Rows in the probe's batch, and the fewest requests a batched group should hold. */
export const BATCH_ROWS = 4;
/**
 * The gain from which batched groups beat one micro-batch per request. Measured on 2 pinned ranks: a batch of 4 rows
 * at 1.28x one row's rate took 8 streams from 1.25x to 1.60x stock; groups of 2 rows (about 1.1x) were slower than
 * micro-batches of one.
 */
export const BATCH_GAIN_MIN = 1.15;

export interface BatchGroupsChoice {
  /** --stage-batch-groups N (0: off). */
  readonly from: number;
  /** Why, in words for the event log. */
  readonly why: string;
}

/**
 * `asked`: the user's --batch-groups (always wins). Otherwise batched from BATCH_ROWS requests per rank, where every node
 * of the chain was measured at a gain of at least BATCH_GAIN_MIN and the slots can hold that many requests.
 */
export function chooseBatchGroups(o: { ranks: number; parallel: number; gains?: readonly (number | undefined)[]; asked?: number }): BatchGroupsChoice {
  if (o.asked !== undefined) return { from: o.asked, why: o.asked ? `--batch-groups ${o.asked}` : 'off (--batch-groups 0)' };
  const from = BATCH_ROWS * o.ranks;
  if (o.ranks < 2) return { from: 0, why: 'off: one rank' };
  const gains = o.gains ?? [];
  if (gains.length === 0 || gains.some((g) => g === undefined)) return { from: 0, why: 'off: batching not measured on these nodes (plan --probe measures it)' };
  const gain = Math.min(...(gains as number[]));
  const measured = `a batch of ${BATCH_ROWS} rows decodes at ${gain.toFixed(2)}x one row's rate`;
  if (gain < BATCH_GAIN_MIN) return { from: 0, why: `off: ${measured}, under ${BATCH_GAIN_MIN}x` };
  if (o.parallel < from) return { from: 0, why: `off: ${measured}, but ${o.parallel} slot(s) never hold the ${from} requests of one batched group per rank (--parallel ${from})` };
  return { from, why: `from ${from} requests: ${measured}` };
}
