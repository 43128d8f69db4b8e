// fetch for llama-server's HTTP API that survives a stale kept-alive connection: llama-server (cpp-httplib) closes an
// idle kept-alive connection after a few seconds, and a request sent on it at that moment fails before any answer
// ("fetch failed", cause ECONNRESET / "other side closed"; seen in bench runs and plan --probe). The server never
// read that request, so sending it once more, on a new connection, is safe.
const STALE = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

function staleConnection(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string } } | undefined)?.cause;
  return e instanceof TypeError && typeof cause?.code === 'string' && STALE.has(cause.code);
}

export async function freshFetch(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (!staleConnection(e) || init.signal?.aborted) throw e;
    return fetch(url, init);
  }
}
