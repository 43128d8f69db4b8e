// fetch for llama-server's HTTP API, one connection per request: llama-server (cpp-httplib) closes an idle kept-alive
// connection after a few seconds, and a request that reuses it at that moment fails with "fetch failed" (seen in
// bench runs and plan --probe). A loopback or LAN connect costs far less than a decode step.
import { Agent, fetch, type RequestInit as UndiciInit } from 'undici';

const noKeepAlive = new Agent({ pipelining: 0 });

export function freshFetch(url: string, init: RequestInit = {}): Promise<Response> {
  // undici's own Response is the one Node's global fetch returns; only the declared types differ
  return fetch(url, { ...(init as UndiciInit), dispatcher: noKeepAlive }) as unknown as Promise<Response>;
}
