// Start-up: refusals that name the problem (unsplittable architecture, bad range, missing secret),
// and a patched server without stage flags that behaves exactly like stock.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import getPort from 'get-port';
import { assertSameCompletion, binDirs, commonArgs, complete, healthStatus, startStock, waitFor } from '../helpers/engine.js';
import { makeFixture } from '../helpers/fixtures.js';
import { architectureSplittability } from '../../src/plan/arch-support.js';
import { vocabPath } from '../helpers/llama-src.js';
import { spawn } from 'node:child_process';

function secretFile(): string {
  const p = join(mkdtempSync(join(tmpdir(), 'relay-start-')), 'secret');
  writeFileSync(p, 'secret');
  return p;
}

/** Runs the patched server to completion (it must exit by itself) and returns its exit status, signal and output. */
async function runPatched(args: string[], env: NodeJS.ProcessEnv = {}) {
  const { patched } = await binDirs();
  const r = spawnSync(join(patched, 'llama-server'), args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

/** Lines llama.cpp prints once it reads the model file (metadata) and once it loads tensor data. */
const READS_MODEL = /llama_model_loader: /;
const LOADS_TENSORS = /load_tensors: /;

/** A refusal is an exit of its own with a failure status: not a timeout kill (status null), not a crash by signal. */
function assertRefused(r: { code: number | null; signal: string | null; out: string }, what: string, notPrinted: RegExp): void {
  assert.ok(r.code !== null && r.code !== 0 && r.signal === null, `${what}: exit status ${r.code}, signal ${r.signal}\n${r.out.slice(-2000)}`);
  assert.doesNotMatch(r.out, notPrinted, `${what}: refused too late`);
}

describe('refusals at start-up', () => {
  test('an architecture that cannot be split is refused, naming it and the reason the planner gives', async () => {
    // gpt2: the fallback reason (another loop shape); bert: a reason from the generated table
    for (const [vocab, arch] of [['gpt-2', 'gpt2'], ['bert-bge', 'bert']] as const) {
      const r = await runPatched(['-m', vocabPath(vocab), '--layer-range', '0:4', '--stage-listen', '127.0.0.1:1',
        '--stage-next', '127.0.0.1:2', '--stage-secret-file', secretFile(), '--port', String(await getPort())]);
      assertRefused(r, arch, LOADS_TENSORS);
      const reason = architectureSplittability(arch).reason;
      assert.ok(reason);
      const line = r.out.split('\n').find((l) => l.includes(`architecture '${arch}' cannot be split across ranks: `));
      assert.ok(line, `${arch}: no refusal line\n${r.out.slice(-2000)}`);
      assert.equal(line.slice(line.indexOf('across ranks: ') + 'across ranks: '.length).trim(), reason);
    }
  });

  test('a layer range outside the model is refused with the valid range', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 4, embd: 64 });
    const r = await runPatched(['-m', model, '--layer-range', '2:9', '--stage-listen', '127.0.0.1:1',
      '--stage-next', '127.0.0.1:2', '--stage-secret-file', secretFile()]);
    assertRefused(r, 'range 2:9', LOADS_TENSORS);
    assert.match(r.out, /--layer-range 2:9 does not fit the model, which has 4 layers/);
  });

  test('malformed stage flags and a missing secret are refused before loading', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 4, embd: 64 });
    const noSecret = await runPatched(['-m', model, '--layer-range', '0:2', '--stage-listen', '127.0.0.1:1', '--stage-next', '127.0.0.1:2'],
      { LLAMA_RELAY_SECRET: '' });
    assertRefused(noSecret, 'no secret', READS_MODEL);
    assert.match(noSecret.out, /a stage secret is required: --stage-secret-file PATH or the LLAMA_RELAY_SECRET/);
    const badRange = await runPatched(['-m', model, '--layer-range', '3-1']);
    assertRefused(badRange, 'range 3-1', READS_MODEL);
    assert.match(badRange.out, /--layer-range '3-1' is not A:B/);
    const noNext = await runPatched(['-m', model, '--layer-range', '0:2', '--stage-secret-file', secretFile()]);
    assertRefused(noNext, 'no --stage-next', READS_MODEL);
    assert.match(noNext.out, /needs --stage-listen HOST:PORT and --stage-next HOST:PORT/);
    const missingFile = await runPatched(['-m', model, '--layer-range', '0:2', '--stage-listen', '127.0.0.1:1',
      '--stage-next', '127.0.0.1:2', '--stage-secret-file', '/nonexistent/secret']);
    assertRefused(missingFile, 'missing secret file', READS_MODEL);
    assert.match(missingFile.out, /cannot read --stage-secret-file '\/nonexistent\/secret'/);
    for (const bad of ['-1', '1.5', '2000000', '']) {
      const r = await runPatched(['-m', model, '--layer-range', '0:2', '--stage-poll', bad]);
      assertRefused(r, `--stage-poll '${bad}'`, READS_MODEL);
      assert.match(r.out, /--stage-poll must be a whole number of microseconds from 0 \(off\) to 1000000/);
    }
    for (const bad of ['-1', '2.5', '5000', 'x']) {
      const r = await runPatched(['-m', model, '--layer-range', '0:2', '--stage-batch-groups', bad]);
      assertRefused(r, `--stage-batch-groups '${bad}'`, READS_MODEL);
      assert.match(r.out, /--stage-batch-groups must be a whole number of requests from 0 \(off\) to 1024/);
    }
  });
});

test('without stage flags the patched server answers exactly like stock', async () => {
  const model = await makeFixture({ arch: 'qwen3', layers: 4, embd: 128, heads: 4, headsKv: 2, ff: 256 });
  const stock = await startStock(model);
  const want = await complete(stock.port, { prompt: 'Hello world', n_predict: 48 }).finally(() => stock.stop());
  const { patched } = await binDirs();
  const port = await getPort();
  const child = spawn(join(patched, 'llama-server'), ['-m', model, '--host', '127.0.0.1', '--port', String(port), ...commonArgs], {
    stdio: 'ignore',
  });
  try {
    await waitFor(async () => (await healthStatus(port)).status === 200, 'patched server health', 60_000);
    assertSameCompletion(want, await complete(port, { prompt: 'Hello world', n_predict: 48 }), 0, 'patched without flags');
  } finally {
    child.kill('SIGKILL');
  }
});
