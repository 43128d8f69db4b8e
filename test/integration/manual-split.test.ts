// Manual placement end to end with the real patched engine and the real Gemma 3 270M (18 layers): `up --split` runs
// each rank on exactly the layers given and the chain answers token for token as stock llama-server does; a cluster
// file's layers= places them the same way; a bad split is refused before anything starts.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { startStock, type Server } from '../helpers/engine.js';
import { linkPatchedServer, postJson, realModelOrSkip, runCli, stagePortBase, wordsIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const work = makeWorkDir('lr-manual-split');
let stock: Server | undefined;
let llamaServer = '';

before(async () => {
  // Through the work dir, so every rank's command line carries its path.
  llamaServer = await linkPatchedServer(work);
});
after(async () => {
  await stock?.stop();
  work.remove();
});

const common = async () => [
  '--llama-server', llamaServer, '--ctx', '1024', '--threads', '1', '--run-dir', work.path,
  '--stage-port-base', String(await stagePortBase(3)), '--ready-timeout', '300',
];
const rankRanges = () =>
  work
    .processes()
    .flatMap((l) => (/^\d+ \S*\/llama-server -m .*--layer-range (\d+:\d+)/.exec(l) ?? []).slice(1))
    .sort();

describe('manual split, real engine', { timeout: 900_000 }, () => {
  it('up --split 0:11,11:18 --server: the ranks hold exactly those layers and the chain answers as stock does', async (t) => {
    const m = await realModelOrSkip(t);
    if (!m) return;
    const apiPort = await getPort();
    const run = runCli(work, ['up', m, '--nodes', 'local,local', '--split', '0:11,11:18', '--server', '--api-port', String(apiPort), ...(await common())]);
    try {
      assert.ok(await run.waitFor(/API listening on/, 300_000), run.stderr());
      assert.match(run.stderr(), /placement: as given \(manual split\) \(0:11,11:18\)/);
      assert.match(run.stderr(), /rank 0 \(head\) on local: layers 0:11/);
      assert.match(run.stderr(), /rank 1 \(worker\) on local: layers 11:18/);
      assert.deepEqual(rankRanges(), ['0:11', '11:18'], `the ranks' own command lines:\n${work.processes().join('\n')}`);

      stock = await startStock(m);
      for (const prompt of ['The history of the Roman Empire', 'def fibonacci(n):']) {
        const body = { prompt, n_predict: 48, temperature: 0, seed: 7, cache_prompt: false };
        const want = await postJson(`http://127.0.0.1:${stock.port}/completion`, body);
        const got = await postJson(`http://127.0.0.1:${apiPort}/completion`, body);
        assert.ok(wordsIn(want.content as string).length >= 5, `stock answered no text: ${JSON.stringify(want.content)}`);
        assert.equal(got.content, want.content, prompt);
        assert.equal(got.tokens_predicted, want.tokens_predicted);
      }
      await stock.stop();
      stock = undefined;
    } finally {
      run.child.kill('SIGTERM');
    }
    assert.equal(await run.exit, 0, run.stderr());
    assert.deepEqual(await work.survivors(15_000), []);
  });

  it('a cluster file with layers= per line places the layers so; --layers-per-node the same', async (t) => {
    const m = await realModelOrSkip(t);
    if (!m) return;
    const file = join(work.path, 'split.cluster');
    writeFileSync(file, 'local layers=5\nlocal layers=13\n');
    const run = runCli(work, ['up', m, '--cluster', file, '--prompt', 'The sea is', '--raw', '--max-tokens', '8', '--api-port', String(await getPort()), ...(await common())]);
    assert.equal(await run.exit, 0, run.stderr());
    assert.match(run.stderr(), /placement: as given \(manual split\) \(0:5,5:18\)/);
    assert.match(run.stderr(), /rank 1 \(worker\) on local: layers 5:18/);
    assert.deepEqual(await work.survivors(15_000), []);
  });

  it('a bad split is refused with what is wrong, before any rank starts', async (t) => {
    const m = await realModelOrSkip(t);
    if (!m) return;
    const rows: [string[], RegExp][] = [
      [['--split', '0:9,10:18'], /error: --split leaves a gap: layers 9-9 between node 0 \(0:9\) and node 1 \(10:18\) have no node/],
      [['--split', '0:9,9:20'], /error: --split: node 1's range 9:20 goes past the model's 18 layers/],
      [['--layers-per-node', '4,14,1'], /error: --layers-per-node gives 3 counts but there are 2 nodes/],
      [['--layers-per-node', '0,18'], /error: --layers-per-node: node 0 gets zero layers/],
    ];
    for (const [flags, message] of rows) {
      const run = runCli(work, ['up', m, '--nodes', 'local,local', ...flags, '--prompt', 'x', '--api-port', String(await getPort()), ...(await common())]);
      assert.equal(await run.exit, 2, run.stderr());
      assert.match(run.stderr(), message);
      assert.doesNotMatch(run.stderr(), /rank \d \((head|worker)\)/);
      assert.deepEqual(work.processes().filter((l) => /llama-server/.test(l)), []);
    }
  });
});
