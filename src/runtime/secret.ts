// A fresh secret per launch; it travels to ranks on the wrapper's stdin, never in argv.
import { randomBytes } from 'node:crypto';

export const generateSecret = (): string => randomBytes(32).toString('hex');

/** At least this much secret for hand-made secrets (`node --secret-file`). */
export const MIN_SECRET_BITS = 128;

/**
 * Bits a secret can hold at most, judged by its characters: 4 per hex digit, else 6 per character (base64
 * or text). A bound, not a measure: it only catches secrets too short to hold 128 bits in any encoding.
 */
export function secretBits(s: string): number {
  return (/^[0-9a-fA-F]+$/.test(s) ? 4 : 6) * s.length;
}
