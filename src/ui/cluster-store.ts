// Subscribes once to the event stream and publishes a snapshot at most every ~50 ms, so token floods don't re-render per token.
import type { EventBus } from '../events/event-bus.js';
import type { RelayEvent } from '../events/events.js';
import { initialState, reduce, type ClusterState } from './cluster-state.js';

export interface ClusterStore {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): ClusterState;
  /** Applies queued events now (tests, shutdown). */
  flush(): void;
  dispose(): void;
}

export function createClusterStore(bus: EventBus, o: { batchMs?: number } = {}): ClusterStore {
  let state = initialState;
  let queue: RelayEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  const listeners = new Set<() => void>();

  const flush = () => {
    timer = undefined;
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    state = batch.reduce(reduce, state);
    for (const l of listeners) l();
  };
  const unsubscribe = bus.subscribe((e) => {
    queue.push(e);
    timer ??= setTimeout(flush, o.batchMs ?? 50);
  });

  return {
    subscribe: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    getSnapshot: () => state,
    flush: () => {
      clearTimeout(timer);
      flush();
    },
    dispose: () => {
      clearTimeout(timer);
      unsubscribe();
      listeners.clear();
    },
  };
}
