// Discovery and name resolution on a store laid out exactly as Ollama lays it out.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { UserError } from '../../src/errors.js';
import { displayName, parseOllamaName } from '../../src/ollama/model-name.js';
import { resolveModel } from '../../src/ollama/resolve.js';
import { candidateRoots } from '../../src/ollama/roots.js';
import { discoverModels } from '../../src/services/discover.js';
import { makeFixture } from '../helpers/fixtures.js';
import { repoRoot } from '../helpers/llama-src.js';

const root = await mkdtemp(join(tmpdir(), 'llama-relay-ollama-'));
after(() => rm(root, { recursive: true, force: true }));

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

async function blob(content: Uint8Array | string): Promise<{ digest: string; size: number }> {
  const hex = sha(content);
  await mkdir(join(root, 'blobs'), { recursive: true });
  await writeFile(join(root, 'blobs', `sha256-${hex}`), content);
  return { digest: `sha256:${hex}`, size: typeof content === 'string' ? Buffer.byteLength(content) : content.length };
}

async function manifest(path: string[], layers: { mediaType: string; digest: string; size: number }[] | string): Promise<void> {
  const p = join(root, 'manifests', ...path);
  await mkdir(dirname(p), { recursive: true });
  const config = await blob('{"model_format":"gguf","model_family":"llama"}');
  const body =
    typeof layers === 'string'
      ? layers
      : JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...config },
          layers,
        });
  await writeFile(p, body);
}

const M = 'application/vnd.ollama.image.';
const llama = await readFile(await makeFixture({ arch: 'llama', layers: 2, embd: 32, heads: 2, headsKv: 1, ff: 64 }));
const qwen3 = await readFile(await makeFixture({ arch: 'qwen3', layers: 3, embd: 32, heads: 2, headsKv: 1, ff: 64, vocab: 'llama-spm' }));
const gemma = await readFile(await makeFixture({ arch: 'gemma3', layers: 2, embd: 32, heads: 2, headsKv: 1, ff: 64 }));
const llamaBlob = await blob(llama);
await manifest(['registry.ollama.ai', 'library', 'tiny', 'latest'], [
  { mediaType: `${M}model`, ...llamaBlob },
  { mediaType: `${M}template`, ...(await blob('{{ .Prompt }}')) },
  { mediaType: `${M}system`, ...(await blob('You are tiny.')) },
  { mediaType: `${M}license`, ...(await blob('MIT')) },
  { mediaType: `${M}params`, ...(await blob('{"stop":["</s>"],"temperature":0.2}')) },
]);
await manifest(['registry.ollama.ai', 'library', 'tiny', '2l'], [{ mediaType: `${M}model`, ...llamaBlob }]);
await manifest(['registry.ollama.ai', 'alice', 'tiny-qwen', 'q8'], [{ mediaType: `${M}model`, ...(await blob(qwen3)) }]);
await manifest(['hf.co', 'bartowski', 'Tiny-GGUF', 'Q4_K_M'], [{ mediaType: `${M}model`, ...(await blob(gemma)) }]);
await manifest(['registry.ollama.ai', 'library', 'ghost', 'latest'], [{ mediaType: `${M}model`, digest: `sha256:${'ab'.repeat(32)}`, size: 123 }]);
await manifest(['registry.ollama.ai', 'library', 'broken', 'latest'], '{"schemaVersion": 2, "layers": [');
await manifest(['registry.ollama.ai', 'library', 'imagegen', 'latest'], [
  { mediaType: `${M}tensor; name=text_encoder/w0; dtype=BF16; shape=[4,4]`, ...(await blob(new Uint8Array(32))) },
  { mediaType: `${M}tensor; name=text_encoder/w1; dtype=BF16; shape=[4,4]`, ...(await blob(new Uint8Array(33))) },
]);
await manifest(['registry.ollama.ai', 'library', 'notgguf', 'latest'], [{ mediaType: `${M}model`, ...(await blob('{"this is":"json"}')) }]);

test('discover lists every model of the store with its status', async () => {
  const r = await discoverModels([root]);
  assert.ok(r.roots.some((x) => x.path === root && x.exists));
  const mine = Object.fromEntries(r.models.filter((m) => m.root === root).map((m) => [m.name, m]));
  assert.deepEqual(Object.keys(mine).sort(), [
    'alice/tiny-qwen:q8',
    'broken:latest',
    'ghost:latest',
    'hf.co/bartowski/Tiny-GGUF:Q4_K_M',
    'imagegen:latest',
    'notgguf:latest',
    'tiny:2l',
    'tiny:latest',
  ]);
  const t = mine['tiny:latest']!;
  assert.deepEqual(
    [t.supported, t.architecture, t.layers, t.contextLength, t.quantization, t.splittable],
    [true, 'llama', 2, 2048, 'F32', true],
  );
  assert.ok(t.size > llama.length);
  assert.deepEqual([mine['alice/tiny-qwen:q8']!.architecture, mine['alice/tiny-qwen:q8']!.layers], ['qwen3', 3]);
  assert.equal(mine['hf.co/bartowski/Tiny-GGUF:Q4_K_M']!.architecture, 'gemma3');
  assert.match(mine['ghost:latest']!.problem!, /model blob .*sha256-abab.* is missing/);
  assert.match(mine['broken:latest']!.problem!, /manifest is not valid JSON/);
  assert.match(mine['imagegen:latest']!.problem!, /not supported: a safetensors-style model \(2 application\/vnd\.ollama\.image\.tensor layers\)/);
  assert.match(mine['notgguf:latest']!.problem!, /sha256-[0-9a-f]{64}: not a GGUF file/);
  for (const bad of ['ghost:latest', 'broken:latest', 'imagegen:latest', 'notgguf:latest']) assert.equal(mine[bad]!.supported, false);
});

test('names resolve to blobs, with side layers', async () => {
  const roots = [root];
  const t = await resolveModel('tiny', roots);
  assert.equal(t.source, 'ollama');
  assert.equal(t.ggufPath, join(root, 'blobs', `sha256-${sha(llama)}`));
  assert.deepEqual(t.params, { stop: ['</s>'], temperature: 0.2 });
  assert.equal(t.system, 'You are tiny.');
  assert.equal(t.template, '{{ .Prompt }}');
  assert.ok(t.ollama?.license);
  assert.equal((await resolveModel('registry.ollama.ai/library/tiny:latest', roots)).ggufPath, t.ggufPath);
  assert.equal((await resolveModel('tiny:2l', roots)).name, 'tiny:2l');
  assert.equal((await resolveModel('alice/tiny-qwen:q8', roots)).name, 'alice/tiny-qwen:q8');
  assert.equal((await resolveModel('hf.co/bartowski/Tiny-GGUF:Q4_K_M', roots)).name, 'hf.co/bartowski/Tiny-GGUF:Q4_K_M');
  await assert.rejects(resolveModel('ghost', roots), (e: unknown) => e instanceof UserError && /missing/.test(e.message) && e.next.some((s) => s.includes('ollama pull ghost:latest')));
  await assert.rejects(resolveModel('broken', roots), (e: unknown) => e instanceof UserError && /not valid JSON/.test(e.message));
  await assert.rejects(resolveModel('nothere:7b', roots), (e: unknown) => e instanceof UserError && e.message.startsWith('model nothere:7b not found in'));
  await assert.rejects(resolveModel('Bad Name!', roots), UserError);
});

test('plain .gguf paths and split sets resolve to the first file', async () => {
  const f = await makeFixture({ arch: 'llama', layers: 2, embd: 32, heads: 2, headsKv: 1, ff: 64 });
  assert.deepEqual(await resolveModel(f, []), { name: f, ggufPath: f, source: 'file' });
  const part2 = join(root, 'm-00002-of-00003.gguf');
  await copyFile(f, join(root, 'm-00001-of-00003.gguf'));
  assert.equal((await resolveModel(part2, [])).ggufPath, join(root, 'm-00001-of-00003.gguf'));
  await assert.rejects(resolveModel(join(root, 'absent.gguf'), []), /no such model file/);
});

test('Ollama name parsing', () => {
  const rows: [string, string | undefined][] = [
    ['llama3', 'registry.ollama.ai/library/llama3:latest'],
    ['llama3:70b-instruct-q4_K_M', 'registry.ollama.ai/library/llama3:70b-instruct-q4_K_M'],
    ['alice/mymodel:v1', 'registry.ollama.ai/alice/mymodel:v1'],
    ['hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M', 'hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M'],
    ['https://hf.co/u/r', 'hf.co/u/r:latest'],
    ['llama3@sha256:abc', 'registry.ollama.ai/library/llama3:latest'],
    ['a/b/c/d', undefined],
    ['bad name', undefined],
    ['x:', undefined],
  ];
  for (const [input, want] of rows) {
    const n = parseOllamaName(input);
    assert.equal(n && `${n.host}/${n.namespace}/${n.model}:${n.tag}`, want, input);
  }
  assert.equal(displayName(parseOllamaName('registry.ollama.ai/library/qwen3:8b')!), 'qwen3:8b');
});

test('store roots: CLI roots, $OLLAMA_MODELS, the user store, the service store', () => {
  assert.deepEqual(candidateRoots(['/x'], { OLLAMA_MODELS: '/srv/models' }, '/home/u'), [
    '/x',
    '/srv/models',
    '/home/u/.ollama/models',
    '/usr/share/ollama/.ollama/models',
  ]);
  assert.deepEqual(candidateRoots([], {}, '/home/u'), ['/home/u/.ollama/models', '/usr/share/ollama/.ollama/models']);
});

test('CLI: discover --json and plan by name', async () => {
  const run = (...args: string[]) => promisify(execFile)('node', [join(repoRoot, 'bin/llama-relay.js'), ...args], { env: { ...process.env, OLLAMA_MODELS: root } });
  const d = JSON.parse((await run('discover', '--json')).stdout) as { models: { name: string }[] };
  assert.ok(d.models.some((m) => m.name === 'alice/tiny-qwen:q8'));
  const human = (await run('discover')).stdout;
  assert.match(human, /^NAME\s+SIZE\s+ARCH\s+LAYERS\s+CONTEXT\s+QUANT\s+SPLITTABLE$/m);
  assert.match(human, /^tiny:latest\s+\S+ \S+\s+llama\s+2\s+2048\s+F32\s+yes$/m);
  assert.match(human, /^ {2}ghost:latest: model blob/m);
  const p = (await run('plan', 'alice/tiny-qwen:q8', '-n', '2')).stdout;
  assert.match(p, /^Node 0: \(embeddings, output\) Layers: 0 - \d, Estimated Memory: ~[\d.]+ MB$/m);
  assert.match(p, /^Node 1: Layers: \d - 2, Estimated Memory: ~[\d.]+ MB$/m);
  const s = await run('shard', 'tiny', '--nodes', 'a=1G,b=1G', '--json');
  assert.equal((JSON.parse(s.stdout) as { plan: { nodes: unknown[] } }).plan.nodes.length, 2);
  await assert.rejects(run('plan', 'tiny', '--nodes', 'a=1M,b=1M'), (e: { code?: number; stderr?: string }) => e.code === 2 && /does not fit/.test(e.stderr ?? ''));
});
