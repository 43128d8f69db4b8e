// The command edge's screen and keyboard: the Ink TUI on a terminal, else plain or --json lines; with --interactive,
// the lines the user sends (typed at the TUI's prompt, or read from stdin without a terminal).
import type { EventBus } from '../events/event-bus.js';
import { attachLineRenderer } from '../events/line-renderer.js';
import { lineQueue, streamLines, type LineSource } from './line-source.js';

export interface Output {
  /** --interactive only: the user's lines. */
  chatLines?: AsyncIterable<string>;
  /** Flushes and unmounts the renderer and stops reading input. */
  detach(): void;
}

export async function attachOutput(
  bus: EventBus,
  o: { tui: boolean; json: boolean; verbose: boolean; interactive: boolean; interrupt: () => void },
): Promise<Output> {
  let source: LineSource | undefined;
  let stopRendering: () => void;
  if (o.tui) {
    const { renderTui } = await import('../ui/render-tui.js');
    // The prompt reads keys only from a terminal; piped stdin still feeds the chat, shown in the TUI.
    if (o.interactive && process.stdin.isTTY) {
      const q = lineQueue();
      source = q;
      stopRendering = renderTui(bus, { chat: { onSubmit: q.push, onInterrupt: o.interrupt } });
    } else {
      if (o.interactive) source = streamLines();
      stopRendering = renderTui(bus);
    }
  } else {
    if (o.interactive) source = streamLines();
    stopRendering = attachLineRenderer(bus, { json: o.json, verbose: o.verbose });
  }
  return {
    ...(source ? { chatLines: source.lines } : {}),
    detach: () => {
      source?.close();
      stopRendering();
    },
  };
}
