// freshFetch against a server that drops a kept-alive connection just as the next request arrives on it (what
// llama-server does when its keep-alive timeout races a client's request): plain fetch fails, freshFetch answers.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { freshFetch } from '../../src/runtime/fresh-fetch.js';

let connections = 0;
const server = net.createServer((sock) => {
  connections++;
  let seen = '';
  let answered = false;
  sock.on('data', (d: Buffer) => {
    seen += d.toString('latin1');
    const requests = (seen.match(/(?:GET|POST) \S+ HTTP\/1\.1\r\n/g) ?? []).length;
    // the first request on a connection is answered (kept alive); a second one on the same connection is dropped unread
    if (requests > 1) return sock.destroy();
    if (!answered && seen.endsWith('{}')) {
      answered = true;
      sock.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
    }
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
after(() => server.close());

// POST, as a completion is: undici itself sends an idempotent GET again, never a POST
const post: RequestInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' };

test('plain fetch fails on the dropped kept-alive connection; freshFetch sends it again on a new one', async () => {
  // (a pause after each answer, so the connection is back in the pool when the next request goes out)
  const idle = () => new Promise((r) => setTimeout(r, 50));
  assert.equal(await (await fetch(url, post)).text(), 'ok');
  await idle();
  await assert.rejects(fetch(url, post), (e: Error) => e instanceof TypeError && /fetch failed/.test(e.message));
  assert.equal(await (await freshFetch(url, post)).text(), 'ok'); // new connection: answered
  await idle();
  assert.equal(await (await freshFetch(url, post)).text(), 'ok'); // reuses it: dropped, then a new one answers
  assert.equal(connections, 3, 'the first, the one freshFetch opened, and the one it opened again after the drop');
});

test('freshFetch does not retry what the caller aborted, nor a refused connection', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(freshFetch(url, { signal: ac.signal }), /abort/i);
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  await assert.rejects(freshFetch(`http://127.0.0.1:${port}/`), (e: Error & { cause?: { code?: string } }) => e.cause?.code === 'ECONNREFUSED');
});
