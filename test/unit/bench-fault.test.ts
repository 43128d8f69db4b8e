// The pure parts of bench --fault: which arrival is the token after the resume, the summary over trials, the table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigResult, FaultTrial } from '../../src/bench/bench-result.js';
import { resumedAt, summarizeFaults } from '../../src/bench/fault-trial.js';
import { resumeTable } from '../../src/bench/report-table.js';

const arrivals = (ats: number[]) => ({ arrivals: ats.map((at, i) => ({ at, tokens: i + 1 })) });

test('resumedAt: the arrival that ends the longest wait after the kill, not a token already on its way', () => {
  // killed at 100; token 3 was decoded before the kill and arrives at 105; the resume brings token 4 at 2500
  assert.equal(resumedAt(arrivals([50, 90, 105, 2500, 2530, 2560]), 100), 2500);
  // the first arrival after the kill is the resumed one when nothing was in flight
  assert.equal(resumedAt(arrivals([50, 90, 1800, 1830]), 100), 1800);
  assert.equal(resumedAt(arrivals([50, 90]), 100), undefined);
});

const trial = (pauseMs: number, completed = true): FaultTrial => ({
  rank: 1, faultAtToken: 20, expectedTokens: 48, tokens: completed ? 48 : Number.NaN, completed,
  pauseMs, restartMs: pauseMs / 4, rejoinMs: pauseMs / 2, ...(completed ? {} : { error: 'rank 1 lost' }),
});

test('summarizeFaults: medians and max over the trials that resumed; failed ones counted, their NaNs left out', () => {
  const s = summarizeFaults([trial(2000), trial(3000), trial(2400), trial(Number.NaN, false)]);
  assert.equal(s.completed, 3);
  assert.deepEqual(s.pauseMs, { median: 2400, min: 2000, max: 3000, n: 3 });
  assert.deepEqual(s.restartMs, { median: 600, min: 500, max: 750, n: 3 });
  assert.equal(s.rejoinMs.max, 1500);
});

test('resumeTable: one row per chain with figures, the pause and its parts', () => {
  const c = { id: 'chain-3', resume: summarizeFaults([trial(2000), trial(3000)]) } as unknown as ConfigResult;
  const other = { id: 'chain-2' } as unknown as ConfigResult;
  const text = resumeTable([other, c]);
  assert.match(text, /^chain-3\s+rank 1 at token 20\s+2\s+2\/2\s+2500\s+3000\s+625\s+750\s+1250\s+1500$/m);
  assert.doesNotMatch(text, /^chain-2/m);
});
