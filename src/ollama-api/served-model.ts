// The one model a chain serves, as every API names and describes it (pure: built from what `up` already resolved).
import { displayName, parseOllamaName } from '../ollama/model-name.js';

export interface ModelDetails {
  parent_model: string;
  format: 'gguf';
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
}

export interface ServedModel {
  /** The Ollama name when the model came from the Ollama store, else the file's stem. */
  name: string;
  /** Bytes of the model file(s). */
  size: number;
  /** Hex sha256: the Ollama blob's digest, else the file's identity (path, size, mtime), never hashed at start-up. */
  digest: string;
  modifiedAt: string;
  details: ModelDetails;
  /** GGUF metadata scalars (arrays and the chat template left out), as Ollama's /api/show `model_info`. */
  modelInfo: Record<string, string | number | boolean>;
  /** The Ollama model's params layer (stop words, sampling defaults), applied under each request's own options. */
  params: Record<string, unknown>;
  /** The Ollama model's template (Go template text), else the GGUF's chat template (Jinja), else "". */
  template: string;
  templateKind: 'go' | 'jinja' | 'none';
  /** The GGUF carries a chat template, which the head applies (/v1/chat/completions, /apply-template). */
  hasChatTemplate: boolean;
  system: string;
  license: string;
  /** Tokens of context the chain was started with (llama-server -c; per slot without --kv-unified: this / parallel). */
  ctx: number;
  parallel: number;
  ggufPath: string;
}

/** `up`'s model input → the served name: the Ollama display name, or the file's stem without a split suffix. */
export function servedModelName(m: { source: 'file' | 'ollama'; name: string; ggufPath: string }): string {
  if (m.source === 'ollama') return m.name;
  const base = m.ggufPath.split('/').at(-1) ?? m.ggufPath;
  return base.replace(/\.gguf$/i, '').replace(/-\d{5}-of-\d{5}$/, '');
}

/** Ollama compares names with `:latest` implied and without case; so do we (on both APIs). */
export function normalizeModelName(n: string): string {
  const parsed = parseOllamaName(n);
  return (parsed ? displayName(parsed) : n.trim()).toLowerCase();
}

export function namesModel(requested: string, served: ServedModel): boolean {
  return normalizeModelName(requested) === normalizeModelName(served.name);
}

/** "7.2B", "135M": Ollama's parameter_size style. */
export function parameterSize(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  if (count >= 1e6) return `${Math.round(count / 1e6)}M`;
  return String(count);
}
