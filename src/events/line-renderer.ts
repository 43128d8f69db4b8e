// Non-TTY output: status lines (stderr) and raw tokens (stdout), or every event as a JSON line on stdout.
import type { EventBus } from './event-bus.js';
import { formatJson, formatPlain } from './plain-format.js';

export interface LineRendererOptions {
  json?: boolean;
  verbose?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

export function attachLineRenderer(bus: EventBus, o: LineRendererOptions = {}): () => void {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  let midLine = false; // tokens leave the cursor mid-line; end it before the next status line
  return bus.subscribe((e) => {
    if (o.json) {
      out.write(`${formatJson(e)}\n`);
      return;
    }
    if (e.kind === 'token') {
      out.write(e.text);
      midLine = !e.text.endsWith('\n');
      return;
    }
    if (e.kind === 'generation-done' && midLine) {
      out.write('\n');
      midLine = false;
    }
    const line = formatPlain(e, { verbose: o.verbose ?? false });
    if (line !== null) err.write(`${line}\n`);
  });
}
