// Mounts the Ink TUI on a TTY for an event bus; returns a function that flushes and unmounts it.
import { render } from 'ink';
import type { EventBus } from '../events/event-bus.js';
import { App } from './app.js';
import { createClusterStore } from './cluster-store.js';

export function renderTui(bus: EventBus, o: { stdout?: NodeJS.WriteStream } = {}): () => void {
  const store = createClusterStore(bus);
  const ink = render(<App store={store} />, { stdout: o.stdout ?? process.stdout, exitOnCtrlC: false, patchConsole: false });
  return () => {
    store.flush();
    ink.rerender(<App store={store} />);
    ink.unmount();
    store.dispose();
  };
}
