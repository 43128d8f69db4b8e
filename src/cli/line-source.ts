// Where --interactive lines come from: a queue the TUI's prompt pushes into, or stdin read line by line.
import { createInterface } from 'node:readline';

export interface LineSource {
  lines: AsyncIterable<string>;
  /** Ends the lines and stops reading (so nothing keeps the process alive). Idempotent. */
  close(): void;
}

/** Lines pushed by a callback, buffered until read; close() ends them after the buffered ones. */
export function lineQueue(): LineSource & { push(line: string): void } {
  const buffered: string[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  return {
    push: (line) => {
      if (ended) return;
      buffered.push(line);
      notify();
    },
    close: () => {
      ended = true;
      notify();
    },
    lines: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = buffered.shift();
          if (next !== undefined) yield next;
          else if (ended) return;
          else await new Promise<void>((r) => (wake = r));
        }
      },
    },
  };
}

/** The lines of a stream (stdin); they end at its EOF. */
export function streamLines(input: NodeJS.ReadableStream & { destroy?: () => void } = process.stdin): LineSource {
  const q = lineQueue();
  const rl = createInterface({ input, terminal: false, crlfDelay: Infinity });
  rl.on('line', q.push);
  rl.on('close', q.close);
  return {
    lines: q.lines,
    close: () => {
      q.close();
      rl.close();
      input.destroy?.();
    },
  };
}
