// Fan-out of RelayEvents: the core emits, renderers subscribe; a throwing listener never breaks the core.
import type { RelayEvent } from './events.js';

export type Listener = (event: RelayEvent) => void;

export class EventBus {
  private readonly listeners = new Set<Listener>();

  emit = (event: RelayEvent): void => {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        process.emitWarning(`event listener failed: ${String(err)}`);
      }
    }
  };

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
