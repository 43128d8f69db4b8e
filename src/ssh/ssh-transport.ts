// Transport over the system ssh: one ControlMaster per node, non-interactive, errors named by node.
import { mkdtempSync, rmSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import getPort from 'get-port';
import { UserError } from '../errors.js';
import { runToCompletion, startProcess, type StartOptions } from '../process/managed-process.js';
import type { ProcessSpec } from '../process/process-spec.js';
import { shellJoin } from '../process/shell-quote.js';
import { remoteFailure } from './ssh-errors.js';
import { sshArgs, sshControlArgs, sshExecArgs, sshForwardArgs, sshMasterArgs, sshReverseForwardArgs } from './ssh-options.js';
import type { SshSettings, SshTarget } from './ssh-target.js';
import type { ExecResult, Forward, Transport, UploadOptions } from './transport.js';
import { waitForPort } from './wait-for-port.js';

/** A short private directory for control sockets: $TMPDIR if it is short, else /tmp, keeping paths under the ~104-byte limit. */
export function makeControlDir(): { dir: string; remove: () => void } {
  const tmp = process.env.TMPDIR?.replace(/\/+$/, '');
  const dir = mkdtempSync(`${tmp && tmp.length <= 40 ? tmp : '/tmp'}/lr-`);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export class SshTransport implements Transport {
  readonly isLocal = false;
  readonly name: string;
  constructor(
    readonly target: SshTarget,
    readonly settings: SshSettings,
  ) {
    this.name = target.name;
  }

  commandSpec(argv: readonly string[], label: string): ProcessSpec {
    return { label, command: 'ssh', args: sshExecArgs(this.target, this.settings, shellJoin(argv)) };
  }

  async connect(signal?: AbortSignal): Promise<void> {
    if (!this.settings.controlDir) {
      await this.exec(['true'], { signal });
      return;
    }
    if (await this.masterAlive()) return;
    const o = await runToCompletion(
      { label: `ssh to ${this.name}`, command: 'ssh', args: sshMasterArgs(this.target, this.settings) },
      { signal, timeoutMs: ((this.settings.connectTimeoutSeconds ?? 10) + 20) * 1000 },
    );
    if (o.exitCode !== 0) throw remoteFailure(this.target, o, 'connecting over ssh', this.settings);
  }

  /** True when this node's ControlMaster answers. */
  async masterAlive(): Promise<boolean> {
    if (!this.settings.controlDir) return false;
    const o = await runToCompletion(
      { label: `ssh -O check ${this.name}`, command: 'ssh', args: sshControlArgs(this.target, this.settings, 'check') },
      { timeoutMs: 5000 },
    );
    return o.exitCode === 0;
  }

  async exec(argv: readonly string[], options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ExecResult> {
    const o = await runToCompletion(this.commandSpec(argv, `${argv[0]} on ${this.name}`), options);
    if (o.exitCode !== 0) throw remoteFailure(this.target, o, `\`${shellJoin(argv).slice(0, 200)}\``, this.settings);
    return { stdout: o.stdout, stderr: o.stderrTail.join('\n') };
  }

  upload(source: Readable, remotePath: string, options: UploadOptions = {}): Promise<void> {
    const tmp = `${remotePath}.part`;
    const script = `mkdir -p "$(dirname "$1")" && cat > "$2" && mv -f "$2" "$1"`;
    return this.pipeInto(source, ['sh', '-c', script, 'upload', remotePath, tmp], `upload to ${remotePath}`, options);
  }

  uploadTar(source: Readable, remoteDir: string, options: UploadOptions = {}): Promise<void> {
    const script = `mkdir -p "$1" && tar -xf - -C "$1"`;
    return this.pipeInto(source, ['sh', '-c', script, 'untar', remoteDir], `upload into ${remoteDir}`, options);
  }

  private async pipeInto(source: Readable, argv: string[], what: string, options: UploadOptions): Promise<void> {
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        options.onProgress?.(sent);
        cb(null, chunk);
      },
    });
    const start: StartOptions = { stdinFrom: source.pipe(counter) };
    if (options.signal) start.signal = options.signal;
    const p = startProcess({ ...this.commandSpec(argv, `${what} on ${this.name}`), keepStdinOpen: true }, start);
    const o = await p.done;
    if (o.exitCode !== 0) throw remoteFailure(this.target, o, what, this.settings);
  }

  async forward(remoteHost: string, remotePort: number, wanted?: number): Promise<Forward> {
    const localPort = wanted ?? (await getPort({ host: '127.0.0.1' }));
    const args = sshForwardArgs(this.target, this.settings, { localPort, remoteHost, remotePort });
    // stdin stays open: the forward's session ends when it closes (the launcher exited), see FORWARD_SESSION.
    const p = startProcess({ label: `port forward to ${this.name}`, command: 'ssh', args, keepStdinOpen: true });
    const address = `127.0.0.1:${localPort}`;
    const up = await waitForPort('127.0.0.1', localPort, { timeoutMs: ((this.settings.connectTimeoutSeconds ?? 10) + 5) * 1000, until: p.done });
    if (!up) {
      const o = await p.stop();
      if (wanted !== undefined && o.stderrTail.some((l) => /Address already in use|cannot listen/i.test(l))) {
        throw new UserError(`port ${wanted} is already taken on this machine, so the API of ${this.name} cannot be forwarded there`, [
          'choose another port: --api-port',
        ]);
      }
      throw remoteFailure(this.target, o, `forwarding port ${remotePort}`, this.settings);
    }
    return { address, process: p, stop: async () => void (await p.stop()) };
  }

  async reverseForward(remotePort: number, localHost: string, localPort: number): Promise<Forward> {
    let up = false;
    const p = startProcess(
      { label: `reverse forward to ${this.name}`, command: 'ssh', args: sshReverseForwardArgs(this.target, this.settings, { remotePort, localHost, localPort }), keepStdinOpen: true },
      { onLine: (l) => (up ||= /remote forward success/.test(l)) },
    );
    const deadline = Date.now() + ((this.settings.connectTimeoutSeconds ?? 10) + 5) * 1000;
    let exited = false;
    void p.done.then(() => (exited = true));
    while (!up && !exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!up) {
      const o = await p.stop();
      if (o.stderrTail.some((l) => /remote port forwarding failed|cannot listen/i.test(l))) {
        throw new UserError(`node ${this.name}: port ${remotePort} is already taken there, so the activation tunnel cannot listen`, [
          'choose other ports: --stage-port-base',
        ]);
      }
      throw remoteFailure(this.target, o, `tunnelling port ${remotePort}`, this.settings);
    }
    return { address: `127.0.0.1:${remotePort}`, process: p, stop: async () => void (await p.stop()) };
  }

  async close(): Promise<void> {
    if (!this.settings.controlDir) return;
    await runToCompletion(
      { label: `close ssh to ${this.name}`, command: 'ssh', args: sshControlArgs(this.target, this.settings, 'exit') },
      { timeoutMs: 5000 },
    );
  }

  /** Args for callers that need the raw destination options (diagnostics). */
  baseArgs(): string[] {
    return sshArgs(this.target, this.settings);
  }
}
