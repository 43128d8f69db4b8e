// Talks to the head's llama-server HTTP API: health and streamed completions, with errors that never hang.
import { freshFetch } from './fresh-fetch.js';
import { ExternalError } from '../errors.js';
import { sseFields } from './sse.js';

/** The head's per-token chain timing (patched llama-server /health `chain`). */
export interface ChainStats {
  ranks: { rank: number; layers: string; compute_ms_per_token: number }[];
  tokens: number;
  round_trip_ms_per_token: number;
  hop_ms: number;
}

export type Health = { ok: true; chain?: ChainStats } | { ok: false; status: number; message: string };

export async function headHealth(apiUrl: string, signal?: AbortSignal): Promise<Health> {
  try {
    const res = await freshFetch(`${apiUrl}/health`, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(3000)]) : AbortSignal.timeout(3000) });
    const body = await res.text();
    if (res.ok) {
      try {
        const chain = (JSON.parse(body) as { chain?: ChainStats }).chain;
        return chain ? { ok: true, chain } : { ok: true };
      } catch {
        return { ok: true };
      }
    }
    return { ok: false, status: res.status, message: headErrorMessage(body) };
  } catch (err) {
    return { ok: false, status: 0, message: err instanceof Error ? err.message : String(err) };
  }
}

/** The message in llama-server's error body (`{"error": {"message"}}` or `{"error": "..."}`), else the body itself. */
export function headErrorMessage(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { message?: string } | string }).error;
    return typeof e === 'string' ? e : (e?.message ?? body);
  } catch {
    return body; // not JSON
  }
}

export interface CompletionResult {
  text: string;
  tokens: number;
  seconds: number;
  /** Decode tok/s as the head timed it (llama-server's `timings.predicted_per_second` on the last frame). */
  decodeTokensPerSecond?: number;
  /** The prompt's processing as the head timed it (`timings.prompt_ms`, `prompt_n`). */
  prompt?: { ms: number; tokens: number };
}

const promptTiming = (frame: { timings?: { prompt_ms?: number; prompt_n?: number } }): { prompt: { ms: number; tokens: number } } | Record<string, never> => {
  const t = frame.timings;
  return typeof t?.prompt_ms === 'number' && typeof t.prompt_n === 'number' && t.prompt_n > 0 ? { prompt: { ms: t.prompt_ms, tokens: t.prompt_n } } : {};
};

const decodeRate = (frame: { timings?: { predicted_per_second?: number } }): { decodeTokensPerSecond: number } | Record<string, never> => {
  const v = frame.timings?.predicted_per_second;
  return typeof v === 'number' && v > 0 ? { decodeTokensPerSecond: v } : {};
};

/** Streams /completion (SSE); calls onToken per piece. Rejects with the head's error text if the chain breaks mid-stream. */
export async function streamCompletion(
  apiUrl: string,
  req: { prompt: string; maxTokens: number; sampling?: Readonly<Record<string, unknown>> },
  onToken: (text: string) => void,
  signal?: AbortSignal,
): Promise<CompletionResult> {
  const t0 = performance.now();
  const res = await freshFetch(`${apiUrl}/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...req.sampling, prompt: req.prompt, n_predict: req.maxTokens, stream: true, cache_prompt: false }),
    signal,
  });
  if (!res.ok || !res.body) {
    throw new ExternalError(`the head refused the completion (HTTP ${res.status})`, { stderrTail: await res.text() });
  }
  let text = '';
  let tokens = 0;
  for await (const data of sseData(res.body)) {
    const frame = JSON.parse(data) as { content?: string; stop?: boolean; error?: { message?: string }; timings?: { predicted_per_second?: number; prompt_ms?: number; prompt_n?: number } };
    if (frame.error) throw new ExternalError(`generation failed on the chain: ${frame.error.message ?? 'unknown error'}`);
    if (frame.content) {
      text += frame.content;
      tokens++;
      onToken(frame.content);
    }
    if (frame.stop) return { text, tokens, seconds: (performance.now() - t0) / 1000, ...decodeRate(frame), ...promptTiming(frame) };
  }
  throw new ExternalError('the head closed the stream before the generation finished (a rank may have died)');
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Streams /v1/chat/completions (the head applies the model's chat template to the whole history); calls onToken per
 * piece of the answer. Rejects with the head's error text if the chain breaks mid-stream.
 */
export async function streamChat(
  apiUrl: string,
  req: { messages: readonly ChatMessage[]; maxTokens: number; sampling?: Readonly<Record<string, unknown>> },
  onToken: (text: string) => void,
  signal?: AbortSignal,
): Promise<CompletionResult> {
  const t0 = performance.now();
  const res = await freshFetch(`${apiUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...req.sampling, messages: req.messages, max_tokens: req.maxTokens, stream: true }),
    signal,
  });
  if (!res.ok || !res.body) {
    throw new ExternalError(`the head refused the chat request (HTTP ${res.status})`, { stderrTail: await res.text() });
  }
  let text = '';
  let tokens = 0;
  let rate = {};
  for await (const data of sseData(res.body)) {
    if (data === '[DONE]') return { text, tokens, seconds: (performance.now() - t0) / 1000, ...rate };
    const frame = JSON.parse(data) as { choices?: { delta?: { content?: string | null } }[]; error?: { message?: string }; timings?: { predicted_per_second?: number } };
    rate = { ...rate, ...decodeRate(frame) };
    if (frame.error) throw new ExternalError(`generation failed on the chain: ${frame.error.message ?? 'unknown error'}`);
    const piece = frame.choices?.[0]?.delta?.content;
    if (piece) {
      text += piece;
      tokens++;
      onToken(piece);
    }
  }
  throw new ExternalError('the head closed the stream before the answer finished (a rank may have died)');
}

/** The `data:` payloads of a server-sent event stream; an `error:` line (llama-server's stream error) throws. */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  for await (const f of sseFields(body)) {
    if (f.field === 'error') throw new ExternalError(`generation failed on the chain: ${f.value}`);
    yield f.value;
  }
}
