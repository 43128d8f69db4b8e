// POST /api/chat ⇄ llama-server's /v1/chat/completions (the head applies the model's chat template, tools and thinking).
import { OllamaApiError } from './api-error.js';
import { formatFields, refuseImages, samplingFields, type ChainLimits } from './options.js';
import type { Body } from './request-body.js';
import type { ServedModel } from './served-model.js';
import { doneReason, ollamaStats, type LlamaTimings } from './timings.js';

interface OllamaToolCall {
  function: { name: string; arguments: Record<string, unknown> };
}

export interface OllamaMessage {
  role: string;
  content: string;
  thinking?: string;
  tool_calls?: OllamaToolCall[];
}

interface OaiToolCall {
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

function toOaiMessage(m: unknown, i: number): Record<string, unknown> {
  if (typeof m !== 'object' || m === null) throw new OllamaApiError(400, `messages[${i}] must be an object`);
  const msg = m as Record<string, unknown>;
  if (typeof msg.role !== 'string') throw new OllamaApiError(400, `messages[${i}].role must be a string`);
  if (msg.content !== undefined && typeof msg.content !== 'string') throw new OllamaApiError(400, `messages[${i}].content must be a string`);
  refuseImages(msg.images);
  const out: Record<string, unknown> = { role: msg.role, content: msg.content ?? '' };
  if (typeof msg.thinking === 'string' && msg.thinking) out.reasoning_content = msg.thinking;
  if (Array.isArray(msg.tool_calls)) {
    out.tool_calls = (msg.tool_calls as OllamaToolCall[]).map((c, k) => ({
      id: `call_${i}_${k}`,
      type: 'function',
      function: { name: c.function?.name ?? '', arguments: JSON.stringify(c.function?.arguments ?? {}) },
    }));
  }
  if (msg.role === 'tool') {
    if (typeof msg.tool_name === 'string') out.name = msg.tool_name;
    out.tool_call_id = typeof msg.tool_call_id === 'string' ? msg.tool_call_id : `call_${i}`;
  }
  return out;
}

/** The /v1/chat/completions body for an Ollama chat request. */
export function chatToLlama(b: Body, served: ServedModel, limits: ChainLimits): Record<string, unknown> {
  if (b.messages !== undefined && !Array.isArray(b.messages)) throw new OllamaApiError(400, '"messages" must be a list');
  const messages = ((b.messages as unknown[] | undefined) ?? []).map(toOaiMessage);
  // The Ollama model's own system prompt applies unless the request brings one (as in Ollama).
  if (served.system && !messages.some((m) => m.role === 'system')) messages.unshift({ role: 'system', content: served.system });
  const out: Record<string, unknown> = {
    model: served.name,
    messages,
    stream: b.stream !== false,
    ...samplingFields(b.options, served.params, limits),
    ...formatFields(b.format),
  };
  if (Array.isArray(b.tools) && b.tools.length) out.tools = b.tools;
  if (b.think !== undefined) out.chat_template_kwargs = { enable_thinking: b.think !== false };
  return out;
}

const toolCalls = (calls: OaiToolCall[] | undefined): OllamaToolCall[] | undefined =>
  calls?.length
    ? calls.map((c) => {
        let args: Record<string, unknown> = {};
        try {
          args = JSON.parse(c.function?.arguments || '{}') as Record<string, unknown>;
        } catch {
          args = {};
        }
        return { function: { name: c.function?.name ?? '', arguments: args } };
      })
    : undefined;

function message(content: string, thinking: string | undefined, calls: OllamaToolCall[] | undefined): OllamaMessage {
  return { role: 'assistant', content, ...(thinking ? { thinking } : {}), ...(calls ? { tool_calls: calls } : {}) };
}

interface OaiChatResponse {
  choices?: { message?: { content?: string | null; reasoning_content?: string; tool_calls?: OaiToolCall[] }; finish_reason?: string | null }[];
  timings?: LlamaTimings;
}

/** A complete (stream: false) llama-server chat answer → Ollama's one response object. */
export function chatResponse(r: OaiChatResponse, model: string, totalMs: number, now: Date): Record<string, unknown> {
  const c = r.choices?.[0];
  return {
    model,
    created_at: now.toISOString(),
    message: message(c?.message?.content ?? '', c?.message?.reasoning_content, toolCalls(c?.message?.tool_calls)),
    done: true,
    done_reason: doneReason(c?.finish_reason),
    ...ollamaStats(r.timings, totalMs),
  };
}

interface OaiChunk {
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null; tool_calls?: (OaiToolCall & { index?: number })[] }; finish_reason?: string | null }[];
  timings?: LlamaTimings;
}

/** Turns llama-server's chat SSE chunks into Ollama's NDJSON objects: one per piece, then the final one with stats. */
export class ChatStream {
  private finish: string | null | undefined;
  private timings: LlamaTimings | undefined;
  private readonly calls: OaiToolCall[] = [];

  constructor(private readonly model: string) {}

  get lastTimings(): LlamaTimings | undefined {
    return this.timings;
  }

  /** Objects to send for one SSE `data:` payload (none for `[DONE]`). */
  push(data: string, now: Date): Record<string, unknown>[] {
    if (data === '[DONE]') return [];
    const chunk = JSON.parse(data) as OaiChunk & { error?: { message?: string } };
    if (chunk.error) throw new OllamaApiError(502, `generation failed on the chain: ${chunk.error.message ?? 'unknown error'}`);
    if (chunk.timings) this.timings = chunk.timings;
    const c = chunk.choices?.[0];
    if (!c) return [];
    if (c.finish_reason) this.finish = c.finish_reason;
    for (const t of c.delta?.tool_calls ?? []) {
      // Tool calls arrive in fragments (name, then argument text); Ollama sends each call whole.
      const i = t.index ?? 0;
      const cur = (this.calls[i] ??= { function: { name: '', arguments: '' } });
      if (t.function?.name) cur.function!.name = t.function.name;
      if (t.function?.arguments) cur.function!.arguments = (cur.function!.arguments ?? '') + t.function.arguments;
    }
    const content = c.delta?.content ?? '';
    const thinking = c.delta?.reasoning_content ?? undefined;
    if (!content && !thinking) return [];
    return [{ model: this.model, created_at: now.toISOString(), message: message(content, thinking, undefined), done: false }];
  }

  /** The closing objects: collected tool calls, then `done: true` with the real timings. */
  end(totalMs: number, now: Date): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const calls = toolCalls(this.calls.filter(Boolean));
    if (calls) out.push({ model: this.model, created_at: now.toISOString(), message: message('', undefined, calls), done: false });
    out.push({
      model: this.model,
      created_at: now.toISOString(),
      message: message('', undefined, undefined),
      done: true,
      done_reason: doneReason(this.finish),
      ...ollamaStats(this.timings, totalMs),
    });
    return out;
  }
}
