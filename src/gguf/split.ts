// Split GGUF sets (`name-00001-of-00003.gguf`, written by llama-gguf-split): naming and consistency checks.
import { GgufFormatError } from './errors.js';
import { GgufMetadata } from './metadata.js';
import type { GgufHeader } from './types.js';

const SPLIT_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

export interface SplitName {
  readonly prefix: string;
  /** 1-based, as in the file name. */
  readonly no: number;
  readonly count: number;
}

export function parseSplitName(path: string): SplitName | undefined {
  const m = SPLIT_RE.exec(path);
  if (!m) return undefined;
  const no = Number(m[2]);
  const count = Number(m[3]);
  if (no < 1 || count < 1 || no > count) return undefined;
  return { prefix: m[1]!, no, count };
}

/** llama_split_path: "%s-%05d-of-%05d.gguf" with a 1-based part number. */
export function splitPath(prefix: string, no: number, count: number): string {
  return `${prefix}-${String(no).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`;
}

export function splitPaths(path: string): string[] {
  const s = parseSplitName(path);
  if (!s) return [path];
  return Array.from({ length: s.count }, (_, i) => splitPath(s.prefix, i + 1, s.count));
}

/** Checks the split.* keys of each part against its position; throws GgufFormatError naming the bad part. */
export function checkSplitSet(parts: readonly GgufHeader[]): void {
  const count = parts.length;
  let tensors = 0;
  const names = new Set<string>();
  for (const [i, h] of parts.entries()) {
    const md = GgufMetadata.of(h);
    const no = md.number('split.no');
    const c = md.number('split.count');
    if (count === 1 && c === undefined) return;
    if (c !== count) throw new GgufFormatError(h.file, `split.count is ${c ?? 'missing'}, but the set has ${count} files`);
    if (no !== i) throw new GgufFormatError(h.file, `split.no is ${no ?? 'missing'}, expected ${i} for part ${i + 1} of ${count}`);
    for (const t of h.tensors) {
      if (names.has(t.name)) throw new GgufFormatError(h.file, `tensor "${t.name}" also appears in an earlier part of the split set`);
      names.add(t.name);
    }
    tensors += h.tensors.length;
  }
  const first = parts[0];
  const declared = first && GgufMetadata.of(first).number('split.tensors.count');
  if (first && declared !== undefined && declared !== tensors) {
    throw new GgufFormatError(first.file, `split.tensors.count is ${declared}, but the parts hold ${tensors} tensors`);
  }
}
