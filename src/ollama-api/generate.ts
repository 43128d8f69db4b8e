// POST /api/generate ⇄ llama-server's /completion: the prompt as Ollama builds it (template, system, context),
// and the answer with Ollama's `context` (the conversation's token ids) and real timings.
import { OllamaApiError } from './api-error.js';
import { renderPrompt } from './go-template.js';
import { formatFields, refuseImages, samplingFields, type ChainLimits } from './options.js';
import type { Body } from './request-body.js';
import type { ServedModel } from './served-model.js';
import { doneReason, ollamaStats, type LlamaTimings } from './timings.js';

/** How to get the prompt text: ready, or by llama-server's /apply-template with the model's own chat template. */
export type PromptPlan = { kind: 'text'; text: string } | { kind: 'chat-template'; messages: { role: string; content: string }[] };

export interface GenerateInput {
  plan: PromptPlan;
  /** Token ids of the conversation so far (the `context` a previous answer returned). */
  context: number[];
  /** An empty prompt only loads the model (Ollama answers done_reason "load"). */
  loadOnly: boolean;
}

export function generateInput(b: Body, served: ServedModel): GenerateInput {
  refuseImages(b.images);
  if (b.prompt !== undefined && typeof b.prompt !== 'string') throw new OllamaApiError(400, '"prompt" must be a string');
  if (typeof b.suffix === 'string' && b.suffix) throw new OllamaApiError(400, '"suffix" (fill-in-the-middle) is not supported by this cluster');
  if (b.context !== undefined && !(Array.isArray(b.context) && b.context.every((t) => Number.isInteger(t) && t >= 0))) {
    throw new OllamaApiError(400, '"context" must be a list of token ids from a previous answer');
  }
  const prompt = (b.prompt as string | undefined) ?? '';
  const context = (b.context as number[] | undefined) ?? [];
  const system = typeof b.system === 'string' ? b.system : served.system;
  if (b.raw === true) return { plan: { kind: 'text', text: prompt }, context, loadOnly: !prompt && !context.length };
  let plan: PromptPlan;
  if (typeof b.template === 'string' && b.template) {
    const text = renderPrompt(b.template, { System: system, Prompt: prompt });
    if (text === undefined) throw new OllamaApiError(400, 'this "template" uses Go template features llama-relay does not render; send the full prompt with "raw": true');
    plan = { kind: 'text', text };
  } else {
    // The Ollama model's own template when it is the simple kind; else the GGUF's chat template, applied by the head.
    const own = served.templateKind === 'go' ? renderPrompt(served.template, { System: system, Prompt: prompt }) : undefined;
    if (own !== undefined) plan = { kind: 'text', text: own };
    else if (served.hasChatTemplate) plan = { kind: 'chat-template', messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }] };
    else plan = { kind: 'text', text: prompt };
  }
  return { plan, context, loadOnly: !prompt };
}

/** The /completion body: context ids, then the prompt text (llama-server takes token ids and text mixed). */
export function generateToLlama(b: Body, text: string, context: readonly number[], served: ServedModel, limits: ChainLimits): Record<string, unknown> {
  return {
    prompt: context.length ? [...context, text] : text,
    stream: b.stream !== false,
    return_tokens: true,
    cache_prompt: true,
    ...samplingFields(b.options, served.params, limits),
    ...formatFields(b.format),
  };
}

interface CompletionFrame {
  content?: string;
  tokens?: number[];
  stop?: boolean;
  stop_type?: string;
  timings?: LlamaTimings;
}

const base = (model: string, now: Date) => ({ model, created_at: now.toISOString() });

/** The closing object of a generation; promptTokens: the prompt's ids (with context), for Ollama's `context`. */
function final(model: string, now: Date, f: CompletionFrame, generated: readonly number[], promptTokens: readonly number[] | undefined, totalMs: number, response = '') {
  return {
    ...base(model, now),
    response,
    done: true,
    done_reason: doneReason(f.stop_type),
    ...(promptTokens ? { context: [...promptTokens, ...generated] } : {}),
    ...ollamaStats(f.timings, totalMs),
  };
}

export function generateResponse(r: CompletionFrame, model: string, promptTokens: readonly number[] | undefined, totalMs: number, now: Date) {
  return final(model, now, r, r.tokens ?? [], promptTokens, totalMs, r.content ?? '');
}

export const loadResponse = (model: string, now: Date, chat: boolean) => ({
  ...base(model, now),
  ...(chat ? { message: { role: 'assistant', content: '' } } : { response: '' }),
  done: true,
  done_reason: 'load',
});

/** llama-server /completion SSE frames → Ollama objects; the final one waits for the prompt's ids (end()). */
export class GenerateStream {
  private readonly generated: number[] = [];
  private last: CompletionFrame = {};

  constructor(private readonly model: string) {}

  push(data: string, now: Date): Record<string, unknown>[] {
    const f = JSON.parse(data) as CompletionFrame & { error?: { message?: string } };
    if (f.error) throw new OllamaApiError(502, `generation failed on the chain: ${f.error.message ?? 'unknown error'}`);
    this.generated.push(...(f.tokens ?? []));
    if (f.stop) {
      this.last = f;
      return f.content ? [{ ...base(this.model, now), response: f.content, done: false }] : [];
    }
    return f.content ? [{ ...base(this.model, now), response: f.content, done: false }] : [];
  }

  get lastTimings(): LlamaTimings | undefined {
    return this.last.timings;
  }

  get stopped(): boolean {
    return this.last.stop === true;
  }

  end(promptTokens: readonly number[] | undefined, totalMs: number, now: Date): Record<string, unknown> {
    return final(this.model, now, this.last, this.generated, promptTokens, totalMs);
  }
}
