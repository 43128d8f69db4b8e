// Which ancestors the launcher watches: the pass-through chain (npx, npm exec, sh -c) above it, never a plain parent.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPassThrough, watchedAncestors } from '../../src/process/parent-watch.js';

const tree: Record<number, { ppid: number; argv: string[] }> = {
  500: { ppid: 400, argv: ['sh', '-c', 'llama-relay up --server'] },
  400: { ppid: 300, argv: ['npm', 'exec', 'llama-relay', 'up'] },
  300: { ppid: 1, argv: ['-bash'] },
  600: { ppid: 300, argv: ['node', '/usr/lib/node_modules/npm/bin/npx-cli.js', 'llama-relay'] },
};
const info = (pid: number) => tree[pid];

test('npx: the sh -c wrapper and npm exec are watched, the user shell above them is not', () => {
  assert.deepEqual(watchedAncestors(500, info), [500, 400]);
  assert.deepEqual(watchedAncestors(600, info), [600]);
});

test('started from a shell (or nohup, a test runner): nothing is watched', () => {
  assert.deepEqual(watchedAncestors(300, info), []);
  assert.deepEqual(watchedAncestors(999, info), []);
});

test('isPassThrough', () => {
  assert.equal(isPassThrough(['/bin/sh', '-c', 'x']), true);
  assert.equal(isPassThrough(['bash', 'script.sh']), false);
  assert.equal(isPassThrough(['npm exec llama-relay']), true);
  assert.equal(isPassThrough(['/usr/bin/node', '/usr/lib/node_modules/npm/bin/npm-cli.js', 'exec']), true);
  assert.equal(isPassThrough(['node', '--test', 'x.test.ts']), false);
});
