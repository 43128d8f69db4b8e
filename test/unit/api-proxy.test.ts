import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { startApiProxy, type ApiProxy } from '../../src/cluster/api-proxy.js';
import type { RelayEvent } from '../../src/events/events.js';

const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** A stand-in head: /completion answers JSON or streams SSE; /die streams one frame, then drops the connection. */
async function fakeHead(): Promise<string> {
  const port = await getPort({ host: '127.0.0.1' });
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/completion') {
        const j = JSON.parse(body) as { prompt: string; n_predict: number };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ content: `echo:${j.prompt}:${j.n_predict}`, tokens_predicted: j.n_predict }));
      } else if (req.url === '/die') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"content":"a"}\n\n');
        setTimeout(() => res.socket?.destroy(), 50);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
      }
    });
  });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  closers.push(async () => {
    s.closeAllConnections();
    s.close();
  });
  return `http://127.0.0.1:${port}`;
}

async function proxyTo(upstream: () => string | undefined): Promise<{ proxy: ApiProxy; events: RelayEvent[] }> {
  const events: RelayEvent[] = [];
  const proxy = await startApiProxy({ host: '127.0.0.1', port: await getPort({ host: '127.0.0.1' }), upstream, emit: (e) => events.push(e) });
  closers.push(() => proxy.close());
  return { proxy, events };
}

describe('API proxy', () => {
  it('forwards requests and counts them', async () => {
    const head = await fakeHead();
    const { proxy, events } = await proxyTo(() => head);
    assert.deepEqual(await (await fetch(`${proxy.url}/health`)).json(), { status: 'ok' });
    const last = events.filter((e) => e.kind === 'requests').at(-1);
    assert.deepEqual(last, { kind: 'requests', total: 1, active: 0, failed: 0 });
  });

  it('serves the original tool\'s POST /v1/generate', async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head);
    const r = await fetch(`${proxy.url}/v1/generate`, { method: 'POST', body: JSON.stringify({ prompt: 'hi', max_tokens: 7 }) });
    assert.deepEqual(await r.json(), { text: 'echo:hi:7', tokens: 7 });
    const bad = await fetch(`${proxy.url}/v1/generate`, { method: 'POST', body: '{"nope":1}' });
    assert.equal(bad.status, 400);
  });

  it('answers 502 with a reason when the head is down, and 503 before the chain is up', async () => {
    const { proxy, events } = await proxyTo(() => `http://127.0.0.1:${1}`);
    const r = await fetch(`${proxy.url}/v1/models`);
    assert.equal(r.status, 502);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /head is unavailable.*retry/);
    assert.equal(events.filter((e) => e.kind === 'requests').at(-1)?.kind === 'requests' && (events.filter((e) => e.kind === 'requests').at(-1) as { failed: number }).failed, 1);
    const { proxy: early } = await proxyTo(() => undefined);
    assert.equal((await fetch(`${early.url}/health`)).status, 503);
  });

  it('ends a stream with an error frame when the head dies mid-generation', async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head);
    const t0 = Date.now();
    const text = await (await fetch(`${proxy.url}/die`)).text();
    assert.ok(Date.now() - t0 < 3000);
    assert.match(text, /data: \{"content":"a"\}/);
    assert.match(text, /"error":\{"code":502,"message":"the chain failed mid-generation/);
  });
});
