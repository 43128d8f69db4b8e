// What the API lets in, as pure checks on a request's target and headers: the request target, the Host and Origin
// a browser page could forge (DNS rebinding, cross-site requests), the API key, and the hop-by-hop headers a proxy drops.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export interface GuardConfig {
  /** Clients must send `Authorization: Bearer <key>` (except for liveness). */
  apiKey?: string;
  /** Browser origins allowed besides same-origin and loopback pages ("*": any). */
  origins: readonly string[];
  /** This machine's host names, which a Host header may carry. */
  localNames: readonly string[];
}

export type Refusal = { status: number; message: string; kind: 'bad-request' | 'forbidden' | 'unauthorized' };

/** Origin-form only (`/path?query`); `*` and absolute URLs are not for this server. */
export function checkTarget(url: string | undefined): Refusal | undefined {
  if (!url || !url.startsWith('/') || url.startsWith('//')) {
    return { status: 400, kind: 'bad-request', message: `request target ${JSON.stringify(url ?? '')} is not supported: send a path such as /v1/models` };
  }
  return undefined;
}

const isLoopbackName = (h: string) => h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\./.test(h);

/** host[:port] or [v6]:port → the bare host name, lower case. */
export function hostOnly(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

function originAllowed(origin: string, host: string | undefined, c: GuardConfig): boolean {
  if (c.origins.includes('*') || c.origins.includes(origin.toLowerCase())) return true;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (host && u.host === host.toLowerCase()) return true; // same origin
  return isLoopbackName(hostOnly(u.host));
}

/**
 * Host: loopback names, IP literals (a rebinding attack needs a domain name), this machine's names, or a configured
 * origin's host. Origin: absent (not a browser), same-origin, a loopback page, or configured. A key replaces both
 * checks: a foreign page cannot send it.
 */
export function checkHostOrigin(headers: { host?: string; origin?: string }, c: GuardConfig): Refusal | undefined {
  if (c.apiKey) return undefined;
  const fix = 'allow it with --api-origins <origin,...>, or require a key with --api-key-file';
  if (headers.host) {
    const h = hostOnly(headers.host);
    const configured = c.origins.some((o) => o === '*' || (() => { try { return new URL(o).hostname.toLowerCase() === h; } catch { return false; } })());
    if (!(isLoopbackName(h) || isIP(h) !== 0 || c.localNames.includes(h) || configured)) {
      return { status: 403, kind: 'forbidden', message: `Host "${headers.host}" is not allowed (a page can point its own domain at this address); ${fix}` };
    }
  }
  if (headers.origin !== undefined && headers.origin !== 'null' && !originAllowed(headers.origin, headers.host, c)) {
    return { status: 403, kind: 'forbidden', message: `requests from the web page at ${headers.origin} are not allowed; ${fix}` };
  }
  if (headers.origin === 'null') return { status: 403, kind: 'forbidden', message: `requests from an opaque origin are not allowed; ${fix}` };
  return undefined;
}

/** The CORS headers for an allowed cross-origin request (never credentials: the API uses bearer keys, not cookies). */
export function corsHeaders(origin: string | undefined): Record<string, string> {
  if (!origin) return {};
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

export const preflightHeaders = (origin: string): Record<string, string> => ({
  ...corsHeaders(origin),
  'access-control-allow-methods': 'GET, HEAD, POST, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type',
  'access-control-max-age': '600',
});

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison of the bearer token with the key. */
export function checkKey(authorization: string | undefined, apiKey: string | undefined): Refusal | undefined {
  if (!apiKey) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  if (!m) return { status: 401, kind: 'unauthorized', message: 'this API requires a key: send the header "Authorization: Bearer <key>"' };
  if (!timingSafeEqual(digest(m[1]!.trim()), digest(apiKey))) return { status: 401, kind: 'unauthorized', message: 'the API key is wrong' };
  return undefined;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/** A copy without hop-by-hop headers (RFC 9110 §7.6.1: the fixed list and whatever `Connection` names) and without `drop`. */
export function endToEnd(headers: Record<string, string | string[] | undefined>, drop: readonly string[] = []): Record<string, string | string[]> {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.includes(key) || named.includes(key) || drop.some((d) => (d.endsWith('*') ? key.startsWith(d.slice(0, -1)) : key === d))) continue;
    out[key] = v;
  }
  return out;
}

const LOOPBACK_BIND = (h: string) => h === 'localhost' || h === '::1' || /^127\./.test(h);

/** A bind other than loopback serves the network: only with a key, or when the user says --no-api-key. */
export function bindRefusal(host: string, hasKey: boolean, noKeyAccepted: boolean): string | undefined {
  if (LOOPBACK_BIND(host) || hasKey || noKeyAccepted) return undefined;
  return `--api-host ${host} would serve the model to the network without a key`;
}
