// `llama-relay node` by hand, one command per rank as the README shows, with the real patched engine and the real
// Gemma 3 270M model: the head's API answers /v1/chat/completions and /completion exactly as stock llama-server
// does, and SIGTERM to each command leaves nothing running.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { startStock, type Server } from '../helpers/engine.js';
import { linkPatchedServer, postJson, realModelOrSkip, runCli, streamChat, wordsIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-e2e-node');
let stock: Server | undefined;
let llamaServer = '';

before(async () => {
  llamaServer = await linkPatchedServer(work);
});
after(async () => {
  await stock?.stop();
  work.remove();
});

describe('llama-relay node, one command per rank, real engine', { timeout: 600_000 }, () => {
  it('two ranks started by hand serve the chat API exactly as stock, and stop on SIGTERM', async (t) => {
    const real = await realModelOrSkip(t);
    if (!real) return;
    const model = join(work.path, 'gemma3-270m.gguf');
    symlinkSync(real, model);
    const secretFile = join(work.path, 'secret');
    writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const nodes = `127.0.0.1:${await getPort()},127.0.0.1:${await getPort()}`;
    const apiPort = await getPort();
    const common = ['node', '--model', model, '--world-size', '2', '--nodes', nodes, '--secret-file', secretFile, '--llama-server', llamaServer, '--ctx', '1024', '--threads', '1', '--run-dir', work.path];
    const worker = runCli(work, [...common, '--rank', '1']);
    const head = runCli(work, [...common, '--rank', '0', '--server', '--api-port', String(apiPort)]);
    try {
      assert.ok(await head.waitFor(/API listening on/, 300_000), `head:\n${head.stderr()}\nworker:\n${worker.stderr()}`);
      const running = work.processes();
      assert.equal(running.filter((l) => /^\d+ \S*\/llama-server -m .*--layer-range/.test(l)).length, 2, `positive control:\n${running.join('\n')}`);

      stock = await startStock(model);
      const chat = { model: 'gemma3', messages: [{ role: 'user', content: 'Write one sentence about the sea.' }], temperature: 0, max_tokens: 32 };
      const want = await postJson(`http://127.0.0.1:${stock.port}/v1/chat/completions`, chat);
      const wantText = want.choices[0].message.content as string;
      assert.ok(wantText.length > 0);
      const got = await postJson(`http://127.0.0.1:${apiPort}/v1/chat/completions`, chat);
      assert.equal(got.choices[0].message.content, wantText);
      assert.equal(await streamChat(`http://127.0.0.1:${apiPort}/v1/chat/completions`, chat), wantText);

      // Plain completion of a base-model prompt: real text, and the same tokens as stock.
      const plain = { prompt: 'The tallest mountain in the world is', n_predict: 24, temperature: 0 };
      const wantPlain = await postJson(`http://127.0.0.1:${stock.port}/completion`, plain);
      const gotPlain = await postJson(`http://127.0.0.1:${apiPort}/completion`, plain);
      assert.equal(gotPlain.content, wantPlain.content);
      assert.ok(wordsIn(gotPlain.content).length >= 4, `not real text: ${JSON.stringify(gotPlain.content)}`);
      await stock.stop();
      stock = undefined;
    } finally {
      head.child.kill('SIGTERM');
      worker.child.kill('SIGTERM');
    }
    assert.notEqual(await head.exit, null, 'the head command exited by itself after SIGTERM');
    assert.notEqual(await worker.exit, null);
    assert.deepEqual(await work.survivors(15_000), []);
  });
});
