// The Ollama API (/api/*) at the IO edge: parses the request, asks the head through llama-server's native endpoints
// (translation in src/ollama-api/), and writes Ollama's JSON or NDJSON.
import type http from 'node:http';
import { errorBody, OllamaApiError } from '../ollama-api/api-error.js';
import { ChatStream, chatResponse, chatToLlama } from '../ollama-api/chat.js';
import { generateInput, generateResponse, generateToLlama, GenerateStream, loadResponse } from '../ollama-api/generate.js';
import { managementRefusal, psResponse, showResponse, tagsResponse, versionResponse } from '../ollama-api/info.js';
import type { ChainLimits } from '../ollama-api/options.js';
import { parseBody, requireModel, wantsStream, type Body } from '../ollama-api/request-body.js';
import { namesModel, type ServedModel } from '../ollama-api/served-model.js';
import type { LlamaTimings } from '../ollama-api/timings.js';
import { headErrorMessage, sseData } from '../runtime/head-client.js';
import { freshFetch } from '../runtime/fresh-fetch.js';

export interface OllamaContext {
  model: ServedModel;
  /** The head's API base URL, or undefined while the chain starts. */
  upstream: string | undefined;
  limits(): Promise<ChainLimits>;
  /** Extra response headers (CORS). */
  headers: Record<string, string>;
  /** Reports a served generation (metrics). */
  observe(timings: LlamaTimings | undefined, totalMs: number): void;
}

const MANAGEMENT: Record<string, string> = { '/api/pull': 'pull', '/api/push': 'push', '/api/create': 'create', '/api/copy': 'copy', '/api/delete': 'delete' };

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** Writes the refusal; true when the request was served. */
export async function handleOllama(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Buffer, c: OllamaContext): Promise<boolean> {
  const abort = new AbortController();
  res.on('close', () => abort.abort()); // the client went away: stop the generation on the chain
  try {
    await route(req, res, path, body, c, abort.signal);
    return true;
  } catch (err) {
    const e = err instanceof OllamaApiError ? err : new OllamaApiError(502, `the chain's head failed: ${err instanceof Error ? err.message : String(err)}`);
    if (!res.headersSent) send(res, e.status, errorBody(e.message), c.headers);
    else if (!res.writableEnded) res.end(`${JSON.stringify(errorBody(e.message))}\n`); // mid-stream: Ollama's clients throw on this line
    return false;
  }
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, path: string, raw: Buffer, c: OllamaContext, signal: AbortSignal): Promise<void> {
  const m = req.method ?? 'GET';
  const is = (method: string | string[], p: string) => path === p && ([] as string[]).concat(method).includes(m);
  if (is(['GET', 'HEAD'], '/api/version')) return send(res, 200, versionResponse(), c.headers);
  if (is(['GET', 'HEAD'], '/api/tags')) return send(res, 200, tagsResponse(c.model), c.headers);
  if (is(['GET', 'HEAD'], '/api/ps')) return send(res, 200, psResponse(c.model, (await c.limits()).slotCtx), c.headers);
  if (is('POST', '/api/show')) {
    requireModel(parseBody(raw.toString()), c.model);
    return send(res, 200, showResponse(c.model), c.headers);
  }
  if (MANAGEMENT[path] || path.startsWith('/api/blobs/')) {
    const b = m === 'POST' || m === 'DELETE' ? safeBody(raw) : {};
    // Pulling the model already served is a no-op that succeeds, as in Ollama when it is up to date.
    if (path === '/api/pull' && typeof (b.model ?? b.name) === 'string' && namesModel(String(b.model ?? b.name), c.model)) {
      if (wantsStream(b)) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson', ...c.headers });
        return void res.end(`${JSON.stringify({ status: 'success' })}\n`);
      }
      return send(res, 200, { status: 'success' }, c.headers);
    }
    throw managementRefusal(MANAGEMENT[path] ?? 'creating blobs', c.model);
  }
  if (!c.upstream && ['/api/chat', '/api/generate', '/api/embed', '/api/embeddings'].includes(path)) throw new OllamaApiError(503, 'the chain is not ready yet; retry shortly');
  if (is('POST', '/api/chat')) return chat(res, raw, c, signal);
  if (is('POST', '/api/generate')) return generate(res, raw, c, signal);
  if (is('POST', '/api/embed') || is('POST', '/api/embeddings')) return embed(res, path, raw, c, signal);
  if (['/api/version', '/api/tags', '/api/ps', '/api/show', '/api/chat', '/api/generate', '/api/embed', '/api/embeddings'].includes(path)) {
    throw new OllamaApiError(405, `${m} is not allowed on ${path}`);
  }
  throw new OllamaApiError(404, `${path} is not part of the Ollama API this cluster serves`);
}

function safeBody(raw: Buffer): Body {
  try {
    return parseBody(raw.toString());
  } catch {
    return {};
  }
}

/** POSTs JSON to the head; a refusal carries the head's own message and status. */
async function post(c: OllamaContext, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  let r: Response;
  try {
    r = await freshFetch(`${c.upstream}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  } catch (err) {
    throw new OllamaApiError(502, `the chain's head is unavailable (${(err as Error).message}); a rank may be restarting, retry shortly`);
  }
  if (!r.ok) {
    throw new OllamaApiError(r.status, headErrorMessage(await r.text()));
  }
  return r;
}

async function ndjson(res: http.ServerResponse, c: OllamaContext, objects: AsyncIterable<Record<string, unknown>[]>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', ...c.headers });
  for await (const batch of objects) for (const o of batch) res.write(`${JSON.stringify(o)}\n`);
  res.end();
}

async function chat(res: http.ServerResponse, raw: Buffer, c: OllamaContext, signal: AbortSignal): Promise<void> {
  const b = parseBody(raw.toString());
  requireModel(b, c.model);
  if (Array.isArray(b.messages) && b.messages.length === 0) return send(res, 200, loadResponse(c.model.name, new Date(), true), c.headers);
  const body = chatToLlama(b, c.model, await c.limits());
  const t0 = performance.now();
  const up = await post(c, '/v1/chat/completions', body, signal);
  if (!wantsStream(b)) {
    const j = (await up.json()) as Parameters<typeof chatResponse>[0];
    const ms = performance.now() - t0;
    c.observe(j.timings, ms);
    return send(res, 200, chatResponse(j, c.model.name, ms, new Date()), c.headers);
  }
  const s = new ChatStream(c.model.name);
  await ndjson(
    res,
    c,
    (async function* () {
      for await (const data of sseData(up.body!)) yield s.push(data, new Date());
      const ms = performance.now() - t0;
      c.observe(s.lastTimings, ms);
      yield s.end(ms, new Date());
    })(),
  );
}

async function generate(res: http.ServerResponse, raw: Buffer, c: OllamaContext, signal: AbortSignal): Promise<void> {
  const b = parseBody(raw.toString());
  requireModel(b, c.model);
  const input = generateInput(b, c.model);
  if (input.loadOnly) return send(res, 200, loadResponse(c.model.name, new Date(), false), c.headers);
  const t0 = performance.now();
  const text =
    input.plan.kind === 'text'
      ? input.plan.text
      : ((await (await post(c, '/apply-template', { messages: input.plan.messages }, signal)).json()) as { prompt: string }).prompt;
  const content = input.context.length ? [...input.context, text] : text;
  // Ollama's `context`: the prompt's token ids as the head tokenizes them, then the answer's (raw mode returns none).
  const promptTokens = async () =>
    b.raw === true ? undefined : ((await (await post(c, '/tokenize', { content, add_special: true, parse_special: true }, signal)).json()) as { tokens: number[] }).tokens;
  const body = generateToLlama(b, text, input.context, c.model, await c.limits());
  const up = await post(c, '/completion', body, signal);
  if (!wantsStream(b)) {
    const j = (await up.json()) as Parameters<typeof generateResponse>[0];
    const ids = await promptTokens();
    const ms = performance.now() - t0;
    c.observe(j.timings, ms);
    return send(res, 200, generateResponse(j, c.model.name, ids, ms, new Date()), c.headers);
  }
  const s = new GenerateStream(c.model.name);
  await ndjson(
    res,
    c,
    (async function* () {
      for await (const data of sseData(up.body!)) {
        yield s.push(data, new Date());
        if (s.stopped) break;
      }
      if (!s.stopped) throw new OllamaApiError(502, 'the chain closed the stream before the answer finished (a rank may have died); retry');
      const ids = await promptTokens();
      const ms = performance.now() - t0;
      c.observe(s.lastTimings, ms);
      yield [s.end(ids, ms, new Date())];
    })(),
  );
}

async function embed(res: http.ServerResponse, path: string, raw: Buffer, c: OllamaContext, signal: AbortSignal): Promise<void> {
  const b = parseBody(raw.toString());
  requireModel(b, c.model);
  const legacy = path === '/api/embeddings';
  const input = legacy ? b.prompt : b.input;
  if (!(typeof input === 'string' || (Array.isArray(input) && input.every((s) => typeof s === 'string')))) {
    throw new OllamaApiError(400, legacy ? '"prompt" must be a string' : '"input" must be a string or a list of strings');
  }
  const t0 = performance.now();
  let up: Response;
  try {
    up = await post(c, '/v1/embeddings', { input, model: c.model.name }, signal);
  } catch (err) {
    if (err instanceof OllamaApiError && err.status === 501) {
      throw new OllamaApiError(501, `embeddings are not available: the chain serving "${c.model.name}" was started for generation (its head runs without --embeddings)`);
    }
    throw err;
  }
  const j = (await up.json()) as { data?: { embedding: number[] }[]; usage?: { prompt_tokens?: number } };
  const embeddings = (j.data ?? []).map((d) => d.embedding);
  if (legacy) return send(res, 200, { embedding: embeddings[0] ?? [] }, c.headers);
  const ns = Math.round((performance.now() - t0) * 1e6);
  send(res, 200, { model: c.model.name, embeddings, total_duration: ns, load_duration: 0, prompt_eval_count: j.usage?.prompt_tokens ?? 0 }, c.headers);
}
