// --nodes / --cluster at the command edge: `--cluster FILE` and `--nodes @FILE` read a cluster file (parsed in
// plan/cluster-file.ts); any other --nodes text is passed on as it is.
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { parseClusterFile } from '../plan/cluster-file.js';
import type { NodeSpec } from '../plan/node-spec.js';

export function readClusterFile(file: string): NodeSpec[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`cluster file ${file} does not exist`, ['check the path, or list the nodes inline: --nodes host1=24G,host2']);
    throw new UserError(`cannot read the cluster file ${file} (${code ?? String(err)})`, ['give a readable text file with one node per line']);
  }
  return parseClusterFile(text, file);
}

/**
 * The nodes the user gave, or undefined when neither flag is there. A cluster file's spare lines are kept only for
 * `up` (`spares: true`); `plan` and `bench` place layers on the chain's nodes alone.
 */
export function nodesFromArgs(a: { nodes?: string | undefined; cluster?: string | undefined }, o: { spares?: boolean } = {}): string | NodeSpec[] | undefined {
  const file = a.cluster ?? (a.nodes?.startsWith('@') ? a.nodes.slice(1) : undefined);
  if (file === undefined) return a.nodes;
  const specs = readClusterFile(file);
  return o.spares ? specs : specs.filter((s) => !s.spare);
}
