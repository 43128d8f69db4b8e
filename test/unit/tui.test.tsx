import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { render } from 'ink-testing-library';
import { EventBus } from '../../src/events/event-bus.js';
import type { RelayEvent } from '../../src/events/events.js';
import { attachLineRenderer } from '../../src/events/line-renderer.js';
import { App } from '../../src/ui/app.js';
import { createClusterStore, type ClusterStore } from '../../src/ui/cluster-store.js';

/** Polls until the last frame matches, as Ink renders asynchronously; returns the frame. */
async function waitForContent(lastFrame: () => string | undefined, re: RegExp, timeoutMs = 3000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const f = lastFrame() ?? '';
    if (re.test(f)) return f;
    if (Date.now() > end) throw new Error(`frame never matched ${re}:\n${f}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const plan: RelayEvent[] = [
  { kind: 'rank-planned', rank: 0, node: 'local', layers: [0, 8], role: 'head' },
  { kind: 'rank-planned', rank: 1, node: 'alice@10.0.0.5', layers: [8, 16], role: 'worker' },
  { kind: 'rank-planned', rank: 2, node: 'bob@gpu-box', layers: [16, 24], role: 'worker' },
];

let cleanup: (() => void)[] = [];
afterEach(() => {
  cleanup.forEach((c) => c());
  cleanup = [];
});

function mount(): { bus: EventBus; store: ClusterStore; lastFrame: () => string | undefined; frames: string[] } {
  const bus = new EventBus();
  const store = createClusterStore(bus, { batchMs: 10 });
  const r = render(<App store={store} />);
  cleanup.push(() => r.unmount(), () => store.dispose());
  return { bus, store, lastFrame: r.lastFrame, frames: r.frames };
}

describe('TUI driven by the real event stream', () => {
  it('shows one row per node with phases and progress', async () => {
    const { bus, lastFrame } = mount();
    plan.forEach(bus.emit);
    bus.emit({ kind: 'node-phase', rank: 1, node: 'alice@10.0.0.5', phase: 'upload', progress: 0.42 });
    bus.emit({ kind: 'node-phase', rank: 2, node: 'bob@gpu-box', phase: 'build', progress: 0.5 });
    bus.emit({ kind: 'node-phase', rank: 0, node: 'local', phase: 'load', progress: 1 });
    const f = await waitForContent(lastFrame, /upload .* 42%/);
    assert.match(f, /RANK\s+NODE\s+LAYERS\s+PHASE/);
    assert.match(f, /0\*\s+local\s+0:8\s+load .* 100%/);
    assert.match(f, /1\s+alice@10\.0\.0\.5\s+8:16\s+upload/);
    assert.match(f, /2\s+bob@gpu-box\s+16:24\s+build .* 50%/);

    bus.emit({ kind: 'node-phase', rank: 1, node: 'alice@10.0.0.5', phase: 'ready' });
    bus.emit({ kind: 'memory', rank: 1, rssBytes: 115 * 1024 * 1024 });
    bus.emit({ kind: 'hop-time', rank: 1, ms: 1.25 });
    const f2 = await waitForContent(lastFrame, /8:16\s+ready\s+115 MiB\s+-\s+1\.3 ms/);
    assert.ok(f2);
  });

  it('streams tokens, batching a flood into few renders, and shows tok/s and the API line', async () => {
    const { bus, lastFrame } = mount();
    plan.forEach(bus.emit);
    for (const t of ['Hello', ' from', ' the', ' relay', ' chain', '.']) bus.emit({ kind: 'token', text: t });
    bus.emit({ kind: 'generation-done', tokens: 6, seconds: 0.5 });
    bus.emit({ kind: 'api-listening', url: 'http://127.0.0.1:8000', model: 'tiny' });
    bus.emit({ kind: 'requests', total: 3, active: 1, failed: 0 });
    const f = await waitForContent(lastFrame, /requests: 3 total/);
    assert.match(f, /Hello from the relay chain\./);
    assert.match(f, /0\*\s+local\s+0:8\s+connect\s+-\s+12\.0/);
    assert.match(f, /API http:\/\/127\.0\.0\.1:8000 \(tiny\)/);
  });

  it('shows a failure row with the exit meaning and last log lines, cleared when the rank is ready again', async () => {
    const { bus, lastFrame } = mount();
    plan.forEach(bus.emit);
    bus.emit({
      kind: 'rank-exited',
      rank: 2,
      node: 'bob@gpu-box',
      exitCode: 137,
      signal: null,
      meaning: 'exit code 137: killed (SIGKILL, often out of memory or forced stop)',
      lastLines: ['load_tensors: offloading', 'ggml_abort: out of memory'],
      restarting: true,
    });
    const f = await waitForContent(lastFrame, /✖ rank 2/);
    assert.match(f, /✖ rank 2 on bob@gpu-box: exit code 137: killed [\s\S]*restarting/);
    assert.match(f, /│ ggml_abort: out of memory/);
    assert.match(f, /16:24\s+failed/);
    bus.emit({ kind: 'node-phase', rank: 2, node: 'bob@gpu-box', phase: 'ready' });
    const f2 = await waitForContent(lastFrame, /16:24\s+ready/);
    assert.doesNotMatch(f2, /✖ rank 2/);
  });

  it('writes info and error lines once, as <Static> output above the live rows', async () => {
    const { bus, lastFrame, frames } = mount();
    bus.emit({ kind: 'info', message: 'secret generated; starting ranks downstream-first' });
    bus.emit({ kind: 'error', message: 'node bob@gpu-box: ssh authentication failed', next: ['ssh-add'] });
    plan.forEach(bus.emit);
    const first = await waitForContent(lastFrame, /0\*\s+local/);
    assert.ok(first.indexOf('downstream-first') < first.indexOf('RANK'), first);
    // Finished lines stay above the live rows as those keep changing.
    bus.emit({ kind: 'node-phase', rank: 0, node: 'local', phase: 'ready' });
    const later = await waitForContent(lastFrame, /0:8\s+ready/);
    assert.equal(later.match(/downstream-first/g)?.length, 1);
    const all = frames.join('\n');
    assert.match(all, /secret generated; starting ranks downstream-first/);
    assert.match(all, /error: node bob@gpu-box: ssh authentication failed\n\s+- ssh-add/);
  });
});

describe('line renderers (non-TTY)', () => {
  const capture = () => {
    const s = new PassThrough();
    let text = '';
    s.on('data', (d) => (text += d));
    return { s, text: () => text };
  };

  it('plain: status on stderr, raw tokens on stdout', () => {
    const bus = new EventBus();
    const out = capture();
    const err = capture();
    attachLineRenderer(bus, { out: out.s, err: err.s });
    plan.forEach(bus.emit);
    bus.emit({ kind: 'node-phase', rank: 1, node: 'alice@10.0.0.5', phase: 'upload', progress: 0.5 });
    bus.emit({ kind: 'log', rank: 1, node: 'alice@10.0.0.5', stream: 'stderr', line: 'noise' });
    bus.emit({ kind: 'token', text: 'Hi' });
    bus.emit({ kind: 'token', text: ' there' });
    bus.emit({ kind: 'generation-done', tokens: 2, seconds: 1 });
    assert.equal(out.text(), 'Hi there\n');
    assert.match(err.text(), /^rank 0 \(head\) on local: layers 0:8\n/);
    assert.match(err.text(), /rank 1 on alice@10\.0\.0\.5: upload 50%\n/);
    assert.doesNotMatch(err.text(), /noise/);
    assert.match(err.text(), /generated 2 tokens in 1\.0 s \(2\.0 tok\/s\)/);
  });

  it('--json: one parseable event per line', () => {
    const bus = new EventBus();
    const out = capture();
    attachLineRenderer(bus, { json: true, out: out.s });
    plan.forEach(bus.emit);
    bus.emit({ kind: 'token', text: 'Hi' });
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as { kind: string; time: string });
    assert.deepEqual(lines.map((l) => l.kind), ['rank-planned', 'rank-planned', 'rank-planned', 'token']);
    assert.ok(lines.every((l) => !Number.isNaN(Date.parse(l.time))));
  });
});
