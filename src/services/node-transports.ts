// Builds one transport per node spec (`local` = no ssh) and finds the address each node is reached at.
import { UserError } from '../errors.js';
import type { NodeSpec } from '../plan/node-spec.js';
import { LocalTransport } from '../ssh/local-transport.js';
import { SshTransport } from '../ssh/ssh-transport.js';
import type { SshSettings } from '../ssh/ssh-target.js';
import type { Transport } from '../ssh/transport.js';

export const isLocalSpec = (n: NodeSpec): boolean => n.host === 'local' && !n.user && n.port === undefined;

/** The node's display name: the spec without its memory budget. */
export const nodeName = (n: NodeSpec): string => n.spec.replace(/=.*$/, '');

/** The user's ssh flags (`-F`, `--accept-new-host-keys`, `--connect-timeout`) as transport settings. */
export function sshSettings(
  controlDir: string | undefined,
  o: { sshConfig?: string | undefined; acceptNewHostKeys?: boolean | undefined; connectTimeoutSeconds?: number | undefined },
): SshSettings {
  return {
    ...(controlDir ? { controlDir } : {}),
    ...(o.sshConfig ? { configFile: o.sshConfig } : {}),
    ...(o.acceptNewHostKeys ? { acceptNewHostKeys: true } : {}),
    ...(o.connectTimeoutSeconds !== undefined ? { connectTimeoutSeconds: o.connectTimeoutSeconds } : {}),
  };
}

export function makeTransport(n: NodeSpec, settings: SshSettings): Transport {
  if (isLocalSpec(n)) return new LocalTransport();
  return new SshTransport(
    { name: nodeName(n), host: n.host, ...(n.user ? { user: n.user } : {}), ...(n.port !== undefined ? { port: n.port } : {}) },
    settings,
  );
}

/** Addresses of the two ends of the node's ssh connection: where ranks there bind, and where it sees this machine. */
export async function sshEndpoints(t: Transport): Promise<{ nodeAddress: string; launcherAddress: string }> {
  const { stdout } = await t.exec(['sh', '-c', 'echo "$SSH_CONNECTION"']);
  const [client, , server] = stdout.trim().split(/\s+/);
  if (!client || !server) throw new UserError(`node ${t.name}: could not tell its address (SSH_CONNECTION is empty)`);
  return { nodeAddress: server, launcherAddress: client };
}
