import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { render } from 'ink-testing-library';
import { lineQueue } from '../../src/cli/line-source.js';
import { runChatSession } from '../../src/serve/chat-session.js';
import type { ChatMessage } from '../../src/runtime/head-client.js';
import { EventBus } from '../../src/events/event-bus.js';
import type { RelayEvent } from '../../src/events/events.js';
import { attachLineRenderer } from '../../src/events/line-renderer.js';
import { App } from '../../src/ui/app.js';
import { createClusterStore, type ClusterStore } from '../../src/ui/cluster-store.js';

/** Polls until the last frame matches, as Ink renders asynchronously; returns the frame. */
async function waitForContent(lastFrame: () => string | undefined, re: RegExp, timeoutMs = 10_000): Promise<string> {
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

function mount(chat?: { onSubmit: (line: string) => void; onInterrupt: () => void }) {
  const bus = new EventBus();
  const store = createClusterStore(bus, { batchMs: 10 });
  const r = render(<App store={store} {...(chat ? { chat } : {})} />);
  cleanup.push(() => r.unmount(), () => store.dispose());
  return { bus, store, lastFrame: r.lastFrame, frames: r.frames, stdin: r.stdin };
}

/** A head's /v1/chat/completions on a real port: streams "[N msgs]" and the last user message back, token by token. */
async function chatServer(): Promise<{ url: string; seen: ChatMessage[][]; close: () => void }> {
  const seen: ChatMessage[][] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const { messages } = JSON.parse(body) as { messages: ChatMessage[] };
      seen.push(messages);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const piece of [`[${messages.length} msgs]`, ' re:', ` ${messages.at(-1)!.content}`]) {
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece } }] })}\n\n`);
        await new Promise((r) => setImmediate(r));
      }
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
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
    // Only rank 1's row changed: the others keep their phase and progress.
    assert.match(f2, /0\*\s+local\s+0:8\s+load .* 100%/);
    assert.match(f2, /2\s+bob@gpu-box\s+16:24\s+build .* 50%/);
    assert.doesNotMatch(f2, /upload/);
  });

  it('shows the predicted decode before launch, then the measured one against it as the chain timing comes in', async () => {
    const { bus, lastFrame } = mount();
    plan.forEach(bus.emit);
    bus.emit({ kind: 'decode-vs-predicted', predictedDecodeTps: 12.34, predictedPrefillTps: 56.7 });
    assert.match(await waitForContent(lastFrame, /predicted 12\.3/), /decode measured: no tokens yet; predicted 12\.3 tok\/s, prefill 56\.7/);
    bus.emit({ kind: 'decode-vs-predicted', predictedDecodeTps: 12.34, predictedPrefillTps: 56.7, measuredDecodeTps: 10.05, tokens: 40 });
    assert.match(await waitForContent(lastFrame, /measured 10\.1/), /decode measured 10\.1 tok\/s \(40 tokens\); predicted 12\.3 tok\/s, prefill 56\.7/);
  });

  it('streams tokens, batching a flood into few renders, and shows tok/s and the API line', async () => {
    const { bus, lastFrame, frames } = mount();
    plan.forEach(bus.emit);
    await waitForContent(lastFrame, /bob@gpu-box/);
    // A flood: 1,000 tokens, each arriving on its own turn of the event loop as network reads do.
    const before = frames.length;
    for (let i = 0; i < 1000; i++) {
      bus.emit({ kind: 'token', text: i === 999 ? ' last-of-the-flood' : ' x' });
      await new Promise((r) => setImmediate(r));
    }
    await waitForContent(lastFrame, /last-of-the-flood/);
    const renders = frames.length - before;
    process.stderr.write(`tui flood: 1000 tokens, ${renders} renders\n`);
    assert.ok(renders >= 1 && renders <= 100, `1000 tokens took ${renders} renders`);
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

describe('TUI --interactive: the prompt line and the chat session', () => {
  it('Enter hands the typed line to the callback; user and assistant turns stream into the transcript; /exit closes the prompt', async () => {
    const head = await chatServer();
    cleanup.push(head.close);
    const q = lineQueue();
    const submitted: string[] = [];
    let interrupts = 0;
    const { bus, lastFrame, stdin } = mount({
      onSubmit: (line) => {
        submitted.push(line);
        q.push(line);
      },
      onInterrupt: () => interrupts++,
    });
    plan.forEach(bus.emit);
    const session = runChatSession({ apiUrl: head.url, lines: q.lines, maxTokens: 8, emit: bus.emit });
    await waitForContent(lastFrame, /› .*type a message/);
    assert.deepEqual(submitted, [], 'nothing is sent before Enter');
    for (const key of ['hel', 'lo', 'x', '\x7f']) {
      stdin.write(key);
      await waitForContent(lastFrame, /› hel/);
    }
    await waitForContent(lastFrame, /› hello(?!x)/);
    stdin.write('\r');
    const first = await waitForContent(lastFrame, /\[1 msgs\] re: hello/);
    assert.deepEqual(submitted, ['hello']);
    assert.match(first, /│ you: hello +│\n│ \[1 msgs\] re: hello +│/);
    assert.match(first, /RANK\s+NODE/, 'the node table stays above the chat');

    stdin.write('and again\r'); // a pasted line: its line break sends it
    const second = await waitForContent(lastFrame, /\[3 msgs\] re: and again/);
    assert.match(second, /you: hello[\s\S]*\[1 msgs\] re: hello[\s\S]*you: and again[\s\S]*\[3 msgs\] re: and again/);
    assert.deepEqual(head.seen.at(-1), [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: '[1 msgs] re: hello' },
      { role: 'user', content: 'and again' },
    ]);

    stdin.write('\x03');
    assert.equal(interrupts, 1, 'Ctrl-C goes to the interrupt callback');
    stdin.write('/exit');
    stdin.write('\r');
    const end = await session;
    assert.equal(end.reason, 'exit');
    assert.equal(end.history.length, 4);
    // The last answer's frame ("answering…") may still be up for a render: wait for the prompt line to go.
    const closed = await waitForContent(lastFrame, /^(?![\s\S]*› )[\s\S]*re: and again/);
    assert.doesNotMatch(closed, /› /, 'the prompt is gone once the session ended');
    assert.equal(head.seen.length, 2);
  });

  it('shows no prompt without input callbacks (stdin is not a terminal)', async () => {
    const { bus, lastFrame } = mount();
    plan.forEach(bus.emit);
    bus.emit({ kind: 'chat-ready' });
    bus.emit({ kind: 'chat-user', text: 'from a pipe' });
    bus.emit({ kind: 'token', text: 'piped answer' });
    bus.emit({ kind: 'chat-done', tokens: 1, seconds: 0.1 });
    const f = await waitForContent(lastFrame, /piped answer/);
    assert.match(f, /you: from a pipe/);
    assert.doesNotMatch(f, /›/);
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

  it('--interactive plain: each answer is one line on stdout, even an empty one; the user lines are not echoed', () => {
    const bus = new EventBus();
    const out = capture();
    const err = capture();
    attachLineRenderer(bus, { out: out.s, err: err.s });
    bus.emit({ kind: 'chat-ready' });
    bus.emit({ kind: 'chat-user', text: 'hi' });
    bus.emit({ kind: 'token', text: 'Hi' });
    bus.emit({ kind: 'token', text: ' there' });
    bus.emit({ kind: 'chat-done', tokens: 2, seconds: 1 });
    bus.emit({ kind: 'chat-user', text: 'say nothing' });
    bus.emit({ kind: 'chat-done', tokens: 0, seconds: 1 });
    bus.emit({ kind: 'chat-end', reason: 'eof' });
    assert.equal(out.text(), 'Hi there\n\n');
    assert.match(err.text(), /^chat: type a message/);
    assert.match(err.text(), /chat ended \(end of input\)\n$/);
    assert.doesNotMatch(err.text(), /say nothing/);
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
