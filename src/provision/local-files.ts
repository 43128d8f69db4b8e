// Local side of provisioning: file digests, the source tree as a tar stream, and rank slices cached on this machine.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import type { GgufModel } from '../gguf/model.js';
import { writeRankSlice, type SliceSpec } from '../gguf/slice.js';

/** sha256 (hex) of a file, or of its first `bytes` bytes. */
export async function sha256File(path: string, bytes?: number): Promise<string> {
  const h = createHash('sha256');
  if (bytes === 0) return h.digest('hex');
  for await (const chunk of createReadStream(path, bytes === undefined ? {} : { end: bytes - 1 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** What is not shipped with a source tree: git history and local build trees. */
export const skipInSourceTar = (rel: string): boolean => /^(\.\/)?(\.git|build[^/]*)(\/|$)/.test(rel);

/** About the size of sourceTar(dir): a 512-byte header per entry, contents padded to 512 bytes. */
export async function treeBytes(dir: string, rel = '.'): Promise<number> {
  let total = 512;
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = `${rel}/${e.name}`;
    if (skipInSourceTar(r)) continue;
    if (e.isDirectory()) total += await treeBytes(dir, r);
    else if (e.isFile()) total += 512 + Math.ceil((await stat(join(dir, r))).size / 512) * 512;
    else total += 512;
  }
  return total;
}

/** The source tree as a tar stream (no .git, no build dirs). */
export function sourceTar(dir: string): Readable {
  const pack = tar.c({ cwd: dir, portable: true, filter: (p) => !skipInSourceTar(p) }, ['.']);
  return Readable.from(pack as unknown as AsyncIterable<Buffer>);
}

export interface LocalSlice {
  path: string;
  bytes: number;
  digest: string;
}

/** One rank's slice in the local cache, written once (temp name, then renamed) with its digest beside it. */
export async function localSlice(model: GgufModel, spec: SliceSpec, dir: string, name: string): Promise<LocalSlice> {
  const path = join(dir, name);
  const digestFile = `${path}.sha256`;
  try {
    const [s, d] = await Promise.all([stat(path), readFile(digestFile, 'utf8')]);
    if (/^[0-9a-f]{64}$/.test(d.trim())) return { path, bytes: s.size, digest: d.trim() };
  } catch {
    /* not cached yet */
  }
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeRankSlice(model, spec, tmp);
    const digest = await sha256File(tmp);
    await rename(tmp, path);
    await writeFile(digestFile, `${digest}\n`);
    await writeFile(`${path}.source`, `${model.parts[0]?.file ?? ''}\n`);
    return { path, bytes: (await stat(path)).size, digest };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Cache name of a slice: the model's digest (or identity) and the layer range. */
export function sliceName(modelId: string, spec: SliceSpec): string {
  return `${modelId.slice(0, 16)}-L${spec.layerStart}-${spec.layerEnd}${spec.head ? '-head' : ''}.gguf`;
}

/**
 * Drops cached slices and digests whose model file is gone (a deleted model, a test's temporary file), so the
 * cache does not grow with every one-off model. Entries without a recorded source are kept.
 */
export async function pruneLocalCache(root: string): Promise<number> {
  let removed = 0;
  const gone = async (p: string) => !!p && !(await stat(p).then(() => true, () => false));
  const slices = join(root, 'slices');
  for (const f of await readdir(slices).catch(() => [] as string[])) {
    if (!f.endsWith('.gguf.source')) continue;
    const base = join(slices, f.slice(0, -'.source'.length));
    if (await gone((await readFile(join(slices, f), 'utf8')).trim())) {
      await Promise.all([base, `${base}.sha256`, `${base}.source`].map((x) => rm(x, { force: true })));
      removed++;
    }
  }
  const digests = join(root, 'digests');
  for (const f of await readdir(digests).catch(() => [] as string[])) {
    const source = (await readFile(join(digests, f), 'utf8').catch(() => '')).split('\n')[1]?.trim() ?? '';
    if (await gone(source)) {
      await rm(join(digests, f), { force: true });
      removed++;
    }
  }
  return removed;
}
