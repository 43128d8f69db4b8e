// chooseBatchGroups: when `up` batches the head's slot groups (--stage-batch-groups) without being told, from the
// batch gain `plan --probe` measured on every node of the chain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BATCH_GAIN_MIN, BATCH_ROWS, chooseBatchGroups } from '../../src/plan/batch-groups.js';

describe('chooseBatchGroups', () => {
  it('batches from BATCH_ROWS requests per rank where every node measured a gain of at least BATCH_GAIN_MIN', () => {
    assert.equal(BATCH_ROWS, 4);
    assert.deepEqual(chooseBatchGroups({ ranks: 2, parallel: 8, gains: [1.28, 1.3] }), { from: 8, why: "from 8 requests: a batch of 4 rows decodes at 1.28x one row's rate" });
    assert.equal(chooseBatchGroups({ ranks: 3, parallel: 16, gains: [1.2, 1.2, 1.2] }).from, 12);
    assert.equal(chooseBatchGroups({ ranks: 2, parallel: 8, gains: [BATCH_GAIN_MIN, 2] }).from, 8, 'the bar itself passes');
  });
  it('stays off where one node is slower to batch, unmeasured, or the slots are too few; says why', () => {
    assert.deepEqual(chooseBatchGroups({ ranks: 2, parallel: 8, gains: [1.3, 1.1] }), { from: 0, why: "off: a batch of 4 rows decodes at 1.10x one row's rate, under 1.15x" });
    assert.match(chooseBatchGroups({ ranks: 2, parallel: 8, gains: [1.3, undefined] }).why, /^off: batching not measured on these nodes \(plan --probe measures it\)$/);
    assert.equal(chooseBatchGroups({ ranks: 2, parallel: 8 }).from, 0);
    assert.match(chooseBatchGroups({ ranks: 2, parallel: 4, gains: [1.3, 1.3] }).why, /4 slot\(s\) never hold the 8 requests of one batched group per rank \(--parallel 8\)$/);
    assert.equal(chooseBatchGroups({ ranks: 1, parallel: 8, gains: [2] }).from, 0);
  });
  it('--batch-groups always wins, 0 included', () => {
    assert.deepEqual(chooseBatchGroups({ ranks: 2, parallel: 8, gains: [1.0, 1.0], asked: 6 }), { from: 6, why: '--batch-groups 6' });
    assert.deepEqual(chooseBatchGroups({ ranks: 2, parallel: 8, gains: [2, 2], asked: 0 }), { from: 0, why: 'off (--batch-groups 0)' });
  });
});
