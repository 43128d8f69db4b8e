// The TUI shows a rank's move to a spare (issue 12, item 2): the row's node becomes the spare, the failure row goes,
// and a line says what moved where; driven by the real event stream and store, as `up` drives it.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { render } from 'ink-testing-library';
import { EventBus } from '../../src/events/event-bus.js';
import { App } from '../../src/ui/app.js';
import { createClusterStore } from '../../src/ui/cluster-store.js';
import { frameMatching } from '../helpers/frame-matching.js';

let cleanup: (() => void)[] = [];
afterEach(() => {
  cleanup.forEach((c) => c());
  cleanup = [];
});


describe('TUI: a rank moved to a spare', () => {
  it('the row shows the spare, the lost node is named, and the failure row is gone once it is ready', async () => {
    const bus = new EventBus();
    const store = createClusterStore(bus, { batchMs: 10 });
    const r = render(<App store={store} />);
    cleanup.push(() => r.unmount(), () => store.dispose());
    bus.emit({ kind: 'rank-planned', rank: 0, node: 'local', layers: [0, 10], role: 'head' });
    bus.emit({ kind: 'rank-planned', rank: 1, node: 'hosta', layers: [10, 20], role: 'worker' });
    bus.emit({ kind: 'node-phase', rank: 1, node: 'hosta', phase: 'ready' });
    bus.emit({ kind: 'rank-exited', rank: 1, node: 'hosta', exitCode: 255, signal: null, meaning: 'exit code 255: ssh or remote failure', lastLines: [], restarting: true });
    await frameMatching(r.lastFrame, /1\s+hosta\s+10:20\s+failed/);
    bus.emit({ kind: 'rank-moved', rank: 1, from: 'hosta', to: 'hostc', layers: [10, 20], lostSeconds: 30.2, restarted: [] });
    const f = await frameMatching(r.lastFrame, /1\s+hostc\s+10:20\s+load/);
    assert.match(f, /rank 1 moved from hosta to spare hostc \(hosta lost for 30 s\)/);
    bus.emit({ kind: 'node-phase', rank: 1, node: 'hostc', phase: 'ready' });
    const f2 = await frameMatching(r.lastFrame, /1\s+hostc\s+10:20\s+ready/);
    assert.doesNotMatch(f2, /ssh or remote failure/);
  });
});
