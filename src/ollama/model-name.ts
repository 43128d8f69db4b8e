// Ollama model names: [host/][namespace/]model[:tag], defaulting to registry.ollama.ai/library/<model>:latest.

export const DEFAULT_HOST = 'registry.ollama.ai';
export const DEFAULT_NAMESPACE = 'library';
export const DEFAULT_TAG = 'latest';

export interface OllamaName {
  readonly host: string;
  readonly namespace: string;
  readonly model: string;
  readonly tag: string;
}

const PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Parses a full or short name; undefined when it is not a valid Ollama name. */
export function parseOllamaName(input: string): OllamaName | undefined {
  let s = input.trim().replace(/^https?:\/\//, '');
  const at = s.indexOf('@'); // a digest suffix (name@sha256:...) does not change which manifest we read
  if (at >= 0) s = s.slice(0, at);
  let tag = DEFAULT_TAG;
  const slash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  if (colon > slash) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
  }
  const parts = s.split('/');
  if (parts.length > 3 || parts.some((p) => !PART.test(p)) || !TAG.test(tag)) return undefined;
  const [model, namespace = DEFAULT_NAMESPACE, host = DEFAULT_HOST] = [...parts].reverse() as [string, string?, string?];
  return { host, namespace, model, tag };
}

/** The short form Ollama shows: `llama3:8b`, `user/model:tag`, `hf.co/user/repo:Q4_K_M`. */
export function displayName(n: OllamaName): string {
  if (n.host === DEFAULT_HOST) {
    return n.namespace === DEFAULT_NAMESPACE ? `${n.model}:${n.tag}` : `${n.namespace}/${n.model}:${n.tag}`;
  }
  return `${n.host}/${n.namespace}/${n.model}:${n.tag}`;
}

/** Path of the manifest below a models root: manifests/<host>/<namespace>/<model>/<tag>. */
export function manifestRelPath(n: OllamaName): string[] {
  return ['manifests', n.host, n.namespace, n.model, n.tag];
}
