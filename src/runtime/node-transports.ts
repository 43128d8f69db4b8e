// Node → transport: one transport per node name (this machine, or ssh), what "local" means, and the addresses the
// nodes and this machine see each other at. `up`, `node` and `bench` all reach their nodes through this.
import { UserError } from '../errors.js';
import type { NodeSpec } from '../plan/node-spec.js';
import { LocalTransport } from '../ssh/local-transport.js';
import { SshTransport } from '../ssh/ssh-transport.js';
import type { SshSettings } from '../ssh/ssh-target.js';
import type { Transport } from '../ssh/transport.js';
import { LOOPBACK } from './server-argv.js';

/** Hosts that mean this machine: its processes start here, without ssh (with a user or port, the host is dialled over ssh). */
const LOCAL_HOSTS = new Set(['local', 'localhost', '127.0.0.1']);

export const isLocalSpec = (n: NodeSpec): boolean => LOCAL_HOSTS.has(n.host) && !n.user && n.port === undefined;

/** The node's display name: the spec without its memory budget. */
export const nodeName = (n: NodeSpec): string => n.spec.replace(/=.*$/, '');

/** The user's ssh flags (`-F`, `--accept-new-host-keys`, `--connect-timeout`) as transport settings. */
export function sshSettings(
  controlDir: string | undefined,
  o: { sshConfig?: string | undefined; acceptNewHostKeys?: boolean | undefined; connectTimeoutSeconds?: number | undefined },
): SshSettings {
  return { controlDir, configFile: o.sshConfig, acceptNewHostKeys: o.acceptNewHostKeys || undefined, connectTimeoutSeconds: o.connectTimeoutSeconds };
}

export function makeTransport(n: NodeSpec, settings: SshSettings): Transport {
  if (isLocalSpec(n)) return new LocalTransport();
  return new SshTransport({ name: nodeName(n), host: n.host, user: n.user, port: n.port }, settings);
}

/** One transport per node name (a node listed twice runs two ranks over one connection). */
export function nodeTransports(specs: readonly NodeSpec[], settings: SshSettings): Map<string, Transport> {
  const out = new Map<string, Transport>();
  for (const s of specs) if (!out.has(nodeName(s))) out.set(nodeName(s), makeTransport(s, settings));
  return out;
}

/** Addresses of the two ends of the node's ssh connection: where ranks there bind, and where it sees this machine. */
export async function sshEndpoints(t: Transport): Promise<{ nodeAddress: string; launcherAddress: string }> {
  const { stdout } = await t.exec(['sh', '-c', 'echo "$SSH_CONNECTION"']);
  const [client, , server] = stdout.trim().split(/\s+/);
  if (!client || !server) throw new UserError(`node ${t.name}: could not tell its address (SSH_CONNECTION is empty)`);
  return { nodeAddress: server, launcherAddress: client };
}

/**
 * Connects every transport in parallel (`onFailed` per one that cannot connect; the first error is thrown) and
 * returns per transport name the address its processes bind and the others dial: a remote node's own end of its
 * ssh connection; this machine's, where the remote nodes see it (an all-local run stays on loopback).
 */
export async function connectNodes(
  transports: Iterable<Transport>,
  o: { signal?: AbortSignal; onConnect?: (t: Transport) => void; onFailed?: (t: Transport) => void } = {},
): Promise<Map<string, string>> {
  const all = [...transports];
  const endpoints = new Map<string, { nodeAddress: string; launcherAddress: string }>();
  const errors: unknown[] = [];
  await Promise.all(
    all.map(async (t) => {
      o.onConnect?.(t);
      try {
        await t.connect(o.signal);
        if (!t.isLocal) endpoints.set(t.name, await sshEndpoints(t));
      } catch (err) {
        o.onFailed?.(t);
        errors.push(err);
      }
    }),
  );
  if (errors.length) throw errors[0];
  const launcher = [...endpoints.values()][0]?.launcherAddress ?? LOOPBACK;
  return new Map(all.map((t) => [t.name, endpoints.get(t.name)?.nodeAddress ?? launcher]));
}
