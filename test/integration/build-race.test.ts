// scripts/build-llama.sh run several times at once (a `bench` building stock while an `up` builds patched): every build
// completes, each from its own tree; a complete build leaves the trees alone. Then `up` without a terminal builds the
// engine and prints its progress lines. A private cache (ccache shared, so objects built before are reused).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import getPort from 'get-port';
import { repoRoot, vocabPath } from '../helpers/llama-src.js';
import { survivorsAfter } from '../helpers/processes.js';

const exec = promisify(execFile);
const cache = mkdtempSync('/tmp/lr-build-race-');
after(() => rmSync(cache, { recursive: true, force: true }));
const env = { ...process.env, LLAMA_RELAY_CACHE: cache, CCACHE_DIR: process.env.CCACHE_DIR ?? join(homedir(), '.cache/llama-relay/ccache') };

function build(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn('bash', [join(repoRoot, 'scripts/build-llama.sh'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  return new Promise((r) => p.on('exit', (code) => r({ code, stdout, stderr })));
}
const last = (stdout: string, key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(stdout)?.[1];
const helpOf = async (bin: string) => (await exec(join(bin, 'llama-server'), ['--help'], { maxBuffer: 8 << 20 })).stdout;

describe('build-llama.sh', { timeout: 3_600_000 }, () => {
  let patched = '';
  it('three builds at once (stock, patched, patched) all complete, each from its own tree', async () => {
    const [stock, p1, p2] = await Promise.all([build(['--stock-only']), build(['--patched-only']), build(['--patched-only'])]);
    for (const r of [stock, p1, p2]) assert.equal(r.code, 0, r.stderr.slice(-3000));
    for (const r of [stock, p1, p2]) {
      const lines = r.stdout.trim().split('\n');
      assert.match(lines.at(-2)!, /^patched=/);
      assert.match(lines.at(-1)!, /^stock=/);
    }
    patched = last(p1.stdout, 'patched')!;
    assert.equal(last(p2.stdout, 'patched'), patched);
    // One of the two patched builds waited for the other and reused it: the patches went on once.
    assert.equal((p1.stderr + p2.stderr).match(/applied 0001/g)?.length, 1, p1.stderr + p2.stderr);
    assert.match(p1.stderr + p2.stderr, /waiting for another build-llama\.sh/);
    assert.match(await helpOf(patched), /--layer-range/);
    assert.doesNotMatch(await helpOf(last(stock.stdout, 'stock')!), /--layer-range/);
  });

  it('a complete build leaves its tree alone', async () => {
    const tree = join(dirname(dirname(dirname(patched))), 'src');
    const state = (await exec('bash', ['-c', `ls ${tree}`])).stdout.trim();
    const stamp = join(tree, state, '.llama-relay-state');
    const before = statSync(stamp).mtimeMs;
    const status = (await exec('git', ['-C', join(tree, state), 'status', '--porcelain'])).stdout;
    const r = await build([]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /applied|building /, 'nothing patched or built again');
    assert.equal(statSync(stamp).mtimeMs, before);
    assert.equal((await exec('git', ['-C', join(tree, state), 'status', '--porcelain'])).stdout, status);
  });

  it('`up` without a terminal prints the engine build progress every 10% (or 30 s), then runs', async () => {
    // The patched build again from its (kept) tree: remove the build, as on a first run.
    rmSync(dirname(patched), { recursive: true, force: true });
    const model = join(cache, 'fixture-progress.gguf');
    const cli = join(repoRoot, 'bin/llama-relay.js');
    await exec(process.execPath, [cli, 'fixture', '--arch', 'llama', '--layers', '4', '--vocab', vocabPath('llama-spm'), '-o', model], { env });
    const p = spawn(process.execPath, [cli, 'up', model, '--nodes', 'local,local', '--prompt', 'hi', '--max-tokens', '4', '--api-port', String(await getPort({ host: '127.0.0.1' }))], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => p.on('exit', r));
    assert.equal(code, 0, stderr.slice(-3000));
    const shown = [...stderr.matchAll(/^building the patched llama-server on this machine: (\d+)%/gm)].map((m) => Number(m[1]));
    assert.ok(shown.length >= 3, stderr);
    assert.equal(shown.at(-1), 100, stderr);
    assert.deepEqual([...shown].sort((a, b) => a - b), shown, 'progress only grows');
    assert.match(stderr, /this machine: \d+% \(\d+ of \d+\)/, 'with the build step count');
    assert.deepEqual(await survivorsAfter(model, 10_000), []);
  });
});
