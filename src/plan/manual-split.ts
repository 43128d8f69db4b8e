// Manual placement: `--split 0:4,4:18` (explicit half-open ranges) and `--layers-per-node 4,14` (counts), or
// `layers=4` per line of a cluster file. Pure: parse the text, then check it against the nodes and the model.
import { UserError } from '../errors.js';

export interface LayerRange {
  readonly layerStart: number;
  /** Exclusive. */
  readonly layerEnd: number;
}

/** What the user asked for, before it is checked against a model: ranges, or counts per node. */
export type ManualSplit =
  | { readonly kind: 'ranges'; readonly ranges: readonly LayerRange[]; readonly from: string }
  | { readonly kind: 'counts'; readonly counts: readonly number[]; readonly from: string };

const RANGES_EXAMPLE = '--split 0:4,4:18 (half-open ranges start:end, in node order)';
const COUNTS_EXAMPLE = '--layers-per-node 4,14 (one count per node, in node order)';

const whole = (s: string): number | undefined => (/^\d+$/.test(s) ? Number(s) : undefined);

/** `--split` text: comma-separated `start:end`, half-open, in node order. Checks the syntax only. */
export function parseSplit(text: string, flag = '--split'): ManualSplit {
  const parts = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || parts.some((p) => p === '')) throw new UserError(`${flag} "${text}" has an empty entry`, [`example: ${RANGES_EXAMPLE}`]);
  const ranges = parts.map((p, i): LayerRange => {
    const m = /^(\d+)\s*:\s*(\d+)$/.exec(p);
    if (!m) throw new UserError(`${flag}: node ${i}'s entry "${p}" is not start:end`, [`example: ${RANGES_EXAMPLE}`]);
    const [a, b] = [Number(m[1]), Number(m[2])];
    if (b <= a) throw new UserError(`${flag}: node ${i}'s range ${p} holds no layers (the end is exclusive, so it must be above the start)`, [`e.g. ${a}:${a + 1} is layer ${a} alone`]);
    return { layerStart: a, layerEnd: b };
  });
  return { kind: 'ranges', ranges, from: flag };
}

/** `--layers-per-node` text: comma-separated positive counts, in node order. Checks the syntax only. */
export function parseLayersPerNode(text: string, flag = '--layers-per-node'): ManualSplit {
  const parts = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || parts.some((p) => p === '')) throw new UserError(`${flag} "${text}" has an empty entry`, [`example: ${COUNTS_EXAMPLE}`]);
  const counts = parts.map((p, i) => {
    const n = whole(p);
    if (n === undefined) throw new UserError(`${flag}: node ${i}'s count "${p}" is not a whole number`, [`example: ${COUNTS_EXAMPLE}`]);
    if (n === 0) throw new UserError(`${flag}: node ${i} gets zero layers; every node in the chain needs at least one`, ['drop the node from --nodes, or give it a layer']);
    return n;
  });
  return { kind: 'counts', counts, from: flag };
}

/**
 * The ranges a manual split gives `nodeCount` nodes over a model of `layers` layers, or a UserError naming what is
 * wrong: the node count, a gap, an overlap, a range past the model's layers, or counts that do not add up.
 */
export function resolveSplit(split: ManualSplit, nodeCount: number, layers: number): LayerRange[] {
  const entries = split.kind === 'ranges' ? split.ranges.length : split.counts.length;
  if (entries !== nodeCount) {
    throw new UserError(`${split.from} gives ${entries} ${split.kind === 'ranges' ? 'range' : 'count'}${entries === 1 ? '' : 's'} but there ${nodeCount === 1 ? 'is 1 node' : `are ${nodeCount} nodes`}`, [
      'give one entry per node, in the order of --nodes (or of the cluster file)',
    ]);
  }
  if (split.kind === 'counts') {
    const sum = split.counts.reduce((a, b) => a + b, 0);
    if (sum !== layers) {
      throw new UserError(`${split.from} ${split.counts.join(',')} adds up to ${sum} layers but the model has ${layers}`, [
        sum < layers ? `give the nodes ${layers - sum} more layer${layers - sum === 1 ? '' : 's'}` : `take ${sum - layers} layer${sum - layers === 1 ? '' : 's'} away`,
      ]);
    }
    let start = 0;
    return split.counts.map((n) => {
      const r = { layerStart: start, layerEnd: start + n };
      start += n;
      return r;
    });
  }
  const fmt = (r: LayerRange) => `${r.layerStart}:${r.layerEnd}`;
  split.ranges.forEach((r, i) => {
    const expected = i === 0 ? 0 : split.ranges[i - 1]!.layerEnd;
    if (r.layerStart > expected) {
      const what = i === 0 ? `starts at layer ${r.layerStart}, so layers 0-${r.layerStart - 1} have no node` : `leaves a gap: layers ${expected}-${r.layerStart - 1} between node ${i - 1} (${fmt(split.ranges[i - 1]!)}) and node ${i} (${fmt(r)}) have no node`;
      throw new UserError(`${split.from} ${what}`, [`start node ${i}'s range at ${expected}`]);
    }
    if (r.layerStart < expected) {
      throw new UserError(`${split.from}: node ${i} (${fmt(r)}) overlaps node ${i - 1} (${fmt(split.ranges[i - 1]!)}) on layers ${r.layerStart}-${Math.min(expected, r.layerEnd) - 1}`, [
        `each layer lives on one node: start node ${i}'s range at ${expected}`,
      ]);
    }
    if (r.layerEnd > layers) {
      throw new UserError(`${split.from}: node ${i}'s range ${fmt(r)} goes past the model's ${layers} layers (the last is layer ${layers - 1})`, [
        `end the last range at ${layers}`,
      ]);
    }
  });
  const end = split.ranges[split.ranges.length - 1]!.layerEnd;
  if (end < layers) {
    throw new UserError(`${split.from} ends at layer ${end} but the model has ${layers} layers: layers ${end}-${layers - 1} have no node`, [`end the last range at ${layers}`]);
  }
  return split.ranges.map((r) => ({ ...r }));
}

/** `0:4,4:18`: the --split text of these ranges (for messages and plan output). */
export const formatSplit = (ranges: readonly LayerRange[]): string => ranges.map((r) => `${r.layerStart}:${r.layerEnd}`).join(',');

/** The manual split from the flags and the cluster file's `layers=`, at most one of them; undefined when none is given. */
export function manualSplitFrom(o: { split?: string | undefined; layersPerNode?: string | undefined; nodeLayers?: readonly (number | undefined)[] | undefined }): ManualSplit | undefined {
  const given = [o.split !== undefined && '--split', o.layersPerNode !== undefined && '--layers-per-node', o.nodeLayers?.some((n) => n !== undefined) && 'layers= in the cluster file'].filter(
    (x): x is string => typeof x === 'string',
  );
  if (given.length > 1) throw new UserError(`${given.join(' and ')} both place layers; give one of them`);
  if (o.split !== undefined) return parseSplit(o.split);
  if (o.layersPerNode !== undefined) return parseLayersPerNode(o.layersPerNode);
  if (o.nodeLayers?.some((n) => n !== undefined)) {
    const missing = o.nodeLayers.flatMap((n, i) => (n === undefined ? [i] : []));
    if (missing.length) {
      throw new UserError(`the cluster file gives layers= for some nodes but not for node${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, [
        'give every line a layers= count, or none (then the planner places them)',
      ]);
    }
    return { kind: 'counts', counts: o.nodeLayers as number[], from: 'layers= in the cluster file' };
  }
  return undefined;
}
