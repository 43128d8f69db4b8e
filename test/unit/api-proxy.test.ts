import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { startApiProxy, type ApiProxy } from '../../src/serve/api-proxy.js';
import type { RelayEvent } from '../../src/events/events.js';
import type { ServedModel } from '../../src/ollama-api/served-model.js';

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
      } else if (req.url === '/echo-headers') {
        // as llama-server does by default: echo any Origin back, with credentials
        res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': String(req.headers.origin ?? '*'), 'access-control-allow-credentials': 'true', 'x-drop-me': '1', connection: 'x-drop-me' });
        res.end(JSON.stringify({ headers: req.headers, bytes: body.length }));
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

const served: ServedModel = {
  name: 'tiny:latest',
  size: 1,
  digest: 'a'.repeat(64),
  modifiedAt: new Date(0).toISOString(),
  details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '1M', quantization_level: 'F16' },
  modelInfo: {},
  params: {},
  template: '',
  templateKind: 'none',
  hasChatTemplate: false,
  system: '',
  license: '',
  ctx: 1024,
  parallel: 1,
  ggufPath: '/m/tiny.gguf',
};

async function proxyTo(
  upstream: () => string | undefined,
  extra: Partial<Parameters<typeof startApiProxy>[0]> = {},
): Promise<{ proxy: ApiProxy; events: RelayEvent[] }> {
  const events: RelayEvent[] = [];
  const proxy = await startApiProxy({ host: '127.0.0.1', port: await getPort({ host: '127.0.0.1' }), upstream, emit: (e) => events.push(e), ...extra });
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

  /** One raw HTTP/1.1 exchange, so the request target can be anything. */
  const raw = (url: string, request: string) =>
    new Promise<string>((resolve, reject) => {
      const u = new URL(url);
      const sock = net.connect(Number(u.port), u.hostname, () => sock.end(request));
      let out = '';
      sock.on('data', (d) => (out += d));
      sock.on('end', () => resolve(out));
      sock.on('error', reject);
    });

  it("answers 400 to a request target of '*' or an absolute URL, and keeps serving", async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head);
    const star = await raw(proxy.url, 'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.match(star, /^HTTP\/1\.1 400 /);
    assert.match(star, /request target \\"\*\\" is not supported/);
    const absolute = await raw(proxy.url, 'GET http://evil.example/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.match(absolute, /^HTTP\/1\.1 400 /);
    assert.equal((await fetch(`${proxy.url}/health`)).status, 200);
  });

  it('refuses foreign origins and hosts, never passes llama-server\'s CORS echo, and drops hop-by-hop headers', async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head, { origins: ['https://ui.example'] });
    const evil = await fetch(`${proxy.url}/echo-headers`, { headers: { origin: 'http://evil.example' } });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    assert.match(((await evil.json()) as { error: { message: string } }).error.message, /http:\/\/evil\.example are not allowed.*--api-origins/);
    const rebound = await raw(proxy.url, 'GET /v1/models HTTP/1.1\r\nHost: attacker.example:8000\r\nConnection: close\r\n\r\n');
    assert.match(rebound, /^HTTP\/1\.1 403 /);
    const preflight = await fetch(`${proxy.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 403);

    for (const origin of ['https://ui.example', 'http://localhost:3000']) {
      // node:http, since fetch refuses to send hop-by-hop headers at all
      const ok = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const u = new URL(proxy.url);
        const headers = { origin, 'proxy-authorization': 'x', te: 'trailers', 'keep-alive': '5', 'x-keep': '1', 'x-named': '1', connection: 'keep-alive, x-named' };
        http
          .get({ hostname: u.hostname, port: u.port, path: '/echo-headers', headers }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          })
          .on('error', reject);
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['access-control-allow-origin'], origin);
      assert.equal(ok.headers['access-control-allow-credentials'], undefined);
      assert.equal(ok.headers['x-drop-me'], undefined, 'a header the upstream Connection header names is hop-by-hop');
      const seen = (JSON.parse(ok.body) as { headers: Record<string, string> }).headers;
      assert.equal(seen['x-keep'], '1');
      for (const h of ['proxy-authorization', 'te', 'keep-alive', 'x-named', 'origin']) assert.equal(seen[h], undefined, `${h} must not reach the head`);
    }
  });

  it('caps request bodies (413) on every endpoint, /v1/generate included, and keeps serving', async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head, { maxBodyBytes: 1000 });
    const big = 'x'.repeat(5000);
    for (const path of ['/v1/generate', '/v1/chat/completions', '/echo-headers']) {
      const r = await fetch(`${proxy.url}${path}`, { method: 'POST', body: JSON.stringify({ prompt: big }) });
      assert.equal(r.status, 413, path);
    }
    // without a content-length: the stream is counted as it comes
    const chunked = await new Promise<number>((resolve, reject) => {
      const u = new URL(proxy.url);
      const req = http.request({ hostname: u.hostname, port: u.port, path: '/echo-headers', method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(big);
      req.end(big);
    });
    assert.equal(chunked, 413);
    const small = await fetch(`${proxy.url}/echo-headers`, { method: 'POST', body: '{"a":1}' });
    assert.equal(((await small.json()) as { bytes: number }).bytes, 7);
  });

  it('with a key: 401 without or with a wrong one on both APIs, liveness stays open, /health hides the chain', async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head, { apiKey: 'sekrit-key', model: served });
    for (const path of ['/v1/models', '/api/tags', '/metrics']) {
      for (const auth of [undefined, 'Bearer wrong', 'sekrit-key']) {
        const r = await fetch(`${proxy.url}${path}`, { headers: auth ? { authorization: auth } : {} });
        assert.equal(r.status, 401, `${path} ${auth}`);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      }
    }
    const ollama401 = await fetch(`${proxy.url}/api/tags`);
    assert.match(((await ollama401.json()) as { error: string }).error, /requires a key/);
    const good = { authorization: 'Bearer sekrit-key' };
    assert.equal((await fetch(`${proxy.url}/v1/models`, { headers: good })).status, 200);
    assert.deepEqual(((await (await fetch(`${proxy.url}/api/tags`, { headers: good })).json()) as { models: { name: string }[] }).models.map((m) => m.name), ['tiny:latest']);
    assert.equal(await (await fetch(`${proxy.url}/`)).text(), 'Ollama is running');
    assert.equal((await fetch(`${proxy.url}/`, { method: 'HEAD' })).status, 200);
    assert.deepEqual(await (await fetch(`${proxy.url}/health`)).json(), { status: 'ok' });
    // with the key: the head's own /health (which lists the ranks)
    assert.equal((await fetch(`${proxy.url}/health`, { headers: good })).status, 200);
    // a key replaces the Host/Origin checks: a page cannot send it
    assert.equal((await fetch(`${proxy.url}/v1/models`, { headers: { ...good, origin: 'http://elsewhere.example' } })).status, 200);
  });

  it('answers for one model name: another gets 404 on the OpenAI API too', async () => {
    const head = await fakeHead();
    const { proxy } = await proxyTo(() => head, { model: served });
    const r = await fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4', messages: [] }) });
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /"gpt-4" not found: this cluster serves one model, "tiny:latest"/);
    const ok = await fetch(`${proxy.url}/completion`, { method: 'POST', body: JSON.stringify({ model: 'TINY', prompt: 'p', n_predict: 2 }) });
    assert.equal(ok.status, 200);
    const pull = await fetch(`${proxy.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: 'llama3', stream: false }) });
    assert.equal(pull.status, 403);
    const same = await fetch(`${proxy.url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: 'tiny', stream: false }) });
    assert.deepEqual(await same.json(), { status: 'success' });
  });
});
