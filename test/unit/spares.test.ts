// Spare nodes (issue 12, item 2), the pure parts table-style: `spare` lines in a cluster file, the timeouts `up`
// picks or refuses, the check of a spare's budget, and the choice of the spare a lost rank moves to; then `up`
// refusing bad spare input by name before anything starts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { UserError } from '../../src/errors.js';
import { parseClusterFile } from '../../src/plan/cluster-file.js';
import { checkSpares, chooseSpare, spareTimeouts, splitSpares, type SpareNode } from '../../src/plan/spares.js';
import { makeFixture } from '../helpers/fixtures.js';
import { fixtureBin, survivorsAfter } from '../helpers/processes.js';

const refuses = (f: () => unknown, message: RegExp, next?: RegExp, label = message.source) =>
  assert.throws(f, (e: unknown) => e instanceof UserError && message.test(e.message) && (!next || next.test(e.next.join('\n'))), label);

describe('cluster file: spare lines', () => {
  it('a spare word marks the node; it may carry mem=, in any position', () => {
    const specs = parseClusterFile('local\nalice@gpu1 mem=8G\ngpu3 spare mem=16G\n# comment\nbob@gpu4:2222 spare\n', 'lab.txt');
    assert.deepEqual(specs, [
      { host: 'local', spec: 'local' },
      { user: 'alice', host: 'gpu1', memory: 8e9, spec: 'alice@gpu1=8G' },
      { host: 'gpu3', memory: 16e9, spec: 'gpu3=16G', spare: true },
      { user: 'bob', host: 'gpu4', port: 2222, spec: 'bob@gpu4:2222', spare: true },
    ]);
    const { active, spares } = splitSpares(specs);
    assert.deepEqual(active.map((s) => s.spec), ['local', 'alice@gpu1=8G']);
    assert.deepEqual(spares, [{ name: 'gpu3', memory: 16e9 }, { name: 'bob@gpu4:2222' }]);
  });

  it('bad spare lines name the file, the line or the node', () => {
    const rows: [() => unknown, RegExp, RegExp?][] = [
      [() => parseClusterFile('a\nb spare spare', 'c.txt'), /^c\.txt:2: spare is given twice/],
      [() => parseClusterFile('a\nb spare layers=4', 'c.txt'), /^c\.txt:2: a spare takes the layers of the rank it replaces/, /drop layers=4/],
      [() => parseClusterFile('a spare\nb spare\n', 'c.txt'), /^c\.txt lists no nodes besides spares$/],
      [() => parseClusterFile('a sparse', 'c.txt'), /^c\.txt:1: "sparse" is not key=value \(nor the word spare\)/],
      [() => splitSpares(parseClusterFile('a\nb\nb spare', 'c.txt')), /^spare b is also a node of the chain/],
      [() => splitSpares(parseClusterFile('a\nb\nc spare\nc mem=2G spare', 'c.txt')), /^spare c is listed twice/],
    ];
    for (const [f, message, next] of rows) refuses(f, message, next);
  });
});

describe('spareTimeouts: --replace-after and --resume-timeout together', () => {
  it('defaults and what the user gave, table-style', () => {
    const rows: [Parameters<typeof spareTimeouts>[0], ReturnType<typeof spareTimeouts>][] = [
      [{ spares: 0 }, {}],
      [{ spares: 0, resumeTimeoutSeconds: 20 }, { resumeTimeoutSeconds: 20 }],
      // with a spare: 30 s, and requests wait through the move and the spare's start
      [{ spares: 1 }, { replaceAfterSeconds: 30, resumeTimeoutSeconds: 90 }],
      [{ spares: 2, replaceAfterSeconds: 5 }, { replaceAfterSeconds: 5, resumeTimeoutSeconds: 65 }],
      [{ spares: 1, replaceAfterSeconds: 10, resumeTimeoutSeconds: 40 }, { replaceAfterSeconds: 10, resumeTimeoutSeconds: 40 }],
      // resume off on purpose: the spare still restores the chain for the next request
      [{ spares: 1, replaceAfterSeconds: 10, resumeTimeoutSeconds: 0 }, { replaceAfterSeconds: 10, resumeTimeoutSeconds: 0 }],
    ];
    for (const [input, want] of rows) assert.deepEqual(spareTimeouts(input), want, JSON.stringify(input));
  });

  it('refuses what would make a move pointless or cannot happen', () => {
    refuses(() => spareTimeouts({ spares: 1, resumeTimeoutSeconds: 20 }), /--resume-timeout 20 is not above --replace-after 30: requests in flight would fail/, /--resume-timeout 90[\s\S]*--replace-after 6/);
    refuses(() => spareTimeouts({ spares: 1, replaceAfterSeconds: 60, resumeTimeoutSeconds: 60 }), /--resume-timeout 60 is not above --replace-after 60/);
    refuses(() => spareTimeouts({ spares: 0, replaceAfterSeconds: 30 }), /--replace-after needs a spare node, and there is none/, /gpu3 mem=8G spare/);
    refuses(() => spareTimeouts({ spares: 1, replaceAfterSeconds: 0 }), /--replace-after 0 is not a positive number/);
    refuses(() => spareTimeouts({ spares: 1, replaceAfterSeconds: Number.NaN }), /--replace-after NaN is not a positive number/);
  });
});

describe('checkSpares: a spare must hold any worker range', () => {
  it('passes spares without a budget, or with enough; refuses a small one naming it and the rank', () => {
    checkSpares([], [1e9]);
    checkSpares([{ name: 'gpu3' }], [4e9, 3e9, 2e9]);
    checkSpares([{ name: 'gpu3', memory: 3e9 }], [9e9, 3e9, 2e9]); // the head's range is never a spare's
    checkSpares([{ name: 'gpu3', memory: 1e9 }], [9e9, undefined]); // unknown estimate: nothing to check against
    refuses(() => checkSpares([{ name: 'gpu3', memory: 2.5e9 }], [9e9, 3e9, 2e9]), /^spare gpu3 has mem=2\.5 GB, but rank 1 needs about 3\.0 GB/, /at least 3\.0 GB/);
    refuses(() => checkSpares([{ name: 'ok', memory: 8e9 }, { name: 'small', memory: 1e9 }], [1e9, 2e9, 4e9]), /^spare small has mem=1\.0 GB, but rank 2 needs about 4\.0 GB/);
    refuses(() => checkSpares([{ name: 'gpu3' }], [5e9]), /^spare gpu3: the chain has only the head/);
  });
});

describe('chooseSpare: where a lost rank goes', () => {
  const spares: SpareNode[] = [{ name: 's1', memory: 2e9 }, { name: 's2' }, { name: 's3', memory: 8e9 }];
  it('the first free spare in file order that holds the rank, or an error naming the rank and node', () => {
    const rows: [Partial<Parameters<typeof chooseSpare>[0]>, string | RegExp][] = [
      [{}, 's1'],
      [{ taken: new Set(['s1']) }, 's2'],
      [{ rankMemory: 4e9 }, 's2'], // s1 is too small; s2 has no budget
      [{ rankMemory: 4e9, taken: new Set(['s2']) }, 's3'],
      [{ rankMemory: 9e9, taken: new Set(['s2']) }, /^rank 2 on gpu2 stays lost and no free spare has the memory for it \(s1, s3\)/],
      [{ taken: new Set(['s1', 's2', 's3']) }, /^rank 2 on gpu2 stays lost and no spare is left \(s1, s2, s3 already in use\)/],
      [{ spares: [] }, /^rank 2 on gpu2 stays lost and there is no spare/],
      [{ rank: 0, lostNode: 'head1' }, /^rank 0 \(the head\) on head1 is lost, and a spare cannot take its place/],
    ];
    for (const [over, want] of rows) {
      const got = chooseSpare({ rank: 2, lostNode: 'gpu2', spares, taken: new Set(), ...over });
      if (typeof want === 'string') assert.equal(got instanceof UserError ? got.message : got.name, want, JSON.stringify(over, (_, v) => (v instanceof Set ? [...v] : v)));
      else assert.ok(got instanceof UserError && want.test(got.message), `${JSON.stringify(over, (_, v) => (v instanceof Set ? [...v] : v))}: ${got instanceof UserError ? got.message : got.name}`);
    }
  });
});

describe('up refuses bad spare input before anything starts', { timeout: 120_000 }, () => {
  const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
  const work = mkdtempSync(join(tmpdir(), 'lr-spares-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const fails = async (args: string[]) => {
    const r = await promisify(execFile)(process.execPath, [cli, 'up', ...args], { env: { ...process.env, TMPDIR: work } }).then(
      () => assert.fail(`up ${args.join(' ')} succeeded`),
      (e: { code?: number; stderr?: string }) => e,
    );
    assert.equal(r.code, 2, r.stderr);
    return r.stderr ?? '';
  };

  it('a spare too small, timeouts that defeat each other, --replace-after without a spare, a spare in the chain', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 8 });
    const file = (name: string, text: string) => {
      const p = join(work, name);
      writeFileSync(p, text);
      return p;
    };
    const common = ['--llama-server', fixtureBin('fake-llama-server.mjs'), '--prompt', 'x', '--run-dir', work];
    assert.match(
      await fails([model, '--cluster', file('small.txt', 'local\nlocal\nsparebox mem=1K spare\n'), ...common]),
      /error: spare sparebox has mem=1\.0 kB, but rank 1 needs about [\d.]+ [kMG]B and a spare may have to take any worker's range[\s\S]*at least/,
    );
    assert.match(
      await fails([model, '--cluster', file('ok.txt', 'local\nlocal\nsparebox spare\n'), '--replace-after', '30', '--resume-timeout', '20', ...common]),
      /error: --resume-timeout 20 is not above --replace-after 30[\s\S]*--resume-timeout 90/,
    );
    assert.match(await fails([model, '--nodes', 'local,local', '--replace-after', '10', ...common]), /error: --replace-after needs a spare node, and there is none/);
    assert.match(await fails([model, '--cluster', file('dup.txt', 'local\nbox\nbox spare\n'), ...common]), /error: spare box is also a node of the chain/);
    assert.deepEqual(await survivorsAfter(work, 3000), []);
  });
});
