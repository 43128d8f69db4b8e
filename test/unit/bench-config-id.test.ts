// bench: configuration names as data (parse, format, report order), round trip over every shape.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHAIN_VARIANTS, compareConfigNames, formatConfigId, parseConfigId, VARIANT_ORDER } from '../../src/bench/config-id.js';

describe('config ids', () => {
  it('parses every shape and formats it back', () => {
    const table = [
      ['stock', { kind: 'stock' }],
      ['chain-1', { kind: 'chain', ranks: 1 }],
      ['chain-12', { kind: 'chain', ranks: 12 }],
      ['chain-3-nopipe', { kind: 'chain', ranks: 3, variant: 'nopipe' }],
      ['chain-3-noenc', { kind: 'chain', ranks: 3, variant: 'noenc' }],
      ['chain-2-nomb', { kind: 'chain', ranks: 2, variant: 'nomb' }],
      ['chain-2-nogroups', { kind: 'chain', ranks: 2, variant: 'nogroups' }],
      ['rpc-3', { kind: 'rpc', ranks: 3 }],
    ] as const;
    for (const [id, name] of table) {
      assert.deepEqual(parseConfigId(id), name, id);
      assert.equal(formatConfigId(name), id);
    }
  });
  it('refuses what is not a configuration', () => {
    for (const id of ['', 'stock-1', 'chain', 'chain-0', 'chain-03', 'chain-3-', 'chain-3-mb', 'chain-3-nomb-x', 'rpc-3-nomb', 'chain-3-groups', 'rpc-3-nogroups', 'rpc', 'CHAIN-3', 'chain-3-toString', 'chain-3-constructor']) {
      assert.equal(parseConfigId(id), undefined, id);
    }
  });
  it('orders stock, chains by size, variants by size then kind, RPC last', () => {
    const ids = ['rpc-2', 'chain-3-nogroups', 'chain-3-nomb', 'chain-2', 'chain-3-nopipe', 'stock', 'chain-2-nogroups', 'chain-2-nomb', 'chain-1', 'rpc-3', 'chain-3'];
    const sorted = ids.map((id) => parseConfigId(id)!).sort(compareConfigNames).map(formatConfigId);
    assert.deepEqual(sorted, ['stock', 'chain-1', 'chain-2', 'chain-3', 'chain-2-nomb', 'chain-2-nogroups', 'chain-3-nopipe', 'chain-3-nomb', 'chain-3-nogroups', 'rpc-2', 'rpc-3']);
  });
  it('each variant turns exactly one feature off', () => {
    assert.deepEqual(VARIANT_ORDER, ['nopipe', 'noenc', 'nomb', 'nogroups', 'nopoll', 'nobatch']);
    // A switch off, or (slot groups) the head's --stage-groups 1: one group in flight.
    assert.deepEqual(Object.fromEntries(VARIANT_ORDER.map((v) => [v, CHAIN_VARIANTS[v].flags])), {
      nopipe: { pipeline: false },
      noenc: { encrypt: false },
      nomb: { microbatch: false },
      nogroups: { groups: 1 },
      nopoll: { poll: false },
      nobatch: { batchGroupsFrom: 0 },
    });
  });
});
