// `--nodes` syntax: comma-separated `[user@]host[:port][=24G]`. Shared with the cluster side.
import { UserError } from '../errors.js';
import { parseByteSize } from './size.js';

export interface NodeSpec {
  readonly host: string;
  readonly user?: string;
  readonly port?: number;
  /** Memory budget in bytes, when given. */
  readonly memory?: number;
  /** Layers this node holds (a cluster file's layers=, a manual split); undefined = the planner decides. */
  readonly layers?: number;
  /** A cluster file's `spare` line: provisioned, not started; takes over a worker rank whose node stays lost (up --replace-after). */
  readonly spare?: boolean;
  /** The text this node was parsed from. */
  readonly spec: string;
}

const RE = /^(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?(?:=(.+))?$/;

export function parseNodeSpec(text: string): NodeSpec {
  const spec = text.trim();
  const m = RE.exec(spec);
  if (!m) {
    throw new UserError(`invalid node "${spec}": expected [user@]host[:port][=MEMORY]`, ['example: --nodes alice@gpu1:22=24G,gpu2=16G,localhost']);
  }
  const [, user, rawHost, port, mem] = m;
  const host = rawHost!.startsWith('[') ? rawHost!.slice(1, -1) : rawHost!;
  const node: { host: string; user?: string; port?: number; memory?: number; spec: string } = { host, spec };
  if (user) node.user = user;
  if (port !== undefined) {
    const p = Number(port);
    if (p < 1 || p > 65535) throw new UserError(`invalid node "${spec}": port ${port} is out of range`);
    node.port = p;
  }
  if (mem !== undefined) {
    const bytes = parseByteSize(mem);
    if (bytes === undefined) throw new UserError(`invalid node "${spec}": memory "${mem}" is not a size like 24G or 512MiB`);
    node.memory = bytes;
  }
  return node;
}

export function parseNodeList(text: string): NodeSpec[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new UserError('--nodes is empty', ['example: --nodes gpu1=24G,gpu2=16G']);
  return parts.map(parseNodeSpec);
}
