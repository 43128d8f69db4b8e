// Ollama manifests (Docker distribution v2 JSON) and the layers that matter to us.
import { BugError } from '../errors.js';
import { join } from 'node:path';

export const MEDIA = {
  model: 'application/vnd.ollama.image.model',
  params: 'application/vnd.ollama.image.params',
  template: 'application/vnd.ollama.image.template',
  system: 'application/vnd.ollama.image.system',
  license: 'application/vnd.ollama.image.license',
  projector: 'application/vnd.ollama.image.projector',
  adapter: 'application/vnd.ollama.image.adapter',
  tensor: 'application/vnd.ollama.image.tensor',
} as const;

export interface ManifestLayer {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export type ParsedManifest = { ok: true; layers: ManifestLayer[] } | { ok: false; problem: string };

const DIGEST = /^sha256[:-]([0-9a-f]{64})$/;

export function parseManifest(text: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `manifest is not valid JSON (${(err as Error).message})` };
  }
  const layers = (json as { layers?: unknown })?.layers;
  if (!Array.isArray(layers)) return { ok: false, problem: 'manifest has no "layers" list' };
  const out: ManifestLayer[] = [];
  for (const [i, l] of layers.entries()) {
    const { mediaType, digest, size } = (l ?? {}) as Record<string, unknown>;
    if (typeof mediaType !== 'string' || typeof digest !== 'string' || !DIGEST.test(digest)) {
      return { ok: false, problem: `manifest layer ${i} has no valid mediaType/digest` };
    }
    out.push({ mediaType, digest, size: typeof size === 'number' ? size : 0 });
  }
  return { ok: true, layers: out };
}

/** Media types may carry parameters (`application/vnd.ollama.image.tensor; name=...`). */
export function baseMediaType(t: string): string {
  return t.split(';')[0]!.trim();
}

/** blobs/sha256-<hex> below a models root. */
export function blobPath(root: string, digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new BugError(`invalid digest ${digest}`);
  return join(root, 'blobs', `sha256-${m[1]}`);
}
