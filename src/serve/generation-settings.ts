// How a prompt goes to the head: as a chat message through the model's chat template (as `ollama run` does) or as a
// plain completion, and with which sampling: the Ollama model's own params where it has them, else greedy. Pure.

/** What the GGUF says about a chat template: present, absent (a base model), or unknown (the header was not read). */
export type ChatTemplate = 'present' | 'absent' | 'unknown';

export interface GenerationSettings {
  chatTemplate: ChatTemplate;
  /** The Ollama model's system prompt, sent first in a chat. */
  system?: string;
  /** Request fields for llama-server (/completion and /v1/chat/completions take the same names). */
  sampling: Readonly<Record<string, unknown>>;
  /** One line saying what sampling the answers use. */
  samplingNote: string;
}

// Ollama params that are llama-server sampling fields of the same name and meaning.
const SAMPLING_KEYS = [
  'temperature', 'top_k', 'top_p', 'min_p', 'typical_p', 'repeat_penalty', 'repeat_last_n', 'presence_penalty',
  'frequency_penalty', 'mirostat', 'mirostat_tau', 'mirostat_eta', 'seed', 'stop',
] as const;

export function generationSettings(o: { chatTemplate: ChatTemplate; ollamaParams?: Readonly<Record<string, unknown>>; system?: string }): GenerationSettings {
  const own = Object.fromEntries(SAMPLING_KEYS.flatMap((k) => (o.ollamaParams?.[k] !== undefined ? [[k, o.ollamaParams[k]]] : [])));
  const base = { chatTemplate: o.chatTemplate, system: o.system };
  if (Object.keys(own).length) {
    const shown = Object.entries(own).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ');
    return { ...base, sampling: own, samplingNote: `sampling: the model's own params (${shown}); the rest at llama-server's defaults` };
  }
  return { ...base, sampling: { temperature: 0 }, samplingNote: 'sampling: greedy (temperature 0; the model names no sampling params)' };
}

/** The chat template as found in the GGUF header's `tokenizer.chat_template`. */
export function chatTemplateOf(template: string | undefined): ChatTemplate {
  return template && template.trim() ? 'present' : 'absent';
}
