// A GGUF model as one unit: a single file or all parts of a split set, with tensors indexed by part.
import { access } from 'node:fs/promises';
import { FileByteReader } from './file-reader.js';
import { GgufFormatError, GgufReadError } from './errors.js';
import { GgufMetadata } from './metadata.js';
import { parseGguf } from './parser.js';
import { checkSplitSet, parseSplitName, splitPaths } from './split.js';
import type { GgufHeader, GgufTensorInfo } from './types.js';

export interface ModelTensor extends GgufTensorInfo {
  /** Index into GgufModel.parts. */
  readonly part: number;
}

export interface GgufModel {
  /** The first file of the set (what llama.cpp's -m takes). */
  readonly path: string;
  readonly parts: readonly GgufHeader[];
  readonly metadata: GgufMetadata;
  readonly tensors: readonly ModelTensor[];
  /** Sum of all parts' file sizes. */
  readonly fileBytes: number;
  readonly tensorBytes: number;
}

/** Parse one file's header (no tensor data is read). */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const r = await FileByteReader.open(path);
  try {
    return await parseGguf(r);
  } finally {
    await r.close();
  }
}

/** Load a model from a plain .gguf or any file of a split set (all parts are read and checked). */
export async function loadGgufModel(path: string): Promise<GgufModel> {
  const paths = splitPaths(path);
  for (const p of paths) {
    try {
      await access(p);
    } catch {
      const s = parseSplitName(path);
      throw new GgufReadError(p, `missing part${s ? ` of the ${s.count}-file split set starting at ${paths[0]}` : ''}`);
    }
  }
  const parts: GgufHeader[] = [];
  for (const p of paths) parts.push(await readGgufHeader(p));
  const first = parts[0]!;
  const md = GgufMetadata.of(first);
  const declared = md.number('split.count');
  if (paths.length === 1 && declared !== undefined && declared > 1) {
    throw new GgufFormatError(path, `is part of a ${declared}-file split set, but its name does not end in -0000N-of-0000M.gguf`);
  }
  checkSplitSet(parts);
  const tensors: ModelTensor[] = parts.flatMap((h, part) => h.tensors.map((t) => ({ ...t, part })));
  return {
    path: paths[0]!,
    parts,
    metadata: md,
    tensors,
    fileBytes: parts.reduce((a, h) => a + h.fileSize, 0),
    tensorBytes: tensors.reduce((a, t) => a + t.byteSize, 0),
  };
}
