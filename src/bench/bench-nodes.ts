// `--nodes` / `-n` for bench: which machines the ranks run on. Pure.
import { UserError } from '../errors.js';
import type { BenchNode } from './bench-config.js';

const LOCAL = new Set(['local', 'localhost', '127.0.0.1']);

/**
 * `local,local,local` or a count. Remote nodes (`[user@]host`) are the same list syntax as `plan`; the
 * bench does not launch over ssh yet, so they are refused with a clear next step.
 */
export function benchNodes(spec: string | undefined, count: number | undefined): BenchNode[] {
  if (spec !== undefined && count !== undefined) throw new UserError('pass either --nodes or -n, not both');
  if (spec === undefined) {
    if (count === undefined) throw new UserError('say how many nodes: -n N or --nodes local,local,local', ['example: llama-relay bench model.gguf -n 3']);
    if (!Number.isInteger(count) || count < 1) throw new UserError(`-n must be a positive integer, not ${count}`);
    return Array.from({ length: count }, (_, i) => ({ name: `local${i}`, kind: 'local' }));
  }
  const parts = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new UserError('--nodes is empty', ['example: --nodes local,local,local']);
  const remote = parts.filter((p) => !LOCAL.has(p));
  if (remote.length) {
    throw new UserError(`bench runs on local nodes only for now; cannot use ${remote.join(', ')}`, [
      'use --nodes local,local,local (or -n 3) to emulate the nodes on this machine',
      'add --link-latency-ms to emulate the network between them',
    ]);
  }
  return parts.map((_, i) => ({ name: `local${i}`, kind: 'local' }));
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
