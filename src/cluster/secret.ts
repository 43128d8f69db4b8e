// A fresh secret per launch; it travels to ranks on the wrapper's stdin, never in argv.
import { randomBytes } from 'node:crypto';

export const generateSecret = (): string => randomBytes(32).toString('hex');
