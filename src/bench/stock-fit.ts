// Whether the stock configuration fits: one stock llama-server holds the whole model on node 0. Pure.
import { UserError } from '../errors.js';
import { formatBytes } from '../plan/size.js';

/** A UserError when the model's weights alone exceed node 0's memory (unknown memory: assumed to fit). */
export function stockFitRefusal(node: string, modelBytes: number, memTotalBytes: number | undefined): UserError | undefined {
  if (memTotalBytes === undefined || modelBytes <= memTotalBytes) return undefined;
  return new UserError(
    `stock llama-server needs the whole model (${formatBytes(modelBytes)}) on one node, but ${node} has ${formatBytes(memTotalBytes)} of memory in total`,
    ['the chains and RPC split the model and still run; put a node with more memory first in --nodes to measure stock too', 'or skip it: --no-stock'],
  );
}
