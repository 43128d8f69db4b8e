// `--nodes` / `-n` for bench: which machines the ranks run on, and the flags that only make sense on one machine. Pure.
import { UserError } from '../errors.js';
import { parseNodeSpec, type NodeSpec } from '../plan/node-spec.js';
import { isLocalSpec, nodeName } from '../runtime/node-transports.js';
import type { BenchNode } from './bench-config.js';

/**
 * A count of local nodes, or the nodes `up` takes: `--nodes` text or the specs of a cluster file. `local` (also
 * `localhost`, `127.0.0.1`: the runtime's isLocalSpec) runs here, `[user@]host[:port]` over ssh. Memory budgets do not apply (the bench
 * balances the layers over nodes of one speed): see budgetsIgnored().
 */
export function benchNodes(given: string | readonly NodeSpec[] | undefined, count: number | undefined): BenchNode[] {
  if (given !== undefined && count !== undefined) throw new UserError('pass either --nodes or -n, not both');
  if (given === undefined) {
    if (count === undefined) throw new UserError('say how many nodes: -n N or --nodes local,local,local', ['example: llama-relay bench model.gguf -n 3']);
    if (!Number.isInteger(count) || count < 1) throw new UserError(`-n must be a positive integer, not ${count}`);
    return Array.from({ length: count }, (_, i) => ({ name: `local${i}`, kind: 'local' }));
  }
  const specs = typeof given === 'string' ? given.split(',').map((s) => s.trim()).filter(Boolean).map(parseNodeSpec) : given;
  if (specs.length === 0) throw new UserError('--nodes is empty', ['example: --nodes local,local,local or --nodes local,alice@gpu1']);
  return specs.map((n, i): BenchNode =>
    isLocalSpec(n) ? { name: `local${i}`, kind: 'local' } : { name: nodeName(n), kind: 'ssh', spec: n },
  );
}

/** Nodes given with a memory budget, which the bench's placement (nodes of one speed) does not use. */
export function budgetsIgnored(given: string | readonly NodeSpec[] | undefined): string[] {
  if (given === undefined) return [];
  const specs = typeof given === 'string' ? given.split(',').map((s) => s.trim()).filter(Boolean).map(parseNodeSpec) : given;
  return specs.filter((n) => n.memory !== undefined).map(nodeName);
}

/** Flags that emulate or pin things on one machine are refused when some node is remote. */
export function checkRemoteFlags(nodes: readonly BenchNode[], flags: { linkLatencyMs: number; taskset: boolean }): void {
  const remote = nodes.filter((n) => n.kind === 'ssh').map((n) => n.name);
  if (!remote.length) return;
  if (flags.linkLatencyMs > 0) {
    throw new UserError(`--link-latency-ms emulates a network between nodes on this machine; with remote nodes (${remote.join(', ')}) the links are real`, [
      'drop --link-latency-ms to measure the real network',
      'or use local nodes only (-n 3) to emulate a latency',
    ]);
  }
  if (flags.taskset) {
    throw new UserError(`--taskset pins the processes to cores of this machine; it cannot pin them on ${remote.join(', ')}`, [
      'drop --taskset, or use local nodes only',
    ]);
  }
}

/** "512,2048" → [512, 2048]: positive integers. */
export function parseCountList(flag: string, text: string | number, example = '512,2048'): number[] {
  const items = String(text).split(',').map((s) => s.trim()).filter(Boolean);
  const values = items.map(Number);
  if (!items.length || values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new UserError(`${flag} takes positive integers separated by commas, not "${text}"`, [`example: ${flag} ${example}`]);
  }
  return values;
}

/** A bench node as the speed cache names it (plan --probe's node names: this machine's ranks are all "local"). */
export const cacheName = (n: BenchNode): string => (n.kind === 'local' ? 'local' : n.name);
