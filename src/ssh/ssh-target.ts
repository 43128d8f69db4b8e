// An ssh destination and the settings every ssh invocation shares.

export interface SshTarget {
  /** The node as the user wrote it ("bob@gpu-box:2222"); named in every message. */
  name: string;
  /** Host name or an alias from the ssh config. */
  host: string;
  user?: string;
  port?: number;
}

export interface SshSettings {
  /** `ssh -F`: a config file instead of ~/.ssh/config (tests, custom setups). */
  configFile?: string;
  /** Accept unknown host keys on first use (StrictHostKeyChecking=accept-new). Off by default: keys are never accepted silently. */
  acceptNewHostKeys?: boolean;
  /** Short directory for ControlMaster sockets (unix socket paths are limited to ~104 bytes). */
  controlDir?: string;
  controlPersistSeconds?: number;
  connectTimeoutSeconds?: number;
  serverAliveIntervalSeconds?: number;
  serverAliveCountMax?: number;
}

export const displayTarget = (t: SshTarget): string => `${t.user ? `${t.user}@` : ''}${t.host}${t.port ? `:${t.port}` : ''}`;
