// End to end as a user runs it, with the real patched engine and the real Gemma 3 270M model: `up --cluster FILE`
// (one prompt, plain output) and `up --nodes @FILE --server` answering /v1/chat/completions through the launcher's
// proxy token for token as stock llama-server does; the file names this machine and a node behind a real sshd.
import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { startStock, type Server } from '../helpers/engine.js';
import { linkPatchedServer, postJson, realModelOrSkip, runCli, sshConfigIn, stagePortBase, streamChat, wordsIn } from '../helpers/e2e-run.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-e2e-cluster');
let sshd: TestSshd;
let stock: Server | undefined;
let llamaServer = '';
let sshConfig = '';

before(async () => {
  sshd = await startSshd();
  sshConfig = sshConfigIn(work, sshd);
  // Through the work dir, so every rank's command line carries its path.
  llamaServer = await linkPatchedServer(work);
});
after(async () => {
  await stock?.stop();
  work.remove();
  await sshd?.stop();
});

/** The real model, linked into the work dir. */
async function model(t: Parameters<typeof realModelOrSkip>[0]): Promise<string | undefined> {
  const real = await realModelOrSkip(t);
  if (!real) return undefined;
  const p = join(work.path, 'gemma3-270m.gguf');
  try {
    symlinkSync(real, p);
  } catch {
    /* linked by an earlier test */
  }
  return p;
}

const common = async () => [
  '--llama-server', llamaServer, '--ctx', '1024', '--threads', '1', '-F', sshConfig, '--run-dir', work.path,
  '--node-cache', join(work.path, 'node-cache'), '--stage-port-base', String(await stagePortBase(3)), '--ready-timeout', '300',
];

describe('up with nodes from a cluster file, real engine', { timeout: 900_000 }, () => {
  it('up --cluster FILE --prompt: rank 0 here, rank 1 over ssh, real text on stdout, then nothing left', async (t) => {
    const m = await model(t);
    if (!m) return;
    const file = join(work.path, 'lab.cluster');
    writeFileSync(file, `# the head is this machine\nlocal        mem=4G\n\n${sshd.alias}    # rank 1, through the loopback sshd\n`);
    const run = runCli(work, ['up', m, '--cluster', file, '--prompt', 'The history of the Roman Empire', '--max-tokens', '40', '--api-port', String(await getPort()), ...(await common())]);
    assert.ok(await run.waitFor(/chain ready/, 300_000), run.stderr());
    const running = work.processes();
    assert.equal(running.filter((l) => /^\d+ \S*\/llama-server -m .*--layer-range/.test(l)).length, 2, `positive control: both ranks found while running:\n${running.join('\n')}`);
    assert.equal(await run.exit, 0, run.stderr());
    assert.match(run.stderr(), /rank 0 \(head\) on local: layers 0:(\d+)/);
    assert.match(run.stderr(), new RegExp(`rank 1 \\(worker\\) on ${sshd.alias}: layers \\d+:18`));
    assert.match(run.stderr(), /generated 40 tokens/);
    // stdout carries only the answer: real words from the model, none of the launcher's status lines.
    assert.doesNotMatch(run.stdout(), /chain ready|rank \d/);
    assert.ok(wordsIn(run.stdout()).length >= 10, `not real text: ${JSON.stringify(run.stdout())}`);
    assert.deepEqual(await work.survivors(15_000), []);
  });

  it('up --nodes @FILE --server (head over ssh): /v1/chat/completions through the proxy equals stock, streamed and not', async (t) => {
    const m = await model(t);
    if (!m) return;
    const file = join(work.path, 'remote-head.cluster');
    writeFileSync(file, `${sshd.alias}\nlocal\n`);
    const apiPort = await getPort();
    const run = runCli(work, ['up', m, '--nodes', `@${file}`, '--server', '--api-port', String(apiPort), ...(await common())]);
    try {
      assert.ok(await run.waitFor(/API listening on/, 300_000), run.stderr());
      assert.match(run.stderr(), new RegExp(`rank 0 \\(head\\) on ${sshd.alias}`));
      const running = work.processes();
      assert.equal(running.filter((l) => /^\d+ \S*\/llama-server -m .*--layer-range/.test(l)).length, 2, `positive control:\n${running.join('\n')}`);

      stock = await startStock(m);
      // The proxy serves one model under one name (the file's stem) and refuses others.
      const models = (await (await fetch(`http://127.0.0.1:${apiPort}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data[0]?.id, basename(m, '.gguf'));
      const body = {
        model: models.data[0]!.id,
        messages: [{ role: 'user', content: 'Name three rivers of Europe.' }],
        temperature: 0,
        max_tokens: 32,
        seed: 7,
      };
      const want = await postJson(`http://127.0.0.1:${stock.port}/v1/chat/completions`, body);
      const got = await postJson(`http://127.0.0.1:${apiPort}/v1/chat/completions`, body);
      const wantText = want.choices[0].message.content as string;
      assert.ok(wantText.length > 0, 'stock answered nothing');
      assert.equal(got.choices[0].message.content, wantText);
      assert.equal(got.usage.completion_tokens, want.usage.completion_tokens);
      assert.equal(got.usage.prompt_tokens, want.usage.prompt_tokens);
      assert.equal(await streamChat(`http://127.0.0.1:${apiPort}/v1/chat/completions`, body), wantText);
      await stock.stop();
      stock = undefined;
    } finally {
      run.child.kill('SIGTERM');
    }
    assert.equal(await run.exit, 0, run.stderr());
    assert.deepEqual(await work.survivors(15_000), []);
  });
});
