// This machine's side of provisioning: the engine as built here (source key, local build, patched source tree), the
// local cache root, and model identities (digest, or path + size + mtime).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Emit } from '../events/events.js';
import type { GgufModel } from '../gguf/model.js';
import { LocalTransport } from '../ssh/local-transport.js';
import { sha256File, treeBytes } from './local-files.js';
import { parseProbe, probeArgv } from './node-probe.js';
import { platformOf } from './platform.js';
import type { EngineInput } from './provision-plan.js';

export const localCacheRoot = (): string => process.env.LLAMA_RELAY_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'llama-relay');

/** Ollama blobs are named by their digest: no need to hash them again. */
export function digestFromBlobName(path: string): string | undefined {
  return /sha256-([0-9a-f]{64})$/.exec(path)?.[1];
}

/**
 * The model's sha256, to find it in the nodes' Ollama stores: from an Ollama blob's name, else hashed once and kept in
 * the local cache by file identity. Split models have no single blob (undefined).
 */
export async function modelDigest(path: string, gguf: GgufModel, cacheRoot: string, emit: Emit): Promise<string | undefined> {
  const named = digestFromBlobName(path);
  if (named || gguf.parts.length > 1) return named;
  const file = join(cacheRoot, 'digests', `${identity(path).slice(0, 32)}.sha256`);
  try {
    const d = readFileSync(file, 'utf8').split('\n')[0]!.trim();
    if (/^[0-9a-f]{64}$/.test(d)) return d;
  } catch {
    /* not hashed yet */
  }
  emit({ kind: 'info', message: `hashing ${basename(path)} once (sha256), to find it in the nodes' Ollama stores` });
  const d = await sha256File(path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${d}\n${path}\n`); // the path lets pruneLocalCache drop it once the file is gone
  return d;
}

/** A stable id for a plain GGUF file (path, size, mtime) when its digest is not known. */
export function identity(path: string): string {
  const s = statSync(path);
  return createHash('sha256').update(`${path}\0${s.size}\0${s.mtimeMs}`).digest('hex');
}

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The key of the pinned, patched source: same inputs as scripts/build-llama.sh's patch key (pin file + patches). */
export function engineSourceKey(): { key: string; commit: string } {
  const pin = readFileSync(join(root, 'third_party/llama.cpp.pin'));
  const patches = readdirSync(join(root, 'patches')).filter((f) => /^\d.*\.patch$/.test(f)).sort();
  const h = createHash('sha256').update(pin);
  for (const p of patches) h.update(readFileSync(join(root, 'patches', p)));
  const commit = /^COMMIT=([0-9a-f]{40})/m.exec(pin.toString())?.[1] ?? '';
  return { key: h.digest('hex').slice(0, 16), commit };
}

/** The engine as built here: the local patched binary (its platform probed like a node's) and the patched source tree. */
export async function localEngine(localBinary: string, opts: { cacheDir?: string } = {}): Promise<EngineInput> {
  const { key, commit } = engineSourceKey();
  const probe = parseProbe((await new LocalTransport().exec(probeArgv('/tmp', []))).stdout);
  // scripts/build-llama.sh's patched tree: patched/<commit>-<key>/src/llama.cpp-<commit>, marked once fully patched.
  const dir = join(opts.cacheDir ?? localCacheRoot(), 'patched', `${commit.slice(0, 12)}-${key}`, 'src', `llama.cpp-${commit.slice(0, 12)}`);
  let source: EngineInput['source'];
  try {
    if (readFileSync(join(dir, '.llama-relay-state'), 'utf8').trim() === `patched-${key}`) source = { dir, bytes: await treeBytes(dir), commit: commit.slice(0, 7) };
  } catch {
    source = undefined;
  }
  return {
    sourceKey: key,
    localBinary: { path: localBinary, bytes: statSync(localBinary).size, platform: platformOf(probe) },
    source,
    // A CPU build tree of llama-server with the patches is ~300 MB of objects and archives.
    buildOverheadBytes: 400e6,
  };
}
