// The leftover-process check every teardown test relies on: it finds what carries the marker (argv or environment),
// and it fails loudly, instead of reporting "nothing running", when it cannot look.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { carrying, isAlive, reap, survivorsAfter, uniqueMarker } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), `${uniqueMarker('lr-leftover')}-`));
after(() => {
  reap(dir);
  rmSync(dir, { recursive: true, force: true });
});

test('a process with the marker only in its environment (TMPDIR) is found while it runs, and not once it is gone', async () => {
  const p = spawn('sleep', ['300'], { env: { ...process.env, TMPDIR: dir }, stdio: 'ignore' });
  const exited = new Promise((r) => p.on('exit', r));
  assert.deepEqual(carrying(dir).map((c) => c.pid), [p.pid]);
  assert.equal(isAlive(p.pid!), true);
  assert.deepEqual(await survivorsAfter(dir, 300), [`${p.pid} sleep 300`], 'a leftover is reported');
  p.kill('SIGKILL');
  await exited;
  assert.equal(isAlive(p.pid!), false);
  assert.deepEqual(await survivorsAfter(dir, 5000), []);
});

test('without procps on PATH the check throws instead of reporting nothing running, and liveness still reads true', () => {
  const helper = new URL('../helpers/processes.ts', import.meta.url).pathname;
  const script = `import { survivorsAfter, isAlive } from ${JSON.stringify(helper)};
    let alive; try { alive = String(isAlive(process.pid)); } catch (e) { alive = 'threw: ' + e.message; }
    survivorsAfter('any-marker', 100).then((s) => console.log('survivors ' + JSON.stringify(s) + ', isAlive ' + alive), (e) => console.log('check threw: ' + e.message + ', isAlive ' + alive));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, PATH: dir },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /check threw: pgrep could not run .*procps/);
  assert.match(r.stdout, /isAlive true$/m, 'liveness comes from /proc, not from a tool that may be missing');
});
