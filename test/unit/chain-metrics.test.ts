import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { apiKeyFromArgs } from '../../src/cli/api-key-option.js';
import { bindRefusal } from '../../src/serve/api-guard.js';
import { ChainMetrics } from '../../src/events/chain-metrics.js';
import { UserError } from '../../src/errors.js';

describe('chain metrics', () => {
  it('folds the event stream into Prometheus text', () => {
    const m = new ChainMetrics();
    m.onEvent({ kind: 'rank-planned', rank: 0, node: 'local', layers: [0, 4], role: 'head' });
    m.onEvent({ kind: 'rank-planned', rank: 1, node: 'gpu"1', layers: [4, 8], role: 'worker' });
    m.onEvent({ kind: 'node-phase', rank: 1, node: 'gpu"1', phase: 'ready' });
    m.onEvent({ kind: 'node-phase', rank: 0, node: 'local', phase: 'ready' });
    m.onEvent({ kind: 'rank-exited', rank: 1, node: 'gpu"1', exitCode: 137, signal: null, meaning: 'killed', lastLines: [], restarting: true });
    m.onEvent({ kind: 'chain-stats', ranks: [{ rank: 0, computeMsPerToken: 2.5 }, { rank: 1, computeMsPerToken: 3 }], hopMs: 0.4, roundTripMsPerToken: 6.2, tokens: 10 });
    m.onEvent({ kind: 'requests', total: 3, active: 1, failed: 1 });
    m.onEvent({ kind: 'generation-served', api: 'ollama', promptTokens: 12, outputTokens: 5, ttftMs: 80 });
    m.onEvent({ kind: 'generation-served', api: 'ollama', promptTokens: 3, outputTokens: 2, ttftMs: 700 });
    const text = m.render();
    const lines = text.trim().split('\n');
    for (const l of lines) assert.match(l, /^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|NaN))$/, l);
    assert.ok(lines.includes('llama_relay_requests_total 3'));
    assert.ok(lines.includes('llama_relay_prompt_tokens_total{api="ollama"} 15'));
    assert.ok(lines.includes('llama_relay_generated_tokens_total{api="ollama"} 7'));
    assert.ok(lines.includes('llama_relay_time_to_first_token_seconds_bucket{le="0.1"} 1'));
    assert.ok(lines.includes('llama_relay_time_to_first_token_seconds_bucket{le="1"} 2'));
    assert.ok(lines.includes('llama_relay_time_to_first_token_seconds_count 2'));
    assert.ok(lines.includes('llama_relay_rank_up{rank="1",node="gpu\\"1"} 0'), 'a dead rank is down, its label escaped');
    assert.ok(lines.includes('llama_relay_rank_restarts_total{rank="1",node="gpu\\"1"} 1'));
    assert.ok(lines.includes('llama_relay_rank_hop_ms{rank="1",node="gpu\\"1"} 0.4'));
    assert.ok(lines.includes('llama_relay_rank_compute_ms_per_token{rank="0",node="local"} 2.5'));
    assert.ok(lines.includes('llama_relay_chain_round_trip_ms_per_token 6.2'));
  });
});

describe('API exposure options', () => {
  it('refuses a network bind without a key unless --no-api-key', () => {
    assert.equal(bindRefusal('127.0.0.1', false, false), undefined);
    assert.equal(bindRefusal('::1', false, false), undefined);
    assert.match(bindRefusal('0.0.0.0', false, false) ?? '', /without a key/);
    assert.equal(bindRefusal('0.0.0.0', true, false), undefined);
    assert.equal(bindRefusal('192.168.1.4', false, true), undefined);
  });

  it('reads the key from a file, the environment or the flag, and refuses contradictions', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'lr-key-')), 'key');
    writeFileSync(f, 'from-file\n');
    assert.deepEqual(apiKeyFromArgs({ 'api-key-file': f }, {}), { apiKey: 'from-file', allowNoApiKey: false });
    assert.deepEqual(apiKeyFromArgs({}, { LLAMA_RELAY_API_KEY: 'from-env' }), { apiKey: 'from-env', allowNoApiKey: false });
    assert.deepEqual(apiKeyFromArgs({ 'api-key': 'flag' }, {}), { apiKey: 'flag', allowNoApiKey: false });
    assert.deepEqual(apiKeyFromArgs({ 'api-key': false }, { LLAMA_RELAY_API_KEY: 'ignored' }), { allowNoApiKey: true });
    assert.throws(() => apiKeyFromArgs({ 'api-key': false, 'api-key-file': f }, {}), UserError);
    assert.throws(() => apiKeyFromArgs({ 'api-key-file': join(f, 'nope') }, {}), (e: Error) => e instanceof UserError && e.message.includes('nope'));
    writeFileSync(f, '\n');
    assert.throws(() => apiKeyFromArgs({ 'api-key-file': f }, {}), /is empty/);
  });
});
