import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { localHost } from '../../src/process/command-host.js';
import { describeExit } from '../../src/process/exit-meaning.js';
import { startProcess } from '../../src/process/managed-process.js';
import { parseWrapperLine, wrapperArgv } from '../../src/process/remote-wrapper.js';
import { shellJoin } from '../../src/process/shell-quote.js';
import { startWrapped } from '../../src/process/wrapped-process.js';
import { fixtureBin, isAlive, reap, survivorsAfter, uniqueMarker, waitFor } from '../helpers/processes.js';

const markers: string[] = [];
const mark = () => {
  const m = uniqueMarker();
  markers.push(m);
  return m;
};
const runDir = mkdtempSync(join(tmpdir(), 'lr-run-'));
after(() => {
  markers.forEach(reap);
  rmSync(runDir, { recursive: true, force: true });
});

describe('describeExit', () => {
  const table: [number | null, string | null, RegExp][] = [
    [0, null, /success/],
    [137, null, /137: killed \(SIGKILL/],
    [143, null, /SIGTERM/],
    [127, null, /command not found/],
    [null, 'SIGSEGV', /segmentation fault/],
    [3, null, /exit code 3: failed/],
  ];
  for (const [code, sig, re] of table) it(`${code}/${sig}`, () => assert.match(describeExit(code, sig), re));
});

describe('shellJoin', () => {
  it('round-trips awkward words through sh', async () => {
    const words = ["it's", 'a b', '$HOME', '', 'plain', 'x"y'];
    const p = startProcess({ label: 't', command: 'sh', args: ['-c', `printf '%s\\n' ${shellJoin(words)}`] });
    const out: string[] = [];
    const p2 = startProcess(
      { label: 't', command: 'sh', args: ['-c', `printf '%s\\n' ${shellJoin(words)}`] },
      { onLine: (l) => out.push(l) },
    );
    await p.done;
    await p2.done;
    assert.deepEqual(out, words);
  });
});

describe('startProcess', () => {
  it('reports exit code, meaning and the stderr tail', async () => {
    const lines: string[] = [];
    const p = startProcess(
      { label: 'rank 1', command: fixtureBin('exit-with.mjs'), args: ['3', 'loading', 'boom: out of memory'] },
      { onLine: (l, s) => lines.push(`${s}:${l}`) },
    );
    const o = await p.done;
    assert.equal(o.exitCode, 3);
    assert.equal(o.label, 'rank 1');
    assert.deepEqual(o.stderrTail, ['loading', 'boom: out of memory']);
    assert.deepEqual(lines, ['stderr:loading', 'stderr:boom: out of memory']);
    assert.equal(o.isTerminated, false);
  });

  it('maps a missing command to 127', async () => {
    const o = await startProcess({ label: 'x', command: '/nonexistent/llama-server', args: [] }).done;
    assert.equal(o.exitCode, 127);
    assert.match(o.meaning, /command not found/);
    assert.ok(o.spawnError);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const m = mark();
    let ready!: () => void;
    const started = new Promise<void>((r) => (ready = r));
    const p = startProcess(
      { label: 'stubborn', command: fixtureBin('no-killable.mjs'), args: [m] },
      { forceKillAfterMs: 300, onLine: (l) => l.startsWith('no-killable') && ready() },
    );
    await started;
    const o = await p.stop();
    assert.equal(o.isTerminated, true);
    assert.equal(o.isForcefullyTerminated, true);
    assert.equal(o.signal, 'SIGKILL');
    assert.match(o.stderrTail.join('\n'), /ignoring SIGTERM/);
  });

  it('abort cancels and kills the whole process group', async () => {
    const m = mark();
    const ac = new AbortController();
    let grandchild = 0;
    const p = startProcess(
      { label: 'tree', command: fixtureBin('forever.mjs'), args: ['--child', m] },
      { signal: ac.signal, onLine: (l) => (grandchild = Number(/grandchild pid=(\d+)/.exec(l)?.[1] ?? grandchild)) },
    );
    assert.ok(await waitFor(() => grandchild > 0, 5000));
    ac.abort();
    const o = await p.done;
    assert.equal(o.isCanceled, true);
    assert.equal(o.isForcefullyTerminated, false);
    assert.ok(await waitFor(() => !isAlive(grandchild), 3000), 'grandchild survived');
  });
});

describe('parseWrapperLine', () => {
  it('reads the wrapper\'s lines, also after half a line its command left on the shared stderr', () => {
    assert.deepEqual(parseWrapperLine('llama-relay-wrapper: started pgid=4242'), { event: 'started', value: 4242 });
    assert.deepEqual(parseWrapperLine('0.00.003.117 I llama-relay-wrapper: started pgid=4242'), { event: 'started', value: 4242 });
    assert.deepEqual(parseWrapperLine('0.09.101.001 W llama-relay-wrapper: exited code=137'), { event: 'exited', value: 137 });
    assert.equal(parseWrapperLine('srv  log_server_r: done'), undefined);
  });
});

describe('remote wrapper (run locally)', () => {
  it('passes the secret through env, not argv, and reports the child group', async () => {
    const out: string[] = [];
    const p = startWrapped(
      localHost,
      { label: 'env', argv: [fixtureBin('print-env.mjs')], secret: 's3cr3t', wrapper: { name: `env-${mark()}`, runDir, secretEnv: 'LLAMA_RELAY_SECRET' } },
      { onLine: (l) => out.push(l) },
    );
    const o = await p.done;
    assert.equal(o.exitCode, 0);
    assert.ok(out.includes('env LLAMA_RELAY_SECRET=s3cr3t'), out.join('\n'));
    assert.ok(out.includes('argv []'));
    assert.ok(p.childPgid());
  });

  it('propagates the command exit code (137 when killed)', async () => {
    const o = await startWrapped(localHost, { label: 'x', argv: [fixtureBin('exit-with.mjs'), '137', 'bye'], wrapper: { name: 'exit137', runDir } }).done;
    assert.equal(o.exitCode, 137);
    assert.match(o.meaning, /killed/);
    assert.ok(o.stderrTail.includes('bye'));
  });

  it('stop() closes stdin and the wrapper kills the command group, escalating past SIGTERM', async () => {
    const m = mark();
    let armed = false; // the fixture prints its pid only after its SIGTERM handlers are in place
    const p = startWrapped(
      localHost,
      { label: 'stubborn', argv: [fixtureBin('no-killable.mjs'), m], wrapper: { name: `stub-${m}`, runDir, graceSeconds: 1 } },
      { onLine: (l) => (armed ||= l.startsWith('no-killable pid=')) },
    );
    assert.ok(await waitFor(() => armed, 10_000));
    const t0 = Date.now();
    const o = await p.stop();
    assert.equal(o.exitCode, 137, o.stderrTail.join('\n'));
    assert.equal(o.isForcefullyTerminated, false, 'the wrapper, not the launcher, should escalate');
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(await survivorsAfter(m, 3000), []);
  });

  it('kills everything when the launcher is SIGKILLed (stdin EOF)', async () => {
    const m = mark();
    const argv = wrapperArgv([fixtureBin('forever.mjs'), '--child', m], { name: `lk-${m}`, runDir, graceSeconds: 1 });
    // A stand-in launcher: holds the wrapper's stdin pipe, then dies without cleanup.
    const launcher = spawn(
      process.execPath,
      ['-e', `const c=require('child_process').spawn(process.argv[1],JSON.parse(process.argv[2]),{stdio:['pipe','inherit','inherit'],detached:true});setInterval(()=>{},1e9)`, argv[0]!, JSON.stringify(argv.slice(1))],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let seen = '';
    launcher.stdout.on('data', (d) => (seen += d));
    assert.ok(await waitFor(() => seen.includes('grandchild pid='), 5000), 'never started');
    launcher.kill('SIGKILL');
    assert.deepEqual(await survivorsAfter(m, 8000), []);
  });

  it('kills everything when heartbeats stop (silent link loss)', async () => {
    const m = mark();
    const argv = wrapperArgv([fixtureBin('forever.mjs'), m], { name: `hb-${m}`, runDir, graceSeconds: 1, heartbeatSeconds: 1 });
    // stdin stays open but no heartbeat lines are sent.
    const p = startProcess({ label: 'hb', command: argv[0]!, args: argv.slice(1), keepStdinOpen: true });
    const o = await p.done;
    assert.equal(o.exitCode, 143);
    assert.ok(o.stderrTail.some((l) => l.includes('launcher gone')), o.stderrTail.join('\n'));
    assert.deepEqual(await survivorsAfter(m, 3000), []);
  });

  it('cleans a stale run with the same name before starting', async () => {
    const m = mark();
    const stale = spawn(fixtureBin('forever.mjs'), [m, 'stale'], { detached: true, stdio: 'ignore' });
    writeFileSync(join(runDir, `same-${m}.pid`), `${stale.pid}\n`);
    const out: string[] = [];
    const p = startWrapped(
      localHost,
      { label: 'again', argv: [fixtureBin('exit-with.mjs'), '0'], wrapper: { name: `same-${m}`, runDir, graceSeconds: 1 } },
      { onLine: (l) => out.push(l) },
    );
    await p.done;
    assert.ok(out.some((l) => l.includes(`stale run pgid=${stale.pid}`)), out.join('\n'));
    assert.ok(await waitFor(() => !isAlive(stale.pid!), 3000));
    assert.throws(() => readFileSync(join(runDir, `same-${m}.pid`)), 'pidfile removed after exit');
  });

  it('refuses a symlinked pidfile (exit 125, the path named) and never writes through it', async () => {
    const m = mark();
    const target = join(runDir, `victim-${m}`);
    writeFileSync(target, 'precious\n');
    symlinkSync(target, join(runDir, `link-${m}.pid`));
    const out: string[] = [];
    const o = await startWrapped(
      localHost,
      { label: 'link', argv: [fixtureBin('exit-with.mjs'), '0'], wrapper: { name: `link-${m}`, runDir } },
      { onLine: (l) => out.push(l) },
    ).done;
    assert.equal(o.exitCode, 125);
    assert.ok(o.stderrTail.some((l) => l.includes(`holds a symlink at ${runDir}/link-${m}.pid`)), o.stderrTail.join('\n'));
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
  });
});
