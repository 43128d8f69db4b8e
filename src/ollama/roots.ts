// Where Ollama keeps models: $OLLAMA_MODELS, the user's ~/.ollama/models, the Linux service install, plus CLI roots.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function candidateRoots(extra: readonly string[] = [], env: NodeJS.ProcessEnv = process.env, home = homedir()): string[] {
  const roots = [
    ...extra,
    ...(env.OLLAMA_MODELS ? [env.OLLAMA_MODELS] : []),
    join(home, '.ollama', 'models'),
    '/usr/share/ollama/.ollama/models',
  ].map((r) => resolve(r));
  return [...new Set(roots)];
}
