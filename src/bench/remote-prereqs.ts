// What a remote node lacks for the stock and RPC configurations, as data: this machine's stock build must match its
// platform, and a stock/RPC head there needs room for the whole model. Pure; bench-sites.ts acts on the answers.
import { UserError } from '../errors.js';
import type { NodeProbe } from '../provision/node-probe.js';
import { describePlatform, platformMismatch, type Platform } from '../provision/platform.js';
import { formatBytes } from '../plan/size.js';

/** Why this machine's stock llama-server / ggml-rpc-server cannot be copied to the node, or undefined when it can. */
export function stockCopyRefusal(node: string, here: Platform, probe: NodeProbe, theirs: Platform): UserError | undefined {
  const mismatch = platformMismatch(here, theirs);
  if (mismatch) {
    return new UserError(
      `node ${node}: no stock llama-server / ggml-rpc-server for ${describePlatform(theirs)}; this machine's build does not run there (${mismatch})`,
      [
        `run the bench from a machine of the same platform as ${node}`,
        'or leave out the stock and RPC configurations: --no-stock --no-rpc (the chains still run)',
      ],
    );
  }
  if (!probe.writable) {
    return new UserError(`node ${node}: cannot write the cache directory ${probe.cacheDir} for the stock binaries`, [
      `make it writable, or pass --node-cache DIR (a writable directory on ${node})`,
    ]);
  }
  return undefined;
}

/** Why the node cannot take the whole model (`bytes`) for a stock or RPC head, or undefined. */
export function wholeModelRefusal(node: string, probe: NodeProbe, bytes: number): UserError | undefined {
  const problems: string[] = [];
  if (!probe.writable) problems.push(`cannot write the cache directory ${probe.cacheDir}`);
  if (!probe.tools.has('sha256sum')) problems.push('sha256sum is not installed, so the upload cannot be verified');
  if (probe.writable && probe.freeBytes !== undefined && bytes > probe.freeBytes) {
    problems.push(`needs ${formatBytes(bytes)} in ${probe.cacheDir} but only ${formatBytes(probe.freeBytes)} is free there`);
  }
  if (!problems.length) return undefined;
  return new UserError(`node ${node}: cannot take the whole model for the stock/RPC head: ${problems.join('; ')}`, [
    'put a local node first in --nodes, so the stock and RPC heads run on this machine',
    `or fix ${node} (install coreutils; --node-cache DIR on a bigger, writable disk)`,
  ]);
}
