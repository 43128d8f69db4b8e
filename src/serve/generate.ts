// One prompt to the head, the way `ollama run` sends it: a chat message through the model's chat template where it has
// one (with the model's system prompt), else (or with `raw`) a plain completion; sampling from the generation settings.
import type { GenerationSettings } from './generation-settings.js';
import { streamChat, streamCompletion, type ChatMessage, type CompletionResult } from '../runtime/head-client.js';

export interface PromptOptions {
  maxTokens: number;
  /** Plain completion even where the model has a chat template. */
  raw?: boolean;
  onToken: (text: string) => void;
  signal?: AbortSignal;
}

/** How the prompt goes out, as one line for the user. Pure. */
export function promptMode(g: GenerationSettings, raw = false): { chat: boolean; note: string } {
  const chat = g.chatTemplate === 'present' && !raw;
  const how = chat ? "as a chat message (the model's chat template)" : raw ? 'as a plain completion (raw)' : 'as a plain completion (the model has no chat template)';
  return { chat, note: `prompt sent ${how}; ${g.samplingNote}` };
}

export function generateOnce(apiUrl: string, g: GenerationSettings, prompt: string, o: PromptOptions): Promise<CompletionResult> {
  if (!promptMode(g, o.raw).chat) return streamCompletion(apiUrl, { prompt, maxTokens: o.maxTokens, sampling: g.sampling }, o.onToken, o.signal);
  const messages: ChatMessage[] = [...(g.system ? [{ role: 'system' as const, content: g.system }] : []), { role: 'user', content: prompt }];
  return streamChat(apiUrl, { messages, maxTokens: o.maxTokens, sampling: g.sampling }, o.onToken, o.signal);
}
