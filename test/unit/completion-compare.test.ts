// The exactness comparison every engine test relies on (test/helpers/engine.ts): it fails on each kind of
// difference, including the ones an earlier version let through (an empty top list, the chosen token's logprob).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSameCompletion, type Completion } from '../helpers/engine.js';

const top = (base: number) => [1, 2, 3, 4, 5].map((id, k) => ({ id, logprob: base - k }));
const completion = (): Completion => ({
  content: 'ab',
  tokens: [],
  probs: [
    { id: 1, logprob: -0.5, top: top(-0.5) },
    { id: 1, logprob: -0.25, top: top(-0.25) },
  ],
});

test('identical completions pass and report their largest difference', () => {
  const b = completion();
  b.probs[1]!.top[3]!.logprob += 5e-5;
  assert.equal(assertSameCompletion(completion(), b, 1e-4, 'same').toFixed(6), '0.000050');
});

test('each kind of difference fails, naming it', () => {
  const cases: [string, (c: Completion) => void, RegExp][] = [
    ['an empty top list on one side', (c) => (c.probs[1]!.top = []), /token 1 has 5 vs 0 top logprobs, want 5 each/],
    ['a shorter top list on one side', (c) => c.probs[0]!.top.pop(), /token 0 has 5 vs 4 top logprobs/],
    ['the chosen token\'s own logprob', (c) => (c.probs[1]!.logprob -= 0.01), /token 1 \(1\) logprob differs: -0\.25 vs -0\.26/],
    ['a top logprob', (c) => (c.probs[0]!.top[4]!.logprob += 0.01), /token 0 top-4 logprob differs/],
    ['a top candidate', (c) => (c.probs[0]!.top[2] = { id: 9, logprob: -2.4 }), /token 0 top-2 differs: 3\/-2\.5 vs 9\/-2\.4/],
    ['a token id', (c) => (c.probs[1]!.id = 7), /token 1 differs: 1 vs 7/],
    ['a missing token', (c) => c.probs.pop(), /token 1 differs: 1 vs undefined/],
  ];
  for (const [what, change, message] of cases) {
    const b = completion();
    change(b);
    assert.throws(() => assertSameCompletion(completion(), b, 1e-4, what), { name: 'Error', message }, what);
  }
  assert.throws(() => assertSameCompletion({ content: '', tokens: [], probs: [] }, completion(), 1e-4, 'none'), { message: 'none: no tokens generated' });
});

test('near-tied candidates may swap places', () => {
  const a = completion();
  const b = completion();
  a.probs[0]!.top[2]!.logprob = a.probs[0]!.top[3]!.logprob = -3;
  b.probs[0]!.top[2]! = { id: 4, logprob: -3 };
  b.probs[0]!.top[3]! = { id: 3, logprob: -3 };
  assertSameCompletion(a, b, 1e-4, 'tie');
});
