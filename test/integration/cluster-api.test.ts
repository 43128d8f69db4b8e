// The programmatic API as a program uses it: startCluster() on real ranks (the default model on two local ranks),
// tokens streamed to a callback, the event stream, the API URL, and stop() leaving nothing behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster, type RelayEvent } from '../../src/index.js';
import { defaultModelOrSkip } from '../helpers/default-model.js';
import { survivorsAfter } from '../helpers/processes.js';

test('startCluster: real ranks, tokens streamed to onToken, then stop() ends every rank', { timeout: 900_000 }, async (t) => {
  const model = await defaultModelOrSkip(t);
  if (!model) return;
  const events: RelayEvent[] = [];
  const cluster = await startCluster({ nodes: 'local,local', onEvent: (e) => events.push(e) });
  try {
    assert.deepEqual(events.filter((e) => e.kind === 'rank-planned').map((e) => e.kind === 'rank-planned' && e.rank), [0, 1]);
    assert.ok(events.some((e) => e.kind === 'node-phase' && e.rank === 1 && e.phase === 'ready'));
    assert.equal(cluster.generation.chatTemplate, 'present');
    const health = await fetch(`${cluster.apiUrl}/health`);
    assert.equal(health.status, 200);

    const later: RelayEvent[] = [];
    const unsubscribe = cluster.events.subscribe((e) => later.push(e));
    const pieces: string[] = [];
    const r = await cluster.generate('Name three colors.', { onToken: (p) => pieces.push(p), maxTokens: 32 });
    unsubscribe();
    assert.ok(pieces.length > 1, `streamed in pieces: ${JSON.stringify(pieces)}`);
    assert.equal(pieces.join(''), r.text);
    assert.equal(r.tokens, pieces.length);
    assert.match(r.text, /red|blue|green|yellow|purple|orange|black|white/i);

    // A generation can be cut short with its own signal; the cluster keeps serving.
    const ac = new AbortController();
    const cut = cluster.generate('Write a long story about the sea.', { maxTokens: 200, signal: ac.signal, onToken: () => ac.abort() });
    await assert.rejects(cut);
    const again = await cluster.generate('Name one color.', { maxTokens: 8 });
    assert.ok(again.tokens > 0);
    assert.equal(later.filter((e) => e.kind === 'rank-exited').length, 0);
  } finally {
    await cluster.stop();
  }
  assert.equal(await cluster.closed, undefined);
  assert.ok(events.some((e) => e.kind === 'node-phase' && e.phase === 'stopped'));
  assert.deepEqual(await survivorsAfter(model, 10_000), []);
});
