// How the launcher reaches a node: `local` runs here without ssh, anything else goes through the system ssh.
import type { Readable } from 'node:stream';
import type { CommandHost } from '../process/command-host.js';
import type { ManagedProcess } from '../process/managed-process.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export interface Forward {
  /** Where the launcher reaches the forwarded port ("127.0.0.1:54321"). */
  address: string;
  /** Undefined for local nodes (nothing to forward). */
  process?: ManagedProcess;
  stop(): Promise<void>;
}

export interface UploadOptions {
  /** Total bytes, for percentages. */
  size?: number;
  onProgress?: (sentBytes: number) => void;
  signal?: AbortSignal;
}

export interface Transport extends CommandHost {
  /** Proves the node is reachable and authenticated; throws a UserError naming the node otherwise. */
  connect(signal?: AbortSignal): Promise<void>;
  /** Runs a short command; throws on non-zero exit with the node named. */
  exec(argv: readonly string[], options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<ExecResult>;
  /** Streams bytes into a file on the node (written to a temp name, then renamed). */
  upload(source: Readable, remotePath: string, options?: UploadOptions): Promise<void>;
  /** Streams a tar archive into a directory on the node and extracts it there. */
  uploadTar(source: Readable, remoteDir: string, options?: UploadOptions): Promise<void>;
  /** Makes `host:port` on the node reachable from the launcher (on `localPort` if given, else a free one). */
  forward(remoteHost: string, remotePort: number, localPort?: number): Promise<Forward>;
  /** Makes `localHost:localPort` (on the launcher) reachable on the node at 127.0.0.1:remotePort. */
  reverseForward(remotePort: number, localHost: string, localPort: number): Promise<Forward>;
  /** Closes shared connections; idempotent. */
  close(): Promise<void>;
}
