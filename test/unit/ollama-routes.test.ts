// The Ollama API's IO edge driven by the real `ollama` npm client, against a stand-in head that answers in
// llama-server's own shapes (SSE chunks, `timings`, /tokenize, /apply-template, /props). The real chain: test/integration/ollama-api.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { Ollama } from 'ollama';
import { startApiProxy } from '../../src/serve/api-proxy.js';
import type { RelayEvent } from '../../src/events/events.js';
import type { ServedModel } from '../../src/ollama-api/served-model.js';

const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

const PIECES = ['Par', 'is', ' is', ' the', ' capital', '.'];
const TIMINGS = { cache_n: 0, prompt_n: 9, prompt_ms: 12.5, predicted_n: PIECES.length, predicted_ms: 30 };
const seen: { path: string; body: Record<string, unknown> }[] = [];
const lastTo = (path: string) => seen.filter((s) => s.path === path).at(-1)!;

async function standInHead(): Promise<string> {
  const port = await getPort({ host: '127.0.0.1' });
  const s = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      seen.push({ path: req.url!, body });
      const json = (o: unknown, status = 200) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(o));
      };
      const sse = (frames: unknown[]) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const f of frames) res.write(`data: ${typeof f === 'string' ? f : JSON.stringify(f)}\n\n`);
        res.end();
      };
      if (req.url === '/props') return json({ default_generation_settings: { n_ctx: 512 }, total_slots: 1 });
      if (req.url === '/apply-template') return json({ prompt: `<|user|>${(body.messages as { content: string }[]).at(-1)!.content}<|assistant|>` });
      if (req.url === '/tokenize') return json({ tokens: [1, 2, 3] });
      if (req.url === '/v1/embeddings') return json({ error: { code: 501, message: 'This server does not support embeddings. Start it with `--embeddings`', type: 'not_supported_error' } }, 501);
      if (req.url === '/v1/chat/completions') {
        if (!body.stream) return json({ choices: [{ finish_reason: 'stop', index: 0, message: { role: 'assistant', content: PIECES.join('') } }], model: 'tiny', timings: TIMINGS });
        return sse([
          { choices: [{ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } }] },
          ...PIECES.map((p) => ({ choices: [{ finish_reason: null, index: 0, delta: { content: p } }] })),
          { choices: [{ finish_reason: 'stop', index: 0, delta: {} }], timings: TIMINGS },
          '[DONE]',
        ]);
      }
      if (req.url === '/completion') {
        if (!body.stream) return json({ content: PIECES.join(''), tokens: PIECES.map((_, i) => 100 + i), stop: true, stop_type: 'limit', timings: TIMINGS });
        return sse([
          ...PIECES.map((p, i) => ({ content: p, tokens: [100 + i], stop: false })),
          { content: '', tokens: [], stop: true, stop_type: 'eos', timings: TIMINGS },
        ]);
      }
      json({ error: { code: 404, message: 'File Not Found' } }, 404);
    });
  });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  closers.push(async () => {
    s.closeAllConnections();
    s.close();
  });
  return `http://127.0.0.1:${port}`;
}

const model: ServedModel = {
  name: 'tiny-chat',
  size: 10,
  digest: 'c'.repeat(64),
  modifiedAt: new Date(0).toISOString(),
  details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '135M', quantization_level: 'Q4_1' },
  modelInfo: { 'general.architecture': 'llama' },
  params: {},
  template: '{% for m in messages %}{{ m.content }}{% endfor %}',
  templateKind: 'jinja',
  hasChatTemplate: true,
  system: '',
  license: '',
  ctx: 512,
  parallel: 1,
  ggufPath: '/m/tiny-chat.gguf',
};

describe('Ollama API over HTTP, driven by the ollama npm client', () => {
  it('chat and generate, streamed and not, with the stats and context of the head', async () => {
    const head = await standInHead();
    const events: RelayEvent[] = [];
    const proxy = await startApiProxy({ host: '127.0.0.1', port: await getPort({ host: '127.0.0.1' }), upstream: () => head, emit: (e) => events.push(e), model, apiKey: 'k1' });
    closers.push(() => proxy.close());
    const ollama = new Ollama({ host: proxy.url, headers: { Authorization: 'Bearer k1' } });
    const answer = PIECES.join('');

    const chat = await ollama.chat({ model: 'tiny-chat', messages: [{ role: 'user', content: 'capital?' }], options: { temperature: 0, num_predict: 6 } });
    assert.equal(chat.message.content, answer);
    assert.equal(chat.done_reason, 'stop');
    assert.equal(chat.eval_count, PIECES.length);
    assert.equal(chat.prompt_eval_duration, 12_500_000);
    const sent = lastTo('/v1/chat/completions').body;
    assert.equal(sent.n_predict, 6);
    assert.equal(sent.temperature, 0);

    const parts: string[] = [];
    let final: { done: boolean; eval_duration: number } | undefined;
    for await (const p of await ollama.chat({ model: 'tiny-chat:latest', messages: [{ role: 'user', content: 'capital?' }], stream: true })) {
      parts.push(p.message.content);
      final = p;
    }
    assert.equal(parts.join(''), answer);
    assert.ok(final?.done);
    assert.equal(final.eval_duration, 30_000_000);

    const gen = await ollama.generate({ model: 'tiny-chat', prompt: 'capital?' });
    assert.equal(gen.response, answer);
    assert.equal(gen.done_reason, 'length');
    assert.deepEqual(gen.context, [1, 2, 3, 100, 101, 102, 103, 104, 105]);
    assert.equal(lastTo('/completion').body.prompt, '<|user|>capital?<|assistant|>');
    let streamed = '';
    let last: { context: number[]; done_reason: string } | undefined;
    for await (const p of await ollama.generate({ model: 'tiny-chat', prompt: 'capital?', stream: true, context: [7, 8] })) {
      streamed += p.response;
      last = p;
    }
    assert.equal(streamed, answer);
    assert.equal(last?.done_reason, 'stop');
    assert.deepEqual(last?.context, [1, 2, 3, 100, 101, 102, 103, 104, 105]);
    assert.deepEqual(lastTo('/completion').body.prompt, [7, 8, '<|user|>capital?<|assistant|>']);

    assert.deepEqual((await ollama.list()).models.map((m) => m.name), ['tiny-chat']);
    assert.equal((await ollama.ps()).models[0]!.name, 'tiny-chat');
    assert.equal((await ollama.show({ model: 'tiny-chat' })).details.quantization_level, 'Q4_1');
    await assert.rejects(ollama.embed({ model: 'tiny-chat', input: 'x' }), (e: { status_code?: number; message: string }) => e.status_code === 501 && /embeddings are not available/.test(e.message));
    await assert.rejects(ollama.chat({ model: 'tiny-chat', messages: [{ role: 'user', content: 'x' }], options: { num_ctx: 4096 } }), /num_ctx 4096 is more than this chain's context of 512/);
    await assert.rejects(ollama.pull({ model: 'llama3' }), (e: { status_code?: number }) => e.status_code === 403);

    const served = events.filter((e) => e.kind === 'generation-served');
    assert.equal(served.length, 4);
    assert.ok(served.every((e) => e.kind === 'generation-served' && e.api === 'ollama' && e.outputTokens === PIECES.length && e.promptTokens === 9));
  });

  it('the ollama PyPI client reads the same answers', async () => {
    const head = await standInHead();
    const proxy = await startApiProxy({ host: '127.0.0.1', port: await getPort({ host: '127.0.0.1' }), upstream: () => head, emit: () => undefined, model, apiKey: 'k2' });
    closers.push(() => proxy.close());
    const script = new URL('../helpers/ollama_py_client.py', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)('python3', [script, proxy.url, 'k2', 'tiny-chat', 'capital?']);
    const py = JSON.parse(stdout) as Record<string, unknown>;
    const answer = PIECES.join('');
    for (const k of ['chat', 'chat_stream', 'generate', 'generate_stream']) assert.equal(py[k], answer, k);
    assert.equal(py.generate_context_len, 9);
    assert.deepEqual(py.list, ['tiny-chat']);
    assert.deepEqual(py.ps, ['tiny-chat']);
    assert.equal(py.show_family, 'llama');
    assert.equal(py.wrong_key, 401);
  });
});
