// Cluster files (--cluster FILE, --nodes @FILE): the pure parser table-style, and `plan` reading one end to end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { UserError } from '../../src/errors.js';
import { parseClusterFile } from '../../src/plan/cluster-file.js';
import { makeFixture } from '../helpers/fixtures.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'lr-cluster-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('cluster file parser', () => {
  it('one node per line; comments, blank lines and extra spaces are ignored; mem= is the budget', () => {
    const text = [
      '# the lab',
      '',
      'local mem=8G   # this machine',
      '  alice@gpu1:2222   mem=24GiB',
      '\tgpu2',
      '[fe80::1]:22 mem=512M',
      '',
    ].join('\n');
    assert.deepEqual(parseClusterFile(text, 'lab.txt'), [
      { host: 'local', memory: 8e9, spec: 'local=8G' },
      { user: 'alice', host: 'gpu1', port: 2222, memory: 24 * 1024 ** 3, spec: 'alice@gpu1:2222=24GiB' },
      { host: 'gpu2', spec: 'gpu2' },
      { host: 'fe80::1', port: 22, memory: 512e6, spec: '[fe80::1]:22=512M' },
    ]);
    assert.equal(parseClusterFile('a\r\nb\r\n', 'crlf.txt').length, 2);
  });

  it('errors name the file, the line and what is wrong', () => {
    const rows: [string, RegExp, RegExp?][] = [
      ['gpu1\ngpu2 cpus=4', /^nodes\.txt:2: unknown key "cpus"/, /known keys: mem/],
      ['gpu1 mem=lots', /^nodes\.txt:1: mem "lots" is not a size like 24G/],
      ['gpu1 mem=0G', /^nodes\.txt:1: mem "0G" is not a size/],
      ['# x\n\ngpu1 mem=1G mem=2G', /^nodes\.txt:3: mem is given twice/],
      ['gpu1 24G', /^nodes\.txt:1: "24G" is not key=value/],
      ['gpu1=24G', /^nodes\.txt:1: "gpu1=24G" is not a node address/, /gpu1 mem=24G/],
      ['ok\nu@@h', /^nodes\.txt:2: "u@@h" is not \[user@\]host\[:sshport\]/],
      ['a:99999', /^nodes\.txt:1: "a:99999" is not .*port is out of range/],
      ['', /^nodes\.txt lists no nodes$/, /local for this machine/],
      ['# only comments\n   \n', /^nodes\.txt lists no nodes$/],
    ];
    for (const [text, message, next] of rows) {
      assert.throws(
        () => parseClusterFile(text, 'nodes.txt'),
        (e: unknown) => e instanceof UserError && message.test(e.message) && (!next || next.test(e.next.join('\n'))),
        JSON.stringify(text),
      );
    }
  });
});

describe('plan --cluster (the CLI)', { timeout: 60_000 }, () => {
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, ...args]);

  it('plans over the nodes of a cluster file, budgets included; --nodes @FILE is the same', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 8 });
    const file = join(work, 'lab.txt');
    writeFileSync(file, '# two boxes\nalice@gpu1:2222 mem=1G\n\ngpu2 mem=2G # the bigger one\n');
    const out = (await run('plan', model, '--cluster', file)).stdout;
    assert.match(out, /^Node 0: gpu1 \(embeddings, output\) Layers: 0 - \d, Estimated Memory: ~[\d.]+ MB of 1\.0 GB$/m);
    assert.match(out, /^Node 1: gpu2 Layers: \d - 7, Estimated Memory: ~[\d.]+ MB of 2\.0 GB$/m);
    const json = JSON.parse((await run('plan', model, '--nodes', `@${file}`, '--json')).stdout) as { plan: { nodes: { name: string; budget: number }[] } };
    assert.deepEqual(json.plan.nodes.map((n) => [n.name, n.budget]), [['gpu1', 1e9], ['gpu2', 2e9]]);
  });

  it('a bad line, a missing file and --cluster with --nodes are refused with what to do', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 8 });
    const bad = join(work, 'bad.txt');
    writeFileSync(bad, 'gpu1 mem=1G\ngpu2 ram=2G\n');
    const fails = (args: string[]) => run(...args).then(() => assert.fail(`${args.join(' ')} succeeded`), (e: { code?: number; stderr?: string }) => e);
    const e1 = await fails(['plan', model, '--cluster', bad]);
    assert.equal(e1.code, 2);
    assert.match(e1.stderr ?? '', new RegExp(`error: ${bad}:2: unknown key "ram"[\\s\\S]*what to do:[\\s\\S]*known keys: mem`));
    const e2 = await fails(['plan', model, '--cluster', join(work, 'nope.txt')]);
    assert.match(e2.stderr ?? '', /error: cluster file .*nope\.txt does not exist/);
    const e3 = await fails(['plan', model, '--cluster', bad, '--nodes', 'a,b']);
    assert.equal(e3.code, 2);
    assert.match(e3.stderr ?? '', /mutually exclusive/);
  });
});
