// The API on this machine: guards every request (target, Host/Origin, key, body size), serves the Ollama API, /metrics
// and POST /v1/generate, forwards the rest to the head's llama-server, and turns a head that dies mid-request into a
// clear error instead of a hang. No request can end the process.
import http from 'node:http';
import { hostname } from 'node:os';
import type { Emit } from '../events/events.js';
import { namesModel, type ServedModel } from '../ollama-api/served-model.js';
import type { ChainLimits } from '../ollama-api/options.js';
import type { LlamaTimings } from '../ollama-api/timings.js';
import { checkHostOrigin, checkKey, checkTarget, corsHeaders, endToEnd, preflightHeaders, type GuardConfig, type Refusal } from './api-guard.js';
import { handleOllama } from './ollama-routes.js';
import { freshFetch } from '../runtime/fresh-fetch.js';

export interface ApiProxy {
  url: string;
  close(): Promise<void>;
}

export interface ApiProxyOptions {
  host: string;
  port: number;
  upstream: () => string | undefined;
  emit: Emit;
  /** The served model: names it on every API, and enables the Ollama API. */
  model?: ServedModel;
  /** Require `Authorization: Bearer <key>` on everything but liveness. */
  apiKey?: string;
  /** Browser origins allowed besides same-origin and loopback pages. */
  origins?: readonly string[];
  /** Request bodies above this many bytes get 413 (default 16 MiB). */
  maxBodyBytes?: number;
  /** Prometheus text for GET /metrics. */
  metrics?: () => string;
}

export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

/** llama-server endpoints that generate, whose answers carry `timings` (for /metrics). */
const GENERATION = new Set(['/completion', '/completions', '/v1/completions', '/chat/completions', '/v1/chat/completions', '/infill', '/v1/messages', '/v1/responses', '/responses']);

class BodyTooLarge extends Error {}

/** The whole body, or BodyTooLarge; what comes after the cap is read and dropped (up to a bound), so the client can read the 413. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const drainLimit = Math.max(64 * 1024 * 1024, 2 * max);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let over = Number(req.headers['content-length'] ?? 0) > max;
    if (over) reject(new BodyTooLarge());
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (!over && n > max) {
        over = true;
        chunks.length = 0;
        reject(new BodyTooLarge());
      }
      if (!over) chunks.push(c);
      else if (n > drainLimit) req.destroy();
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const isOllamaPath = (p: string) => p === '/api' || p.startsWith('/api/');

export function startApiProxy(o: ApiProxyOptions): Promise<ApiProxy> {
  const counts = { total: 0, active: 0, failed: 0 };
  const report = () => o.emit({ kind: 'requests', ...counts });
  const max = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const guard: GuardConfig = {
    apiKey: o.apiKey,
    origins: (o.origins ?? []).map((s) => s.toLowerCase().replace(/\/$/, '')),
    localNames: [hostname().toLowerCase(), `${hostname().toLowerCase()}.local`, ...(o.host === '0.0.0.0' || o.host === '::' ? [] : [o.host.toLowerCase()])],
  };

  let limits: { base: string; value: Promise<ChainLimits> } | undefined;
  /** The head's real context per request (llama-server /props), asked once per head address. */
  const chainLimits = (): Promise<ChainLimits> => {
    const base = o.upstream();
    const m = o.model!;
    const fallback: ChainLimits = { slotCtx: Math.floor(m.ctx / Math.max(1, m.parallel)), parallel: m.parallel, modelName: m.name };
    if (!base) return Promise.resolve(fallback);
    if (limits?.base !== base) {
      const value = freshFetch(`${base}/props`, { signal: AbortSignal.timeout(5000) })
        .then((r) => (r.ok ? (r.json() as Promise<{ default_generation_settings?: { n_ctx?: number } }>) : undefined))
        .then((p) => (p?.default_generation_settings?.n_ctx ? { ...fallback, slotCtx: p.default_generation_settings.n_ctx } : fallback))
        .catch(() => fallback);
      limits = { base, value };
      void value.then((v) => (v === fallback && limits?.base === base ? (limits = undefined) : undefined)); // ask again next time
    }
    return limits.value;
  };

  const observe = (api: 'ollama' | 'openai' | 'llama', t: LlamaTimings | undefined, totalMs: number) => {
    if (!t) return;
    o.emit({
      kind: 'generation-served',
      api,
      promptTokens: t.prompt_n ?? 0,
      outputTokens: t.predicted_n ?? 0,
      // The first token comes out when decoding starts: the wall time before llama-server's generation phase.
      ttftMs: Math.max(0, totalMs - (t.predicted_ms ?? 0)),
    });
  };

  const refuse = (res: http.ServerResponse, path: string, r: Refusal, headers: Record<string, string> = {}) => {
    if (res.headersSent) return void res.end();
    const extra = r.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
    res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', ...extra, ...headers });
    const type = r.kind === 'unauthorized' ? 'authentication_error' : r.kind === 'forbidden' ? 'permission_error' : r.status === 404 ? 'not_found_error' : r.status >= 500 ? 'unavailable_error' : 'invalid_request_error';
    res.end(JSON.stringify(isOllamaPath(path) ? { error: r.message } : { error: { code: r.status, type, message: r.message } }));
  };
  const fail = (res: http.ServerResponse, path: string, status: number, message: string, headers: Record<string, string> = {}) =>
    refuse(res, path, { status, kind: status === 400 ? 'bad-request' : 'forbidden', message }, headers);

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, path: string, body: Buffer, cors: Record<string, string>, transform?: (b: Buffer) => Buffer) =>
    new Promise<boolean>((resolve) => {
      const base = o.upstream();
      if (!base) {
        fail(res, path, 503, 'the chain is not ready yet');
        return resolve(false);
      }
      const u = new URL(base);
      const headers = { ...endToEnd(req.headers, ['host', 'authorization', 'origin', 'referer', 'cookie', 'content-length']), host: u.host, 'content-length': String(body.length) };
      const t0 = performance.now();
      const sniff = !transform && req.method === 'POST' && GENERATION.has(path.split('?')[0]!);
      // agent: false, one upstream connection per request: a kept-alive one that llama-server is closing fails the request
      const up = http.request({ hostname: u.hostname, port: u.port, path, method: req.method, headers, agent: false }, (ur) => {
        const status = ur.statusCode ?? 502;
        // llama-server's own CORS answer (it echoes any Origin) never reaches the client; the guard decided above.
        const outHeaders = { ...endToEnd(ur.headers, ['access-control-*', ...(transform ? ['content-length', 'content-type'] : [])]), ...cors };
        if (transform) {
          const chunks: Buffer[] = [];
          ur.on('data', (c: Buffer) => chunks.push(c));
          ur.on('end', () => {
            let out: Buffer = Buffer.concat(chunks);
            try {
              if (status === 200) out = transform(out);
            } catch {
              /* not the expected JSON: pass it on as it came */
            }
            res.writeHead(status, { ...outHeaders, 'content-type': 'application/json' });
            res.end(out);
            resolve(status < 400);
          });
        } else {
          res.writeHead(status, outHeaders);
          const seen: Buffer[] = [];
          let seenBytes = 0;
          ur.on('data', (c: Buffer) => {
            res.write(c);
            if (sniff && seenBytes < 4 * 1024 * 1024) {
              seen.push(c);
              seenBytes += c.length;
            }
          });
          ur.on('close', () => {
            if (!ur.complete) {
              // The head died mid-response: end with an error the client can read, never a hang.
              const sse = String(ur.headers['content-type'] ?? '').includes('event-stream');
              if (sse) res.write(`data: ${JSON.stringify({ error: { code: 502, message: 'the chain failed mid-generation (a rank died); retry' } })}\n\n`);
            } else if (sniff && status === 200) {
              observe(path.startsWith('/v1/') || path.startsWith('/chat/') ? 'openai' : 'llama', lastTimings(Buffer.concat(seen).toString()), performance.now() - t0);
            }
            res.end();
            resolve(ur.complete && status < 400);
          });
        }
        ur.on('error', () => undefined);
      });
      up.on('error', (err) => {
        if (res.headersSent) res.end();
        else fail(res, path, 502, `the chain's head is unavailable (${err.message}); a rank may be restarting, retry shortly`);
        resolve(false);
      });
      res.on('close', () => up.destroy()); // the client went away: stop the generation upstream
      up.end(body);
    });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> => {
    const target = checkTarget(req.url);
    if (target) return (refuse(res, '/', target), false);
    const path = req.url!;
    const route = path.split('?')[0]!;
    const hostOrigin = checkHostOrigin({ host: req.headers.host, origin: req.headers.origin }, guard);
    if (hostOrigin) return (refuse(res, path, hostOrigin), false);
    const origin = req.headers.origin;
    const cors = corsHeaders(origin);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, origin ? preflightHeaders(origin) : { allow: 'GET, HEAD, POST, DELETE, OPTIONS' });
      return (res.end(), true);
    }
    // Liveness, without a key: Ollama's root answer, and the head's /health without the chain's details.
    if (route === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...cors });
      return (res.end('Ollama is running'), true);
    }
    const keyRefusal = checkKey(req.headers.authorization, o.apiKey);
    if (keyRefusal && route === '/health' && req.method === 'GET') return healthWithoutDetails(res, cors);
    if (keyRefusal) return (refuse(res, path, keyRefusal), false); // no CORS headers: a page without the key learns nothing

    let body: Buffer;
    try {
      body = await readBody(req, max);
    } catch (err) {
      if (!(err instanceof BodyTooLarge)) throw err;
      fail(res, path, 413, `the request body is larger than the API accepts (${max} bytes)`, cors);
      return false;
    }
    if (route === '/metrics' && req.method === 'GET' && o.metrics) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', ...cors });
      return (res.end(o.metrics()), true);
    }
    if (isOllamaPath(route)) {
      if (!o.model) return (fail(res, path, 501, 'the Ollama API needs the served model described', cors), false);
      return handleOllama(req, res, route, body, {
        model: o.model,
        upstream: o.upstream(),
        limits: chainLimits,
        headers: cors,
        observe: (t, ms) => observe('ollama', t, ms),
      });
    }
    if (req.method === 'POST' && route === '/v1/generate') return legacyGenerate(req, res, path, body, cors);
    if (o.model && req.method === 'POST' && body.length && String(req.headers['content-type'] ?? 'application/json').includes('json')) {
      const named = requestedModel(body);
      if (named !== undefined && !namesModel(named, o.model)) {
        return (refuse(res, path, { status: 404, kind: 'bad-request', message: `model "${named}" not found: this cluster serves one model, "${o.model.name}"` }, cors), false);
      }
    }
    return forward(req, res, path, body, cors);
  };

  /** The original tool's endpoint: {"prompt", "max_tokens"} -> {"text", "tokens"}. */
  const legacyGenerate = async (req: http.IncomingMessage, res: http.ServerResponse, path: string, raw: Buffer, cors: Record<string, string>) => {
    let parsed: { prompt?: unknown; max_tokens?: unknown };
    try {
      parsed = JSON.parse(raw.toString() || '{}') as typeof parsed;
    } catch {
      parsed = {};
    }
    if (typeof parsed?.prompt !== 'string') return (fail(res, path, 400, 'expected a JSON body {"prompt": string, "max_tokens": number}', cors), false);
    const body = Buffer.from(JSON.stringify({ prompt: parsed.prompt, n_predict: Number(parsed.max_tokens ?? 128), stream: false }));
    req.method = 'POST';
    const t0 = performance.now();
    return forward(req, res, '/completion', body, cors, (b) => {
      const r = JSON.parse(b.toString()) as { content: string; tokens_predicted?: number; timings?: LlamaTimings };
      observe('llama', r.timings, performance.now() - t0);
      return Buffer.from(JSON.stringify({ text: r.content, tokens: r.tokens_predicted ?? null }));
    });
  };

  /** Without the key: whether the chain serves, not where its ranks run. */
  const healthWithoutDetails = async (res: http.ServerResponse, cors: Record<string, string>) => {
    const base = o.upstream();
    let status = 503;
    try {
      if (base) status = (await freshFetch(`${base}/health`, { signal: AbortSignal.timeout(3000) })).status;
    } catch {
      status = 503;
    }
    res.writeHead(status === 200 ? 200 : 503, { 'content-type': 'application/json', ...cors });
    res.end(JSON.stringify(status === 200 ? { status: 'ok' } : { status: 'unavailable' }));
    return status === 200;
  };

  const server = http.createServer((req, res) => {
    // A client that resets mid-request or mid-answer is that request's problem only.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    counts.total++;
    counts.active++;
    report();
    handle(req, res)
      .catch((err: unknown) => {
        // Whatever went wrong stays with this request: answer it, keep serving.
        if (!res.headersSent) fail(res, '/', 500, `internal error in the API proxy: ${err instanceof Error ? err.message : String(err)}`);
        else res.end();
        return false;
      })
      .then((ok) => {
        counts.active--;
        if (!ok) counts.failed++;
        report();
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () =>
      resolve({
        url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    );
  });
}

/** The `model` a JSON request body names, if any. */
function requestedModel(body: Buffer): string | undefined {
  try {
    const m = (JSON.parse(body.toString()) as { model?: unknown }).model;
    return typeof m === 'string' && m ? m : undefined;
  } catch {
    return undefined;
  }
}

/** The last `timings` object in an SSE stream or a JSON answer. */
function lastTimings(text: string): LlamaTimings | undefined {
  const candidates = text.includes('data:') ? text.split('\n').filter((l) => l.startsWith('data:') && l.includes('"timings"')).map((l) => l.slice(5).trim()) : [text];
  for (const c of candidates.reverse()) {
    try {
      const t = (JSON.parse(c) as { timings?: LlamaTimings }).timings;
      if (t) return t;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}
