// Prompts of an exact token count, built from a tokenized text, and the logit bias that keeps outputs printable. Pure.
import { BugError } from '../errors.js';

/** Sample text for the prompt; tokenized by the server under test, then repeated to length. */
export const PROMPT_TEXT =
  'The history of computing is a story of machines that grew smaller and faster while the problems they ' +
  'solved grew larger. Early engineers wired programs by hand; later ones wrote compilers, operating ' +
  'systems and networks that let many computers work on a single task. Splitting a large neural network ' +
  'across several machines is the latest chapter of that story, and its cost is measured in bytes moved ' +
  'and milliseconds waited at every boundary between them.';

/**
 * `length` token ids cycling through `base`, rotated by `variant` so that repeats and parallel
 * requests start differently (no prompt-cache reuse even if a server tried).
 */
export function buildPrompt(base: readonly number[], length: number, variant: number): number[] {
  if (base.length === 0) throw new BugError('cannot build a prompt from no tokens');
  const offset = (variant * 7919) % base.length;
  return Array.from({ length }, (_, i) => base[(offset + i) % base.length]!);
}

/** GGUF tokenizer.ggml.token_type value of raw byte tokens (<0x80> …). */
export const TOKEN_TYPE_BYTE = 6;

/**
 * `logit_bias` entries banning raw byte tokens: random-weight models emit them freely, and a lone
 * continuation byte is invalid UTF-8, which the server refuses to serialize. Harmless for trained models.
 */
export function banByteTokens(tokenTypes: readonly number[]): [number, false][] {
  const out: [number, false][] = [];
  tokenTypes.forEach((t, id) => {
    if (t === TOKEN_TYPE_BYTE) out.push([id, false]);
  });
  return out;
}
