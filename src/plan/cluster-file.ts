// `--cluster FILE` (or `--nodes @FILE`): the nodes as a text file, one per line. Pure: the command edge reads the file.
//
//   # comments and blank lines are ignored
//   local mem=8G
//   alice@gpu1:2222 mem=24G
//   gpu2
//   alice@gpu1 layers=14   (layers=: a manual split; on every line or on none)
//   gpu3 mem=8G spare      (a spare: provisioned, not started; takes over a lost worker rank)
import { UserError } from '../errors.js';
import { parseNodeSpec, type NodeSpec } from './node-spec.js';
import { parseByteSize } from './size.js';

/** The keys a node line may carry after its address. */
export const CLUSTER_KEYS = {
  mem: 'memory budget for the node, like 24G or 512MiB (as host=24G in --nodes)',
  layers: 'how many layers the node holds, in file order (as --layers-per-node); give it on every line or on none',
} as const;

type Key = keyof typeof CLUSTER_KEYS;
const isKey = (k: string): k is Key => Object.hasOwn(CLUSTER_KEYS, k);

const EXAMPLE = 'alice@gpu1:2222 mem=24G';
/** The word that marks a line as a spare node (not a key=value: it has no value). */
export const SPARE_WORD = 'spare';

/** The nodes in a cluster file's text, in order; `file` names it in errors, which also give the line number. */
export function parseClusterFile(text: string, file: string): NodeSpec[] {
  const nodes: NodeSpec[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const at = `${file}:${i + 1}`;
    const words = raw.replace(/#.*$/, '').trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    const [address, ...pairs] = words as [string, ...string[]];
    const fail = (what: string, next: string[] = []) => new UserError(`${at}: ${what}`, [...next, `each line is [user@]host[:sshport] [key=value ...], e.g. ${EXAMPLE}`]);
    if (address.includes('=')) {
      throw fail(`"${address}" is not a node address`, [`write the memory budget as a key: ${address.slice(0, address.indexOf('='))} mem=${address.slice(address.indexOf('=') + 1)}`]);
    }
    const values: Partial<Record<Key, string>> = {};
    let spare = false;
    for (const pair of pairs) {
      if (pair === SPARE_WORD) {
        if (spare) throw fail('spare is given twice');
        spare = true;
        continue;
      }
      const eq = pair.indexOf('=');
      if (eq <= 0) throw fail(`"${pair}" is not key=value (nor the word ${SPARE_WORD})`);
      const [key, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
      if (!isKey(key)) throw fail(`unknown key "${key}"`, [`known keys: ${Object.entries(CLUSTER_KEYS).map(([k, d]) => `${k} (${d})`).join('; ')}`]);
      if (values[key] !== undefined) throw fail(`${key} is given twice`);
      if (key === 'mem' && parseByteSize(value) === undefined) throw fail(`mem "${value}" is not a size like 24G or 512MiB`);
      if (key === 'layers' && !/^\d+$/.test(value)) throw fail(`layers "${value}" is not a whole number of layers`);
      if (key === 'layers' && Number(value) === 0) throw fail('layers=0: every node in the chain needs at least one layer', ['drop the line, or give it a layer']);
      values[key] = value;
    }
    if (spare && values.layers !== undefined) {
      throw fail('a spare takes the layers of the rank it replaces, so it has no layers=', [`drop layers=${values.layers} from the spare line`]);
    }
    try {
      const node = parseNodeSpec(values.mem !== undefined ? `${address}=${values.mem}` : address);
      const withLayers = values.layers !== undefined ? { ...node, layers: Number(values.layers) } : node;
      nodes.push(spare ? { ...withLayers, spare: true } : withLayers);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw fail(`"${address}" is not [user@]host[:sshport]${/port .* out of range/.test(err.message) ? ' (the port is out of range)' : ''}`);
    }
  });
  if (nodes.every((n) => n.spare)) {
    throw new UserError(`${file} lists no nodes${nodes.length ? ' besides spares' : ''}`, [`put one node per line, e.g. ${EXAMPLE} (or local for this machine)`]);
  }
  return nodes;
}
