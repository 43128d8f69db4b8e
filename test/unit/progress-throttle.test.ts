// Plain/--json progress: every 10% or every 30 s, whichever comes first; other events pass untouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RelayEvent } from '../../src/events/events.js';
import { throttleProgress } from '../../src/events/progress-throttle.js';

function rig() {
  let t = 0;
  const seen: RelayEvent[] = [];
  const th = throttleProgress((e) => seen.push(e), { now: () => t, tickMs: 1e9 });
  th.stop();
  return { seen, emit: th.listener, tick: th.tick, at: (ms: number) => (t = ms) };
}
const build = (p: number): RelayEvent => ({ kind: 'engine-build', variant: 'patched', progress: p });
const shown = (seen: RelayEvent[]) => seen.flatMap((e) => ('progress' in e && e.progress !== undefined ? [Math.round(e.progress * 100)] : []));

test('a fast build shows its first step, each 10% crossed and 100%', () => {
  const r = rig();
  for (let p = 1; p <= 100; p++) r.emit(build(p / 100));
  assert.deepEqual(shown(r.seen), [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
});

test('a slow build also shows its latest progress once 30 s passed without a line', () => {
  const r = rig();
  r.emit(build(0.01));
  r.at(29_000);
  r.emit(build(0.03));
  r.at(31_000);
  r.emit(build(0.04)); // 30 s since the last shown line
  r.at(40_000);
  r.emit(build(0.05));
  assert.deepEqual(shown(r.seen), [1, 4]);
});

test('a load without progress gets a line every 30 s from the heartbeat, and none once the rank is ready', () => {
  const r = rig();
  r.emit({ kind: 'node-phase', rank: 1, node: 'local', phase: 'load' });
  r.at(10_000);
  r.tick();
  r.at(30_000);
  r.tick();
  r.at(45_000);
  r.tick();
  r.at(60_000);
  r.tick();
  r.emit({ kind: 'node-phase', rank: 1, node: 'local', phase: 'ready' });
  r.at(200_000);
  r.tick();
  const lines = r.seen.map((e) => (e.kind === 'node-phase' ? `${e.phase}${e.detail ? ` (${e.detail})` : ''}` : e.kind));
  assert.deepEqual(lines, ['load', 'load (30 s so far)', 'load (60 s so far)', 'ready']);
});

test('uploads are throttled per rank, a new phase always shows, and other events pass untouched', () => {
  const r = rig();
  const up = (rank: number, p: number): RelayEvent => ({ kind: 'node-phase', rank, node: 'n', phase: 'upload', progress: p });
  r.emit(up(0, 0.01));
  r.emit(up(1, 0.01));
  r.emit(up(0, 0.02));
  r.emit({ kind: 'token', text: 'x' });
  r.emit(up(1, 0.12));
  r.emit({ kind: 'node-phase', rank: 0, node: 'n', phase: 'build', progress: 0.01 });
  assert.deepEqual(
    r.seen.map((e) => (e.kind === 'node-phase' ? `${e.rank}:${e.phase}:${Math.round((e.progress ?? 0) * 100)}` : e.kind)),
    ['0:upload:1', '1:upload:1', 'token', '1:upload:12', '0:build:1'],
  );
});

test('a new item in the same phase (the binary, then a slice) shows from its start', () => {
  const r = rig();
  const up = (p: number, detail: string): RelayEvent => ({ kind: 'node-phase', rank: 1, node: 'n', phase: 'upload', progress: p, detail });
  for (const p of [0.01, 0.05, 1]) r.emit(up(p, 'llama-server'));
  for (const p of [0.01, 0.05, 0.5, 1]) r.emit(up(p, 'slice a.gguf'));
  assert.deepEqual(
    r.seen.map((e) => (e.kind === 'node-phase' ? `${e.detail}:${Math.round((e.progress ?? 0) * 100)}` : e.kind)),
    ['llama-server:1', 'llama-server:100', 'slice a.gguf:1', 'slice a.gguf:50', 'slice a.gguf:100'],
  );
});
