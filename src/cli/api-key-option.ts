// --api-key / --api-key-file / LLAMA_RELAY_API_KEY / --no-api-key → the key the API requires (or none, on purpose).
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';

export interface ApiKeyArgs {
  /** A string, or false for --no-api-key (yargs' negation of --api-key). */
  'api-key'?: string | false;
  'api-key-file'?: string;
}

export function apiKeyFromArgs(a: ApiKeyArgs, env: NodeJS.ProcessEnv = process.env): { apiKey?: string; allowNoApiKey: boolean } {
  const noKey = a['api-key'] === false;
  const given = [typeof a['api-key'] === 'string' ? '--api-key' : '', a['api-key-file'] ? '--api-key-file' : ''].filter(Boolean);
  if (noKey && given.length) throw new UserError(`--no-api-key contradicts ${given.join(' and ')}`, ['keep one of them']);
  if (given.length > 1) throw new UserError('give the key once: --api-key or --api-key-file', []);
  if (noKey) return { allowNoApiKey: true };
  let key: string | undefined;
  if (a['api-key-file']) {
    const f = a['api-key-file'];
    try {
      key = readFileSync(f, 'utf8').trim();
    } catch (err) {
      throw new UserError(`cannot read the API key file ${f}: ${(err as Error).message}`, ['write the key into it: openssl rand -hex 32 > FILE; chmod 600 FILE']);
    }
    if (!key) throw new UserError(`the API key file ${f} is empty`, ['write the key into it: openssl rand -hex 32 > FILE']);
  } else if (typeof a['api-key'] === 'string') {
    key = a['api-key'].trim();
    if (!key) throw new UserError('--api-key is empty', ['give a key, or use --api-key-file FILE']);
  } else if (env.LLAMA_RELAY_API_KEY) {
    key = env.LLAMA_RELAY_API_KEY.trim();
  }
  return { apiKey: key, allowNoApiKey: false };
}
