// Ollama request options (and the model's params layer) → llama-server sampling fields; refusals name the field.
import { OllamaApiError } from './api-error.js';

/** Ollama option → llama-server field, for the options that map one to one. */
const SAMPLING: Record<string, string> = {
  temperature: 'temperature',
  top_k: 'top_k',
  top_p: 'top_p',
  min_p: 'min_p',
  typical_p: 'typical_p',
  seed: 'seed',
  repeat_penalty: 'repeat_penalty',
  repeat_last_n: 'repeat_last_n',
  presence_penalty: 'presence_penalty',
  frequency_penalty: 'frequency_penalty',
  mirostat: 'mirostat',
  mirostat_tau: 'mirostat_tau',
  mirostat_eta: 'mirostat_eta',
  num_keep: 'n_keep',
};

export interface ChainLimits {
  /** Context tokens per request (the head's slot size). */
  slotCtx: number;
  parallel: number;
  modelName: string;
}

const num = (k: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new OllamaApiError(400, `option "${k}" must be a number, got ${JSON.stringify(v)}`);
  return v;
};

/** `options` merged over the model's params → llama-server fields (n_predict, temperature, stop, ...). */
export function samplingFields(options: unknown, params: Record<string, unknown>, limits: ChainLimits): Record<string, unknown> {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw new OllamaApiError(400, '"options" must be an object, e.g. {"temperature": 0}');
  }
  const merged: Record<string, unknown> = { ...params, ...(options as Record<string, unknown> | null | undefined) };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(merged)) {
    if (v === undefined || v === null) continue;
    if (k in SAMPLING) out[SAMPLING[k]!] = num(k, v);
    else if (k === 'num_predict') {
      const n = num(k, v);
      out.n_predict = n < 0 ? -1 : n; // -1 and -2 (fill the context) both: until the model stops or the context ends
    } else if (k === 'stop') {
      const stops = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string')) throw new OllamaApiError(400, 'option "stop" must be a string or a list of strings');
      out.stop = stops;
    } else if (k === 'num_ctx') {
      const n = num(k, v);
      if (n > limits.slotCtx) {
        throw new OllamaApiError(
          400,
          `num_ctx ${n} is more than this chain's context of ${limits.slotCtx} tokens per request; ` +
            `restart the cluster with more: llama-relay up ${limits.modelName} --ctx ${n * limits.parallel} (and the same --nodes)`,
        );
      }
    }
    // Anything else (load-time options, options of newer Ollama versions) is accepted and unused, as Ollama warns and goes on.
  }
  return out;
}

/** Ollama `format`: "json" or a JSON schema → llama-server's json_schema (it compiles the grammar). */
export function formatFields(format: unknown): Record<string, unknown> {
  if (format === undefined || format === null || format === '') return {};
  if (format === 'json') return { json_schema: { type: 'object' } };
  if (typeof format === 'object' && !Array.isArray(format)) return { json_schema: format };
  throw new OllamaApiError(400, `invalid format ${JSON.stringify(format)}: use "json" or a JSON schema object`);
}

export function refuseImages(images: unknown): void {
  if (Array.isArray(images) && images.length > 0) {
    throw new OllamaApiError(400, 'images are not supported: this cluster serves a text-only model (no vision projector is loaded)');
  }
}
