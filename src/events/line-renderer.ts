// Non-TTY output: status lines (stderr) and raw tokens (stdout), or every event as a JSON line on stdout; progress
// is thinned to every 10% or 30 s (progress-throttle.ts).
import type { EventBus } from './event-bus.js';
import { formatJson, formatPlain } from './plain-format.js';
import { throttleProgress } from './progress-throttle.js';

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
  let answered = true; // --interactive: every answer ends as one line on stdout, even an empty one
  const throttle = throttleProgress((e) => {
    if (o.json) {
      out.write(`${formatJson(e)}\n`);
      return;
    }
    if (e.kind === 'token') {
      out.write(e.text);
      midLine = !e.text.endsWith('\n');
      answered = true;
      return;
    }
    if (e.kind === 'chat-user') answered = false;
    if ((e.kind === 'generation-done' && midLine) || (e.kind === 'chat-done' && (midLine || !answered))) {
      out.write('\n');
      midLine = false;
      answered = true;
    }
    const line = formatPlain(e, { verbose: o.verbose ?? false });
    if (line !== null) err.write(`${line}\n`);
  });
  const unsubscribe = bus.subscribe(throttle.listener);
  return () => {
    unsubscribe();
    throttle.stop();
  };
}
