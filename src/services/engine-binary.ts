// Finds the patched llama-server built from the pin: scripts/build-llama.sh prints `patched=<dir>` on its last lines.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExternalError } from '../errors.js';
import type { Emit } from '../events/events.js';
import { runToCompletion } from '../process/managed-process.js';

const script = fileURLToPath(new URL('../../scripts/build-llama.sh', import.meta.url));

export async function patchedLlamaServer(emit: Emit, signal?: AbortSignal): Promise<string> {
  emit({ kind: 'info', message: 'building (or reusing) the patched llama-server: scripts/build-llama.sh --patched-only' });
  const o = await runToCompletion(
    { label: 'build-llama.sh', command: 'bash', args: [script, '--patched-only'] },
    {
      signal,
      onLine: (line, stream) => {
        if (stream !== 'stderr') return;
        // `build-llama: building patched: 37% (123 of 330)`, whenever the percentage moves
        const p = /^build-llama: building (\w+): (\d+)%(?: \((.+)\))?$/.exec(line);
        if (p) emit({ kind: 'engine-build', variant: p[1]!, progress: Number(p[2]) / 100, ...(p[3] ? { detail: p[3] } : {}) });
        // The long steps' start, and a wait for another build of the same tree, are news even without --verbose.
        else if (/^build-llama: (waiting for another|building \w+ llama\.cpp in|fetching )/.test(line)) emit({ kind: 'info', message: line.slice('build-llama: '.length) });
        else emit({ kind: 'log', rank: 0, node: 'local', stream, line });
      },
    },
  );
  const dir = /^patched=(.+)$/m.exec(o.stdout)?.[1];
  if (o.exitCode !== 0 || !dir) {
    throw new ExternalError(`building llama-server failed (${o.meaning})`, { command: o.command, exitCode: o.exitCode, stderrTail: o.stderrTail.slice(-15).join('\n') });
  }
  return join(dir, 'llama-server');
}
