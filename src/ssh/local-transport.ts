// The `local` node: same interface as ssh, but commands, files and ports stay on this machine.
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { ExternalError } from '../errors.js';
import { localHost } from '../process/command-host.js';
import { runToCompletion } from '../process/managed-process.js';
import type { ProcessSpec } from '../process/process-spec.js';
import type { ExecResult, Forward, Transport, UploadOptions } from './transport.js';

export class LocalTransport implements Transport {
  readonly isLocal = true;
  readonly name = 'local';

  commandSpec(argv: readonly string[], label: string): ProcessSpec {
    return localHost.commandSpec(argv, label);
  }

  async connect(): Promise<void> {}

  async exec(argv: readonly string[], options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ExecResult> {
    const o = await runToCompletion(this.commandSpec(argv, `${argv[0]} on local`), options);
    if (o.exitCode !== 0) {
      throw new ExternalError(`node local: \`${argv.join(' ')}\` failed (${o.meaning})`, {
        command: o.command,
        exitCode: o.exitCode,
        signal: o.signal,
        stderrTail: o.stderrTail.slice(-10).join('\n'),
      });
    }
    return { stdout: o.stdout, stderr: o.stderrTail.join('\n') };
  }

  async upload(source: Readable, path: string, options: UploadOptions = {}): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await pipeline(source, progress(options), createWriteStream(`${path}.part`), { signal: options.signal });
    await rename(`${path}.part`, path);
  }

  async uploadTar(source: Readable, dir: string, options: UploadOptions = {}): Promise<void> {
    await mkdir(dir, { recursive: true });
    await pipeline(source, progress(options), tar.x({ cwd: dir }), { signal: options.signal });
  }

  async forward(remoteHost: string, remotePort: number): Promise<Forward> {
    return { address: `${remoteHost}:${remotePort}`, stop: async () => {} };
  }

  async reverseForward(_remotePort: number, localHost: string, localPort: number): Promise<Forward> {
    return { address: `${localHost}:${localPort}`, stop: async () => {} };
  }

  async close(): Promise<void> {}
}

function progress(options: UploadOptions): Transform {
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      options.onProgress?.(sent);
      cb(null, chunk);
    },
  });
}
