// The local provisioning cache drops slices and digests of model files that no longer exist.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pruneLocalCache } from '../../src/provision/local-files.js';

const root = mkdtempSync('/tmp/lr-cache-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('pruneLocalCache', () => {
  it('keeps entries whose model exists or is unknown, drops the rest', async () => {
    const live = join(root, 'live.gguf');
    writeFileSync(live, 'x');
    mkdirSync(join(root, 'slices'));
    mkdirSync(join(root, 'digests'));
    const slice = (name: string, source?: string) => {
      for (const ext of ['', '.sha256']) writeFileSync(join(root, 'slices', `${name}${ext}`), 'x');
      if (source !== undefined) writeFileSync(join(root, 'slices', `${name}.source`), `${source}\n`);
    };
    slice('a-L0-2-head.gguf', live);
    slice('b-L0-2-head.gguf', join(root, 'deleted.gguf'));
    slice('c-L2-4.gguf');
    writeFileSync(join(root, 'digests', 'live.sha256'), `${'1'.repeat(64)}\n${live}\n`);
    writeFileSync(join(root, 'digests', 'gone.sha256'), `${'2'.repeat(64)}\n${join(root, 'deleted.gguf')}\n`);
    assert.equal(await pruneLocalCache(root), 2);
    assert.deepEqual(readdirSync(join(root, 'slices')).sort(), [
      'a-L0-2-head.gguf', 'a-L0-2-head.gguf.sha256', 'a-L0-2-head.gguf.source', 'c-L2-4.gguf', 'c-L2-4.gguf.sha256',
    ]);
    assert.deepEqual(readdirSync(join(root, 'digests')), ['live.sha256']);
  });
  it('an empty or missing cache is fine', async () => {
    assert.equal(await pruneLocalCache(join(root, 'nothing-here')), 0);
    assert.ok(!existsSync(join(root, 'nothing-here')));
  });
});
