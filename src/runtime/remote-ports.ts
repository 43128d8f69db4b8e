// Free ports on a remote node: what listens there (from /proc/net/tcp*), and a random pick of the rest. Pure, plus the argv.
import { BugError } from '../errors.js';

/** Lists the node's TCP sockets (IPv4 and IPv6); empty where /proc is missing. */
export const listeningPortsArgv = (): string[] => ['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; exit 0'];

/** Local ports of the LISTEN (state 0A) sockets in /proc/net/tcp text. */
export function parseListeningPorts(text: string): Set<number> {
  const out = new Set<number>();
  for (const line of text.split('\n')) {
    const m = /^\s*\d+:\s+[0-9A-Fa-f]+:([0-9A-Fa-f]{4})\s+[0-9A-Fa-f]+:[0-9A-Fa-f]{4}\s+0A\s/.exec(line);
    if (m) out.add(parseInt(m[1]!, 16));
  }
  return out;
}

/** `count` distinct ports in [from, to) that are not taken, picked at random (below the usual ephemeral range). */
export function pickPorts(count: number, taken: ReadonlySet<number>, random: () => number = Math.random, from = 20000, to = 30000): number[] {
  const out: number[] = [];
  const avoid = new Set(taken);
  if (to - from - avoid.size < count) throw new BugError(`not enough free ports in ${from}-${to}`);
  while (out.length < count) {
    const p = from + Math.floor(random() * (to - from));
    if (avoid.has(p)) continue;
    avoid.add(p);
    out.push(p);
  }
  return out;
}
