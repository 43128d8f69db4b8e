// Mounts the Ink TUI on a TTY for an event bus; returns a function that flushes and unmounts it.
import { render } from 'ink';
import type { EventBus } from '../events/event-bus.js';
import { App } from './app.js';
import type { ChatInputCallbacks } from './chat-prompt.js';
import { createClusterStore } from './cluster-store.js';

export function renderTui(bus: EventBus, o: { stdout?: NodeJS.WriteStream; chat?: ChatInputCallbacks } = {}): () => void {
  const store = createClusterStore(bus);
  const app = () => <App store={store} chat={o.chat} />;
  const ink = render(app(), { stdout: o.stdout ?? process.stdout, exitOnCtrlC: false, patchConsole: false });
  return () => {
    store.flush();
    ink.rerender(app());
    ink.unmount();
    store.dispose();
  };
}
