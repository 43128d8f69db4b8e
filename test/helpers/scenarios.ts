// Request scenarios run the same way against stock llama-server and a chain, then compared.
import { ASCII_GRAMMAR, assertSameCompletion, complete, completeMany, type Completion } from './engine.js';

export const PROMPTS = [
  'The quick brown fox jumps over the lazy dog. Once upon a time',
  'In a distant galaxy, the engineers of a small ship decided to',
  'Q: What is the capital of France?\nA:',
  'def fibonacci(n):\n    ',
];

export interface ScenarioResult {
  name: string;
  completions: Completion[];
}

/** One greedy completion per prompt, sequentially. */
export async function sequential(port: number, nPredict = 64): Promise<ScenarioResult> {
  const out: Completion[] = [];
  for (const prompt of PROMPTS.slice(0, 2)) out.push(await complete(port, { prompt, n_predict: nPredict }));
  return { name: 'sequential', completions: out };
}

/** Four prompts at once, decoded together in the server's parallel slots. */
export async function parallel(port: number, nPredict = 32): Promise<ScenarioResult> {
  return { name: 'parallel', completions: await completeMany(port, PROMPTS, { n_predict: nPredict }) };
}

/**
 * The reference for `parallel` on a chain with micro-batched decode (the default): the same four prompts, each
 * answered alone. A chain splits a step of several sequences into one micro-batch per sequence, so each sequence
 * sees stock's single-sequence kernels, where stock's own answers to the prompts sent together may differ
 * (batched kernels) by ~1e-4.
 */
export async function parallelAlone(port: number, nPredict = 32): Promise<ScenarioResult> {
  const out: Completion[] = [];
  for (const prompt of PROMPTS) out.push(await complete(port, { prompt, n_predict: nPredict }));
  return { name: 'parallel', completions: out };
}

/** A, then A + answer + follow-up (prompt-cache reuse), then B, then A again. */
export async function multiTurn(port: number, nPredict = 24): Promise<ScenarioResult> {
  const a = PROMPTS[0]!;
  const r1 = await complete(port, { prompt: a, n_predict: nPredict, id_slot: 0 });
  const r2 = await complete(port, { prompt: `${a}${r1.content} And then`, n_predict: nPredict, id_slot: 0 });
  const r3 = await complete(port, { prompt: PROMPTS[1]!, n_predict: nPredict, id_slot: 0 });
  const r4 = await complete(port, { prompt: a, n_predict: nPredict, id_slot: 0 });
  return { name: 'multi-turn', completions: [r1, r2, r3, r4] };
}

/** Generates past the context size, so the server shifts the context (needs --context-shift and a small -c). */
export async function contextShift(port: number): Promise<ScenarioResult> {
  const r = await complete(port, { prompt: PROMPTS[0]!, n_predict: 120, n_keep: 4 });
  return { name: 'context-shift', completions: [r] };
}

export function compareScenario(stock: ScenarioResult, chain: ScenarioResult, what: string): number {
  let worst = 0;
  stock.completions.forEach((c, i) => {
    const d = assertSameCompletion(c, chain.completions[i]!, 1e-4, `${what} ${stock.name} #${i}`);
    worst = Math.max(worst, d);
  });
  return worst;
}

interface ChatChunk {
  choices: { delta?: { content?: string }; message?: { content?: string } }[];
}

/** /v1/chat/completions, streaming or not; returns the text. */
export async function chat(port: number, stream: boolean, content = 'Write one sentence about the sea.'): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], temperature: 0, max_tokens: 48, stream, grammar: ASCII_GRAMMAR }),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`chat HTTP ${r.status}: ${text}`);
  if (!stream) return (JSON.parse(text) as ChatChunk).choices[0]?.message?.content ?? '';
  let out = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line.includes('[DONE]')) continue;
    out += (JSON.parse(line.slice(6)) as ChatChunk).choices[0]?.delta?.content ?? '';
  }
  return out;
}

export interface StreamOptions {
  /** Request fields over the defaults (greedy, n_predict 32, n_probs 5, the ASCII grammar). */
  body?: Record<string, unknown>;
  /** Aborts the request (a client that disconnects): the stream then ends with what had arrived. */
  signal?: AbortSignal;
  /** Called after each token arrives, with the completion so far. */
  onToken?: (sofar: StreamedCompletion) => void;
}

export interface StreamedCompletion extends Completion {
  /** An error event's message (the server reports a failure mid-stream as `error: {...}`), if any. */
  error?: string;
  /** True when the client aborted the request through `signal`. */
  aborted?: boolean;
}

/** /completion with stream: true; returns the concatenated text and the per-token probabilities. */
export async function completeStream(port: number, prompt = PROMPTS[1]!, o: StreamOptions = {}): Promise<StreamedCompletion> {
  const r = await fetch(`http://127.0.0.1:${port}/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, temperature: 0, n_predict: 32, n_probs: 5, stream: true, grammar: ASCII_GRAMMAR, ...o.body }),
    signal: o.signal,
  });
  if (r.status !== 200) throw new Error(`stream HTTP ${r.status}: ${await r.text()}`);
  const out: StreamedCompletion = { content: '', tokens: [], probs: [] };
  const take = (line: string) => {
    if (line.startsWith('error: ')) {
      out.error = line.slice(7);
      return;
    }
    if (!line.startsWith('data: ')) return;
    const d = JSON.parse(line.slice(6)) as {
      content?: string;
      error?: { message?: string };
      completion_probabilities?: { id: number; logprob: number; top_logprobs: { id: number; logprob: number }[] }[];
    };
    if (d.error) out.error = d.error.message ?? JSON.stringify(d.error);
    out.content += d.content ?? '';
    for (const p of d.completion_probabilities ?? []) {
      out.probs.push({ id: p.id, logprob: p.logprob, top: p.top_logprobs.map((t) => ({ id: t.id, logprob: t.logprob })) });
    }
    if (d.completion_probabilities?.length) o.onToken?.(out);
  };
  let buf = '';
  try {
    for await (const chunk of r.body!) {
      buf += Buffer.from(chunk as Uint8Array).toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      lines.forEach(take);
    }
    take(buf);
  } catch (e) {
    if (!o.signal?.aborted) throw e;
    out.aborted = true;
  }
  return out;
}
