// The wrapper's run dir on shared nodes (issue 14 item 4): a dir another uid planted first and a symlinked dir are
// refused with the node and the path named, on this machine and over a real sshd; a pidfile name planted in advance is
// never used; a good dir (the positive control) runs the chain. `up` end to end with fixture ranks.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import getPort from 'get-port';
import { fixtureBin } from '../helpers/processes.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import { sshConfigIn } from '../helpers/e2e-run.js';
import { makeWorkDir } from '../helpers/work-dir.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
const work = makeWorkDir('lr-rundir');
/** A uid that is not ours (the tests run as root, which can chown a dir to it). */
const ME = process.getuid!();
const OTHER_UID = ME === 1000 ? 1001 : 1000;
let sshd: TestSshd;
let sshConfig = '';

before(async () => {
  sshd = await startSshd();
  sshConfig = sshConfigIn(work, sshd);
});
after(async () => {
  work.remove();
  await sshd?.stop();
});

async function stagePortBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 9000);
    const want = [base, base + 1, base + 2];
    const got = await Promise.all(want.map((p) => getPort({ host: '127.0.0.1', port: p })));
    if (got.every((g, i) => g === want[i])) return base;
  }
}

interface Run {
  code: number | null;
  stderr: string;
  stdout: string;
  /** processes of the work dir seen while the run was on (after the chain was ready) */
  seenWhileRunning: string[];
}

/** `up` on a fixture model in the work dir; `--run-dir` is passed when given. */
async function up(nodes: string, runDir: string | undefined, base: number, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const model = join(work.path, 'model.gguf');
  writeFileSync(model, 'not a real model');
  const args = [
    cli, 'up', model, '--nodes', nodes, '--layers', '8', '--llama-server', fixtureBin('fake-llama-server.mjs'),
    '--api-port', String(await getPort({ host: '127.0.0.1' })), '--stage-port-base', String(base), '-F', sshConfig,
    '--ready-timeout', '30', '--prompt', 'hi', '--max-tokens', '4',
    ...(runDir ? ['--run-dir', runDir] : []),
  ];
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: work.path, ...env } });
  let stderr = '';
  let stdout = '';
  let seenWhileRunning: string[] = [];
  p.stdout.on('data', (d) => {
    stdout += d;
    // Positive control for the leftover query: the ranks are found by the work dir while they run.
    if (seenWhileRunning.length === 0) seenWhileRunning = work.processes();
  });
  p.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  return { code, stderr, stdout, seenWhileRunning };
}

describe('run dir safety (up with fixture ranks, local and over ssh)', { timeout: 180_000 }, () => {
  it('positive control: a run dir of our own, mode 0700, runs the chain on both nodes', async () => {
    const dir = join(work.path, 'good');
    const r = await up(`local,${sshd.alias}`, dir, await stagePortBase());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Hello from the relay/);
    assert.ok(r.seenWhileRunning.some((l) => l.includes('fake-llama-server')), `ranks not found while running:\n${r.seenWhileRunning.join('\n')}`);
    assert.equal(lstatSync(dir).mode & 0o777, 0o700, 'the wrapper creates its dir 0700');
    assert.deepEqual(await work.survivors(10_000), []);
  });

  it("a run dir another uid planted first is refused on the ssh node, naming the node and the path", async () => {
    const dir = join(work.path, 'planted');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, OTHER_UID, OTHER_UID);
    const r = await up(`local,${sshd.alias}`, dir, await stagePortBase());
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`node ${sshd.alias}: run dir ${dir} is owned by uid ${OTHER_UID}, not by uid ${ME}; refusing to use it`));
    assert.match(r.stderr, /mode 0700 and not be a symlink/);
    assert.doesNotMatch(r.stdout, /Hello/);
    assert.deepEqual(await work.survivors(10_000), []);
  });

  it('a symlinked run dir is refused (the link is left alone)', async () => {
    const real = join(work.path, 'real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(work.path, 'link');
    symlinkSync(real, link);
    const r = await up(`${sshd.alias},local`, link, await stagePortBase());
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`rank \\d on node (local|${sshd.alias}): run dir ${link} is a symlink; refusing to use it`));
    assert.equal(readlinkSync(link), real);
    assert.deepEqual(await work.survivors(10_000), []);
  });

  it('a run dir of ours that others can write into is refused', async () => {
    const dir = join(work.path, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o777); // mkdirSync applies the umask
    const r = await up('local,local', dir, await stagePortBase());
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`node local: run dir ${dir} has mode drwxrwxrwx, not drwx------ \\(0700\\)`));
    assert.deepEqual(await work.survivors(10_000), []);
  });

  it('pidfiles are named per launch: a symlink planted at a predictable name is never followed', async () => {
    const dir = join(work.path, 'pidlink');
    mkdirSync(dir, { mode: 0o700 });
    const base = await stagePortBase();
    const target = join(work.path, 'victim');
    writeFileSync(target, 'precious\n');
    // The names a run got before each launch had its own id (lr<stage port base>-rankN); the wrapper's refusal of a
    // symlinked pidfile it would use is tested in test/unit/process.test.ts.
    for (const rank of [0, 1]) symlinkSync(target, join(dir, `lr${base}-rank${rank}.pid`));
    const r = await up(`local,${sshd.alias}`, dir, base);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Hello from the relay/);
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
    assert.deepEqual(await work.survivors(10_000), []);
  });

  it('the default run dir: $XDG_RUNTIME_DIR/llama-relay where set, refused when another uid made it', async () => {
    const xdg = join(work.path, 'xdg');
    mkdirSync(xdg, { mode: 0o700 });
    const planted = join(xdg, 'llama-relay');
    mkdirSync(planted, { mode: 0o700 });
    chownSync(planted, OTHER_UID, OTHER_UID);
    const r = await up('local,local', undefined, await stagePortBase(), { XDG_RUNTIME_DIR: xdg });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`node local: run dir ${planted} is owned by uid ${OTHER_UID}, not by uid ${ME}`));
    assert.deepEqual(await work.survivors(10_000), []);
  });
});
