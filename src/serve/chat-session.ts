// --interactive: a multi-turn chat with the chain's head. Lines come in (typed in the TUI or read from stdin), each
// message goes out with the whole history to /v1/chat/completions, and the answer streams out as events.
import { ExternalError } from '../errors.js';
import type { Emit } from '../events/events.js';
import type { GenerationSettings } from './generation-settings.js';
import { streamChat, streamCompletion, type ChatMessage, type CompletionResult } from '../runtime/head-client.js';

/** What one input line asks for. Pure. */
export type ChatLine = { kind: 'send'; text: string } | { kind: 'exit' } | { kind: 'skip' };

export function chatLine(line: string): ChatLine {
  const text = line.trim();
  if (!text) return { kind: 'skip' };
  if (text === '/exit' || text === '/quit') return { kind: 'exit' };
  return { kind: 'send', text };
}

export interface ChatSessionOptions {
  /** The API the answers come from (the launcher's proxy to the head). */
  apiUrl: string;
  /** The user's lines; the session ends when they end (EOF) or at /exit or /quit. */
  lines: AsyncIterable<string>;
  maxTokens: number;
  emit: Emit;
  signal?: AbortSignal;
  /** The chat request (tests may point it elsewhere); default: streamChat. */
  send?: typeof streamChat;
  /** The model's chat template and sampling; without a template each line goes out as a plain completion. */
  generation?: GenerationSettings;
}

/** Runs until the lines end or the user leaves; returns the history it kept. A chain that breaks mid-answer is reported and the turn dropped. */
export async function runChatSession(o: ChatSessionOptions): Promise<{ history: ChatMessage[]; reason: 'exit' | 'eof' }> {
  const send = o.send ?? streamChat;
  const history: ChatMessage[] = [];
  const g = o.generation;
  // A base model has no chat template: llama-server would fall back to ChatML and the model would echo its tokens.
  const plain = g?.chatTemplate === 'absent';
  if (plain) {
    o.emit({
      kind: 'info',
      message: 'this model has no chat template (a base model): each line is sent as a plain completion prompt, without the conversation so far; for a chat, use an instruct model',
    });
  }
  if (g) o.emit({ kind: 'info', message: g.samplingNote });
  const system: ChatMessage[] = g?.system ? [{ role: 'system', content: g.system }] : [];
  o.emit({ kind: 'chat-ready' });
  for await (const line of o.lines) {
    const l = chatLine(line);
    if (l.kind === 'skip') continue;
    if (l.kind === 'exit') {
      o.emit({ kind: 'chat-end', reason: 'exit' });
      return { history, reason: 'exit' };
    }
    o.emit({ kind: 'chat-user', text: l.text });
    const t0 = performance.now();
    let tokens = 0;
    let r: CompletionResult;
    try {
      const onToken = (text: string) => {
        tokens++;
        o.emit({ kind: 'token', text });
      };
      const sampling = g ? { sampling: g.sampling } : {};
      r = plain
        ? await streamCompletion(o.apiUrl, { prompt: l.text, maxTokens: o.maxTokens, ...sampling }, onToken, o.signal)
        : await send(o.apiUrl, { messages: [...system, ...history, { role: 'user', content: l.text }], maxTokens: o.maxTokens, ...sampling }, onToken, o.signal);
    } catch (err) {
      if (o.signal?.aborted || !(err instanceof ExternalError)) throw err;
      o.emit({ kind: 'error', message: err.message, next: ['send the message again'] });
      o.emit({ kind: 'chat-done', tokens, seconds: (performance.now() - t0) / 1000, failed: true });
      continue;
    }
    if (!plain) history.push({ role: 'user', content: l.text }, { role: 'assistant', content: r.text });
    o.emit({ kind: 'chat-done', tokens: r.tokens, seconds: r.seconds });
  }
  o.emit({ kind: 'chat-end', reason: 'eof' });
  return { history, reason: 'eof' };
}
