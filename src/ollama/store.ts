// Reads an Ollama models root: every manifest under manifests/<host>/<namespace>/<model>/<tag> and its blobs.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { baseMediaType, blobPath, MEDIA, parseManifest, type ManifestLayer } from './manifest.js';
import { displayName, manifestRelPath, type OllamaName } from './model-name.js';

export type EntryStatus = 'ok' | 'broken-manifest' | 'missing-blob' | 'not-gguf';

export interface OllamaEntry {
  /** Short display name, e.g. `llama3:8b`. */
  readonly name: string;
  readonly fullName: OllamaName;
  readonly root: string;
  readonly manifestPath: string;
  readonly status: EntryStatus;
  /** Why status is not ok. */
  readonly problem?: string;
  /** The GGUF blob (present when status is ok). */
  readonly modelPath?: string;
  /** Sum of the manifest's layer sizes. */
  readonly size: number;
  /** Blob paths of the side layers, when present. */
  readonly params?: string;
  readonly template?: string;
  readonly system?: string;
  readonly license?: string;
  readonly projector?: string;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function dirs(p: string): Promise<string[]> {
  try {
    return (await readdir(p, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return [];
  }
}

export async function readEntry(root: string, fullName: OllamaName): Promise<OllamaEntry> {
  const manifestPath = join(root, ...manifestRelPath(fullName));
  const base = { name: displayName(fullName), fullName, root, manifestPath };
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    return { ...base, status: 'broken-manifest', problem: `cannot read manifest: ${(err as Error).message}`, size: 0 };
  }
  const parsed = parseManifest(text);
  if (!parsed.ok) return { ...base, status: 'broken-manifest', problem: parsed.problem, size: 0 };
  const layers = parsed.layers;
  const size = layers.reduce((a, l) => a + l.size, 0);
  const find = (t: string): ManifestLayer | undefined => layers.find((l) => baseMediaType(l.mediaType) === t);
  const side: { params?: string; template?: string; system?: string; license?: string; projector?: string } = {};
  for (const k of ['params', 'template', 'system', 'license', 'projector'] as const) {
    const l = find(MEDIA[k]);
    if (l) side[k] = blobPath(root, l.digest);
  }
  const model = find(MEDIA.model);
  if (!model) {
    const tensors = layers.filter((l) => baseMediaType(l.mediaType) === MEDIA.tensor).length;
    const problem = tensors
      ? `not supported: a safetensors-style model (${tensors} ${MEDIA.tensor} layers); llama-relay runs GGUF models only`
      : `not supported: the manifest has no ${MEDIA.model} layer`;
    return { ...base, ...side, status: 'not-gguf', problem, size };
  }
  const modelPath = blobPath(root, model.digest);
  if (!(await isFile(modelPath))) {
    return { ...base, ...side, status: 'missing-blob', problem: `model blob ${modelPath} is missing (interrupted pull or pruned store?)`, size };
  }
  return { ...base, ...side, status: 'ok', modelPath, size };
}

/** Every model in one root, sorted by display name. A root without manifests/ yields nothing. */
export async function scanStore(root: string): Promise<OllamaEntry[]> {
  const out: OllamaEntry[] = [];
  const m = join(root, 'manifests');
  for (const host of await dirs(m)) {
    for (const namespace of await dirs(join(m, host))) {
      for (const model of await dirs(join(m, host, namespace))) {
        let tags: string[] = [];
        try {
          tags = (await readdir(join(m, host, namespace, model), { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
        } catch {
          continue;
        }
        for (const tag of tags.sort()) out.push(await readEntry(root, { host, namespace, model, tag }));
      }
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function rootExists(root: string): Promise<boolean> {
  try {
    return (await stat(join(root, 'manifests'))).isDirectory();
  } catch {
    return false;
  }
}
