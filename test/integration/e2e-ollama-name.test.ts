// `up <ollama name>` end to end: a real Ollama store (manifests/<host>/<namespace>/<model>/<tag> + blobs/sha256-<hex>,
// found through OLLAMA_MODELS) holding the real Gemma 3 270M GGUF; `discover` lists it, and `up gemma3-e2e:270m` runs it
// on two ranks of the real patched engine and answers with real text; nothing is left running.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, linkSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { linkPatchedServer, realModelOrSkip, runCli, stagePortBase, wordsIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-e2e-ollama');
let llamaServer = '';

before(async () => {
  llamaServer = await linkPatchedServer(work);
});
after(() => work.remove());

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Writes one blob into the store (a hard link of a file, or its bytes) and returns its manifest layer. */
async function addBlob(store: string, mediaType: string, from: { file: string } | { text: string }) {
  const tmp = join(store, 'blobs', `incoming-${Math.random().toString(16).slice(2)}`);
  if ('file' in from) {
    try {
      linkSync(from.file, tmp);
    } catch {
      copyFileSync(from.file, tmp); // another file system
    }
  } else writeFileSync(tmp, from.text);
  const hex = await sha256(tmp);
  const blob = join(store, 'blobs', `sha256-${hex}`);
  renameSync(tmp, blob);
  return { mediaType, digest: `sha256:${hex}`, size: statSync(blob).size, blob };
}

describe('up with an Ollama model name, real engine', { timeout: 600_000 }, () => {
  it('discover lists the store entry, and `up gemma3-e2e:270m` answers a prompt on two local ranks', async (t) => {
    const real = await realModelOrSkip(t);
    if (!real) return;
    const store = join(work.path, 'ollama-models');
    mkdirSync(join(store, 'blobs'), { recursive: true });
    const model = await addBlob(store, 'application/vnd.ollama.image.model', { file: real });
    const license = await addBlob(store, 'application/vnd.ollama.image.license', { text: 'Gemma Terms of Use (test copy)\n' });
    const config = await addBlob(store, 'application/vnd.docker.container.image.v1+json', { text: '{"model_format":"gguf","model_family":"gemma3"}' });
    const manifestDir = join(store, 'manifests', 'registry.ollama.ai', 'library', 'gemma3-e2e');
    mkdirSync(manifestDir, { recursive: true });
    const layer = ({ mediaType, digest, size }: { mediaType: string; digest: string; size: number }) => ({ mediaType, digest, size });
    writeFileSync(
      join(manifestDir, '270m'),
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: layer(config), layers: [layer(model), layer(license)] }),
    );
    const env = { OLLAMA_MODELS: store };

    const discover = runCli(work, ['discover', '--json'], env);
    assert.equal(await discover.exit, 0, discover.stderr());
    const listed = (JSON.parse(discover.stdout()) as { models: { name: string; path: string; supported: boolean; layers: number }[] }).models;
    const entry = listed.find((e) => e.name === 'gemma3-e2e:270m');
    assert.ok(entry, discover.stdout());
    assert.deepEqual([entry.path, entry.supported, entry.layers], [model.blob, true, 18]);

    const run = runCli(
      work,
      ['up', 'gemma3-e2e:270m', '--nodes', 'local,local', '--llama-server', llamaServer, '--ctx', '1024', '--threads', '1', '--run-dir', work.path,
        '--api-port', String(await getPort()), '--stage-port-base', String(await stagePortBase(2)), '--prompt', 'The three primary colours are', '--max-tokens', '40'],
      env,
    );
    assert.ok(await run.waitFor(/chain ready/, 300_000), run.stderr());
    // Positive control, and proof that the ranks load the store's blob: both carry its path.
    const ranks = work.processes().filter((l) => /^\d+ \S*\/llama-server -m .*--layer-range/.test(l));
    assert.equal(ranks.length, 2, work.processes().join('\n'));
    for (const r of ranks) assert.ok(r.includes(model.blob), `rank does not load the blob: ${r}`);
    assert.equal(await run.exit, 0, run.stderr());
    assert.match(run.stderr(), /generated 40 tokens/);
    assert.ok(wordsIn(run.stdout()).length >= 10, `not real text: ${JSON.stringify(run.stdout())}`);
    assert.deepEqual(await work.survivors(15_000), []);

    // --layers skips planning; the name still resolves to the store's blob.
    const manual = runCli(
      work,
      ['up', 'gemma3-e2e:270m', '--layers', '18', '--nodes', 'local,local', '--llama-server', llamaServer, '--ctx', '1024', '--threads', '1', '--run-dir', work.path,
        '--api-port', String(await getPort()), '--stage-port-base', String(await stagePortBase(2)), '--prompt', 'The three primary colours are', '--max-tokens', '8'],
      env,
    );
    assert.equal(await manual.exit, 0, manual.stderr());
    assert.match(manual.stderr(), /generated 8 tokens/);
    assert.deepEqual(await work.survivors(15_000), []);
  });
});
