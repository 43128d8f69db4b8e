// The one reader of llama-server's server-sent event streams: `data:` payloads (with or without the space after the
// colon) and its `error:` lines (a stream that fails after the headers). Callers parse the JSON and time it as they need.

export type SseField = { field: 'data' | 'error'; value: string };

export async function* sseFields(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseField> {
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line.startsWith('data:')) yield { field: 'data', value: line.slice(5).trim() };
      else if (line.startsWith('error:')) yield { field: 'error', value: line.slice(6).trim() };
    }
  }
}
