// Turns what the user typed (a .gguf path, a split part, or an Ollama name) into a GGUF path.
import { readFile, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { UserError } from '../errors.js';
import { parseSplitName, splitPath } from '../gguf/split.js';
import { displayName, manifestRelPath, parseOllamaName } from './model-name.js';
import { readEntry, rootExists, type OllamaEntry } from './store.js';

export interface ResolvedModel {
  readonly name: string;
  /** The GGUF to load (first file of a split set). */
  readonly ggufPath: string;
  readonly source: 'file' | 'ollama';
  readonly ollama?: OllamaEntry;
  /** Ollama's params layer (JSON), when present. */
  readonly params?: Record<string, unknown>;
  readonly system?: string;
  readonly template?: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A model argument that names a file (possibly only on remote nodes), not an Ollama model. */
export function looksLikeModelPath(input: string): boolean {
  return input.endsWith('.gguf') || /^[./~]/.test(input);
}

export async function resolveModel(input: string, roots: readonly string[]): Promise<ResolvedModel> {
  if (looksLikeModelPath(input) || (await exists(input))) {
    let p = resolvePath(input);
    const s = parseSplitName(p);
    if (s) p = splitPath(s.prefix, 1, s.count);
    if (!(await exists(p))) throw new UserError(`no such model file: ${p}`, ['check the path', 'run `llama-relay discover` to list Ollama models']);
    return { name: p, ggufPath: p, source: 'file' };
  }
  const name = parseOllamaName(input);
  if (!name) throw new UserError(`"${input}" is neither a .gguf file nor a valid Ollama model name`);
  const searched: string[] = [];
  for (const root of roots) {
    if (!(await rootExists(root))) continue;
    searched.push(root);
    if (!(await exists(join(root, ...manifestRelPath(name))))) continue;
    const e = await readEntry(root, name);
    if (e.status !== 'ok' || !e.modelPath) {
      throw new UserError(`${e.name} (${e.manifestPath}): ${e.problem}`, e.status === 'missing-blob' ? [`run \`ollama pull ${e.name}\``] : []);
    }
    const text = async (p?: string) => (p ? readFile(p, 'utf8').catch(() => undefined) : undefined);
    let params: Record<string, unknown> | undefined;
    const pj = await text(e.params);
    if (pj) {
      try {
        params = JSON.parse(pj) as Record<string, unknown>;
      } catch {
        params = undefined;
      }
    }
    const out: ResolvedModel = { name: e.name, ggufPath: e.modelPath, source: 'ollama', ollama: e };
    const system = await text(e.system);
    const template = await text(e.template);
    return { ...out, params, system, template };
  }
  throw new UserError(`model ${displayName(name)} not found in ${searched.length ? searched.join(', ') : 'any Ollama store (none exist)'}`, [
    'run `llama-relay discover` to list models',
    `run \`ollama pull ${displayName(name)}\``,
    'or pass a .gguf path',
  ]);
}
