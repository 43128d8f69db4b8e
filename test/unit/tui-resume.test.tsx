// The TUI and the plain lines show requests waiting for a lost rank (issue 12): a live line while they wait, which
// goes once they resume (with a line saying so) or fail (an error line); driven by the real event stream and store.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { render } from 'ink-testing-library';
import { EventBus } from '../../src/events/event-bus.js';
import { formatPlain } from '../../src/events/plain-format.js';
import { App } from '../../src/ui/app.js';
import { createClusterStore } from '../../src/ui/cluster-store.js';
import { frameMatching } from '../helpers/frame-matching.js';

let cleanup: (() => void)[] = [];
afterEach(() => {
  cleanup.forEach((c) => c());
  cleanup = [];
});


const waiting = { kind: 'resume', phase: 'waiting', requests: 2, rank: 1, detail: 'resuming 2 request(s) after rank 1 (hosta:9001) was lost' } as const;

describe('TUI: requests resuming after a lost rank', () => {
  it('shows the wait while it lasts, then the resume', async () => {
    const bus = new EventBus();
    const store = createClusterStore(bus, { batchMs: 10 });
    const r = render(<App store={store} />);
    cleanup.push(() => r.unmount(), () => store.dispose());
    bus.emit({ kind: 'rank-planned', rank: 0, node: 'local', layers: [0, 10], role: 'head' });
    bus.emit({ kind: 'rank-planned', rank: 1, node: 'hosta', layers: [10, 20], role: 'worker' });
    bus.emit(waiting);
    await frameMatching(r.lastFrame, /resuming 2 request\(s\) after rank 1 \(hosta:9001\) was lost/);
    bus.emit({ kind: 'resume', phase: 'resumed', requests: 2, detail: 'resumed 2 request(s)' });
    await frameMatching(r.lastFrame, /resumed 2 request\(s\) after rank 1 was lost/, /resuming 2/);
  });

  it('a request that fails past the bound ends the wait with an error line', async () => {
    const bus = new EventBus();
    const store = createClusterStore(bus, { batchMs: 10 });
    const r = render(<App store={store} />);
    cleanup.push(() => r.unmount(), () => store.dispose());
    bus.emit(waiting);
    await frameMatching(r.lastFrame, /resuming 2 request/);
    bus.emit({ kind: 'resume', phase: 'failed', rank: 1, detail: 'rank 1 was lost. The rank was not back within 4 s (--stage-resume-timeout).' });
    await frameMatching(r.lastFrame, /error: a request in flight failed: rank 1 was lost\. The rank was not back within 4 s/, /resuming 2/);
  });

  it('plain lines say the same', () => {
    assert.equal(formatPlain(waiting), 'resuming 2 request(s) after rank 1 (hosta:9001) was lost');
    assert.equal(formatPlain({ kind: 'resume', phase: 'resumed', requests: 2, detail: 'resumed 2 request(s)' }), 'resumed 2 request(s)');
    assert.match(formatPlain({ kind: 'resume', phase: 'failed', detail: 'x (resumed 3 times already)' }) ?? '', /^error: a request in flight failed: x/);
  });
});
