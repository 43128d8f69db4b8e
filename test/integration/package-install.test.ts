// The published package works without its devDependencies: packed, installed into an empty prefix with --omit=dev,
// the installed `llama-relay` runs --help, discover, the fixture writer and plan, with no tsx and no TypeScript.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { vocabPath } from '../helpers/llama-src.js';
import { packedInstall } from '../helpers/packed-install.js';

const run = promisify(execFile);
const work = mkdtempSync('/tmp/lr-pkg-');
after(() => rmSync(work, { recursive: true, force: true }));

describe('the packed package, installed with --omit=dev', { timeout: 600_000 }, () => {
  let bin = '';
  let prefix = '';
  before(async () => {
    ({ bin, prefix } = await packedInstall());
  });
  // Run from an unrelated directory, with only the prefix's bin and node on PATH.
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(bin, args, { cwd: work, env: { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH}`, ...env }, maxBuffer: 16 << 20 });

  it('holds compiled JavaScript and no development dependency', () => {
    const pkg = join(prefix, 'lib', 'node_modules', 'llama-relay');
    assert.ok(existsSync(join(pkg, 'dist', 'cli', 'main.js')));
    assert.ok(existsSync(join(pkg, 'scripts', 'build-llama.sh')), 'the engine build script ships');
    assert.ok(existsSync(join(pkg, 'third_party', 'llama.cpp.pin')));
    assert.equal(existsSync(join(pkg, 'src')), false, 'no TypeScript sources');
    for (const dev of ['tsx', 'typescript']) {
      assert.equal(existsSync(join(pkg, 'node_modules', dev)), false, `${dev} was installed`);
      assert.equal(existsSync(join(prefix, 'lib', 'node_modules', dev)), false, `${dev} was installed`);
    }
  });

  it('--help lists the commands', async () => {
    const { stdout } = await cli(['--help']);
    for (const c of ['up', 'discover', 'plan', 'bench', 'node']) assert.match(stdout, new RegExp(`llama-relay ${c}`), stdout);
  });

  it('discover reads an Ollama store', async () => {
    const models = join(work, 'ollama-models');
    mkdirSync(join(models, 'manifests'), { recursive: true });
    mkdirSync(join(models, 'blobs'), { recursive: true });
    const { stdout } = await cli(['discover', '--json'], { OLLAMA_MODELS: models, HOME: work });
    const r = JSON.parse(stdout) as { models: unknown[] };
    assert.deepEqual(r.models, []);
  });

  it('plan splits a generated fixture GGUF', async () => {
    const model = join(work, 'fixture.gguf');
    await cli(['fixture', '--arch', 'llama', '--layers', '6', '--vocab', vocabPath('llama-spm'), '-o', model]);
    const { stdout } = await cli(['plan', model, '-n', '2', '--json']);
    const plan = JSON.parse(stdout) as { plan: { nodes: { layerStart: number; layerEnd: number }[] } };
    const [a, b] = plan.plan.nodes;
    assert.equal(plan.plan.nodes.length, 2, stdout);
    // Two contiguous ranges over all six layers (the head's share is smaller: it also holds the embeddings and output).
    assert.ok(a && b && a.layerStart === 0 && a.layerEnd === b.layerStart && b.layerEnd === 6 && a.layerEnd > 0, stdout);
  });
});
