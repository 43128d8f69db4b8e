// --stage-poll (patch 0010): a rank busy-polls its links around the time its next frame is due instead of sleeping
// through the wait. It changes when a rank looks at its sockets, never what it computes: the chain's greedy tokens and
// top-5 logprobs stay those of stock llama-server answering each request alone, at one stream and with several
// requests in flight (micro-batches and slot groups on, so stock alone is the reference, as in engine-microbatch).
// The head's /health shows the window and how many frames it found while polling (`poll_caught`), which proves the
// spin ran; with 0 none is.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertSameCompletion, binDirs, chainStats, complete, completeMany, startChain, startStock, type Completion } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { PROMPTS } from '../helpers/scenarios.js';

interface PollStats {
  tokens: number;
  poll_us: number;
  poll_frames: number;
  poll_caught: number;
}

const pollStats = (port: number) => chainStats<PollStats>(port);

const N_PREDICT = 32;
const prompts = PROMPTS.slice(0, 4).map((p, i) => p.repeat(1 + (i % 2)) + ` (${i})`);
const flags = ['-np', '4'];

describe('--stage-poll: exact, and the head finds its frames while polling', () => {
  let model = '';
  let alone: Completion[] = [];

  before(async () => {
    await binDirs();
    model = await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256, seed: 1010 });
    const stock = await startStock(model, flags);
    try {
      alone = [];
      for (const prompt of prompts) alone.push(await complete(stock.port, { prompt, n_predict: N_PREDICT }));
    } finally {
      await stock.stop();
    }
  });

  test('a window wider than any wait (100 ms) on every rank: one stream and 4 in flight exact; frames caught while polling', async () => {
    const chain = await startChain(model, [[0, 2], [2, 4], [4, 6]], [...flags, '--stage-poll', '100000']);
    try {
      assert.equal((await pollStats(chain.port)).poll_us, 100000);
      const one = await complete(chain.port, { prompt: prompts[0]!, n_predict: N_PREDICT, cache_prompt: false });
      assertSameCompletion(alone[0]!, one, 1e-4, 'one stream');
      const s = await pollStats(chain.port);
      // Every wait of the head for a result is shorter than the window, so the frame arrives while it polls.
      assert.ok(s.poll_frames >= N_PREDICT, `only ${s.poll_frames} frames waited for`);
      assert.ok(s.poll_caught >= s.poll_frames / 2, `${s.poll_caught} of ${s.poll_frames} frames found while polling`);
      const got = await completeMany(chain.port, prompts, { n_predict: N_PREDICT });
      alone.forEach((w, i) => assertSameCompletion(w, got[i]!, 1e-4, `4 in flight, request ${i}`));
      process.stderr.write(`link-poll: ${s.poll_caught} of ${s.poll_frames} frames caught while polling at one stream\n`);
    } finally {
      await chain.stop();
    }
  });

  test('the default window (10000 us, as up gives it) on the head only: exact', async () => {
    const chain = await startChain(model, [[0, 3], [3, 6]], flags, { perRankArgs: (i) => (i === 0 ? ['--stage-poll', '10000'] : []) });
    try {
      const got = await completeMany(chain.port, prompts, { n_predict: N_PREDICT });
      alone.forEach((w, i) => assertSameCompletion(w, got[i]!, 1e-4, `request ${i}`));
      assert.equal((await pollStats(chain.port)).poll_us, 10000);
    } finally {
      await chain.stop();
    }
  });

  test('0 (the engine default): no frame is found while polling', async () => {
    const chain = await startChain(model, [[0, 3], [3, 6]], flags);
    try {
      const one = await complete(chain.port, { prompt: prompts[1]!, n_predict: N_PREDICT, cache_prompt: false });
      assertSameCompletion(alone[1]!, one, 1e-4, 'one stream');
      const s = await pollStats(chain.port);
      assert.deepEqual([s.poll_us, s.poll_caught], [0, 0]);
      assert.ok(s.poll_frames >= N_PREDICT, `only ${s.poll_frames} frames waited for`);
    } finally {
      await chain.stop();
    }
  });
});
