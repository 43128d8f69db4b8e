// makeFixture(): random-weight GGUF models for tests, cached by their parameters so each is written once.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { FixtureArch } from '../../src/gguf/fixture/archs.js';
import { writeFixtureModel, type FixtureParams } from '../../src/gguf/fixture/fixture-model.js';
import { vocabPath } from './llama-src.js';

export interface FixtureOptions {
  arch: FixtureArch;
  layers?: number;
  embd?: number;
  heads?: number;
  headsKv?: number;
  ff?: number;
  ctx?: number;
  headDim?: number;
  tied?: boolean;
  experts?: number;
  expertsUsed?: number;
  expertFf?: number;
  slidingWindow?: number;
  swaPattern?: number;
  seed?: number;
  type?: 'f32' | 'f16';
  /** A short vocab name from llama.cpp's models/ (e.g. "llama-spm", "qwen2") or a path to a GGUF. */
  vocab?: string;
}

/** Bump when the fixture writer changes the bytes it produces, to invalidate caches. */
const FIXTURE_FORMAT = 1;

const DEFAULT_VOCAB: Record<FixtureArch, string> = {
  llama: 'llama-spm',
  qwen2: 'qwen2',
  qwen3: 'qwen2',
  qwen3moe: 'qwen2',
  gemma3: 'llama-spm',
};

export function fixtureCacheDir(): string {
  return process.env.LLAMA_RELAY_FIXTURE_DIR ?? join(homedir(), '.cache/llama-relay/fixtures');
}

export function fixtureParams(o: FixtureOptions): FixtureParams {
  const v = o.vocab ?? DEFAULT_VOCAB[o.arch];
  const given = Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as FixtureOptions;
  return {
    layers: 4,
    embd: 64,
    heads: 4,
    headsKv: 2,
    ff: 128,
    ctx: 2048,
    seed: 1,
    type: 'f32',
    ...given,
    vocab: v.includes('/') ? v : vocabPath(v),
  };
}

/** Path of a GGUF fixture with these parameters, writing it on first use. Safe to call concurrently. */
export async function makeFixture(o: FixtureOptions): Promise<string> {
  const p = fixtureParams(o);
  const st = statSync(p.vocab);
  const key = createHash('sha256')
    .update(JSON.stringify({ FIXTURE_FORMAT, ...p, vocabSize: st.size, vocabMtime: st.mtimeMs }))
    .digest('hex')
    .slice(0, 12);
  const dir = fixtureCacheDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${p.arch}-${p.layers}L-${p.embd}E-${p.type}-s${p.seed}-${key}.gguf`);
  if (!existsSync(path)) await writeFixtureModel(path, p); // written to a temp name, then renamed
  return path;
}
