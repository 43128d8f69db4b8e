// Shared checks on an Ollama request body: a JSON object that names the served model.
import { OllamaApiError } from './api-error.js';
import { namesModel, type ServedModel } from './served-model.js';

export type Body = Record<string, unknown>;

export function parseBody(text: string): Body {
  let v: unknown;
  try {
    v = JSON.parse(text || '{}');
  } catch (err) {
    throw new OllamaApiError(400, `the request body is not valid JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OllamaApiError(400, 'the request body must be a JSON object');
  return v as Body;
}

/** Ollama's `model` (older clients send `name`); another name is a 404 that names the one served. */
export function requireModel(b: Body, served: ServedModel): void {
  const m = b.model ?? b.name;
  if (typeof m !== 'string' || !m) throw new OllamaApiError(400, `"model" is required; this cluster serves "${served.name}"`);
  if (!namesModel(m, served)) throw new OllamaApiError(404, `model "${m}" not found: this cluster serves one model, "${served.name}"`);
}

export const wantsStream = (b: Body): boolean => b.stream !== false;
