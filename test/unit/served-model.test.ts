// The served model's one name and description, from an Ollama store laid out as Ollama lays it out, or a plain file.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeServedModel } from '../../src/services/served-model.js';
import { makeFixture } from '../helpers/fixtures.js';

const root = await mkdtemp(join(tmpdir(), 'llama-relay-served-'));
after(() => rm(root, { recursive: true, force: true }));

async function blob(content: Uint8Array | string) {
  const hex = createHash('sha256').update(content).digest('hex');
  await mkdir(join(root, 'blobs'), { recursive: true });
  await writeFile(join(root, 'blobs', `sha256-${hex}`), content);
  return { digest: `sha256:${hex}`, size: typeof content === 'string' ? Buffer.byteLength(content) : content.length };
}

test('an Ollama model is served under its Ollama name, with its params, system and template', async () => {
  const fixture = await makeFixture({ arch: 'llama', layers: 2, embd: 32, heads: 2, headsKv: 1, ff: 64 });
  const gguf = await blob(await readFile(fixture));
  const M = 'application/vnd.ollama.image.';
  const dir = join(root, 'manifests', 'registry.ollama.ai', 'library', 'tiny');
  await mkdir(dir, { recursive: true });
  const layers = [
    { mediaType: `${M}model`, ...gguf },
    { mediaType: `${M}template`, ...(await blob('{{ if .System }}<s>{{ .System }}</s>{{ end }}{{ .Prompt }}')) },
    { mediaType: `${M}system`, ...(await blob('You are tiny.')) },
    { mediaType: `${M}params`, ...(await blob('{"stop":["</s>"],"temperature":0.2}')) },
  ];
  await writeFile(join(dir, 'latest'), JSON.stringify({ schemaVersion: 2, layers }));
  process.env.OLLAMA_MODELS = root;
  const m = await describeServedModel('tiny', { ctx: 2048, parallel: 2 });
  assert.equal(m.name, 'tiny:latest');
  assert.equal(m.digest, gguf.digest.slice(7));
  assert.deepEqual(m.params, { stop: ['</s>'], temperature: 0.2 });
  assert.equal(m.system, 'You are tiny.');
  assert.equal(m.templateKind, 'go');
  assert.equal(m.details.family, 'llama');
  assert.equal(m.modelInfo['general.architecture'], 'llama');

  const file = await describeServedModel(fixture, { ctx: 2048, parallel: 1 });
  assert.equal(file.name, fixture.split('/').at(-1)!.replace(/\.gguf$/, ''));
  assert.equal(file.templateKind, 'none');
  assert.equal(file.size, gguf.size);
});
