// The API on this machine: forwards to the head's llama-server, counts requests, adds POST /v1/generate,
// and turns a head that dies mid-request into a clear error instead of a hang.
import http from 'node:http';
import type { Emit } from '../events/events.js';

export interface ApiProxy {
  url: string;
  close(): Promise<void>;
}

const jsonError = (res: http.ServerResponse, status: number, message: string) => {
  if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: status, type: 'unavailable_error', message } }));
};

export function startApiProxy(o: { host: string; port: number; upstream: () => string | undefined; emit: Emit }): Promise<ApiProxy> {
  const counts = { total: 0, active: 0, failed: 0 };
  const report = () => o.emit({ kind: 'requests', ...counts });

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, path: string, body?: Buffer, transform?: (b: Buffer) => Buffer) =>
    new Promise<boolean>((resolve) => {
      const base = o.upstream();
      if (!base) {
        jsonError(res, 503, 'the chain is not ready yet');
        return resolve(false);
      }
      const headers = { ...req.headers, host: new URL(base).host };
      if (body) headers['content-length'] = String(body.length);
      const up = http.request(`${base}${path}`, { method: req.method, headers }, (ur) => {
        if (transform) {
          const chunks: Buffer[] = [];
          ur.on('data', (c: Buffer) => chunks.push(c));
          ur.on('end', () => {
            const out = ur.statusCode === 200 ? transform(Buffer.concat(chunks)) : Buffer.concat(chunks);
            res.writeHead(ur.statusCode ?? 502, { 'content-type': 'application/json' });
            res.end(out);
            resolve((ur.statusCode ?? 502) < 400);
          });
        } else {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.on('data', (c: Buffer) => res.write(c));
          ur.on('close', () => {
            if (!ur.complete) {
              // The head died mid-response: end with an error the client can read, never a hang.
              const sse = String(ur.headers['content-type'] ?? '').includes('event-stream');
              if (sse) res.write(`data: ${JSON.stringify({ error: { code: 502, message: 'the chain failed mid-generation (a rank died); retry' } })}\n\n`);
            }
            res.end();
            resolve(ur.complete && (ur.statusCode ?? 502) < 400);
          });
        }
        ur.on('error', () => undefined);
      });
      up.on('error', (err) => {
        if (res.headersSent) res.end();
        else jsonError(res, 502, `the chain's head is unavailable (${err.message}); a rank may be restarting, retry shortly`);
        resolve(false);
      });
      res.on('close', () => up.destroy()); // the client went away: stop the generation upstream
      if (body) up.end(body);
      else req.pipe(up);
    });

  const server = http.createServer(async (req, res) => {
    counts.total++;
    counts.active++;
    report();
    let ok = false;
    try {
      if (req.method === 'POST' && req.url === '/v1/generate') {
        // The original tool's endpoint: {"prompt", "max_tokens"} -> {"text", "tokens"}.
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        let parsed: { prompt?: unknown; max_tokens?: unknown };
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString() || '{}') as typeof parsed;
        } catch {
          parsed = {};
        }
        if (typeof parsed.prompt !== 'string') {
          jsonError(res, 400, 'expected a JSON body {"prompt": string, "max_tokens": number}');
        } else {
          const body = Buffer.from(JSON.stringify({ prompt: parsed.prompt, n_predict: Number(parsed.max_tokens ?? 128), stream: false }));
          req.method = 'POST';
          ok = await forward(req, res, '/completion', body, (b) => {
            const r = JSON.parse(b.toString()) as { content: string; tokens_predicted?: number };
            return Buffer.from(JSON.stringify({ text: r.content, tokens: r.tokens_predicted ?? null }));
          });
        }
      } else {
        ok = await forward(req, res, req.url ?? '/');
      }
    } finally {
      counts.active--;
      if (!ok) counts.failed++;
      report();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () =>
      resolve({
        url: `http://${o.host}:${o.port}`,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    );
  });
}
