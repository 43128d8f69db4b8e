// Manual placement (--split, --layers-per-node, layers= in a cluster file): the pure parser and checker table-style,
// the planner's memory check of a given split, and `plan` taking each form end to end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { UserError } from '../../src/errors.js';
import { parseClusterFile } from '../../src/plan/cluster-file.js';
import { formatSplit, manualSplitFrom, parseLayersPerNode, parseSplit, resolveSplit } from '../../src/plan/manual-split.js';
import { makeFixture } from '../helpers/fixtures.js';

const cli = new URL('../../bin/llama-relay.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'lr-split-'));
after(() => rmSync(work, { recursive: true, force: true }));

const refuses = (f: () => unknown, message: RegExp, next?: RegExp, label?: string) =>
  assert.throws(f, (e: unknown) => e instanceof UserError && message.test(e.message) && (!next || next.test(e.next.join('\n'))), label ?? message.source);

describe('manual split: parse and check', () => {
  it('ranges and counts that tile the model give the same ranges', () => {
    const rows: [string, 'split' | 'counts', number, number, string][] = [
      ['0:4,4:18', 'split', 2, 18, '0:4,4:18'],
      [' 0:4 , 4 : 18 ', 'split', 2, 18, '0:4,4:18'],
      ['4,14', 'counts', 2, 18, '0:4,4:18'],
      ['0:18', 'split', 1, 18, '0:18'],
      ['18', 'counts', 1, 18, '0:18'],
      ['1,1,1', 'counts', 3, 3, '0:1,1:2,2:3'],
      ['0:10,10:20,20:30', 'split', 3, 30, '0:10,10:20,20:30'],
    ];
    for (const [text, kind, nodes, layers, want] of rows) {
      const split = kind === 'split' ? parseSplit(text) : parseLayersPerNode(text);
      assert.equal(formatSplit(resolveSplit(split, nodes, layers)), want, text);
    }
  });

  it('bad syntax is refused before any model is read, naming the entry', () => {
    const rows: [() => unknown, RegExp, RegExp?][] = [
      [() => parseSplit('0-4,4-18'), /^--split: node 0's entry "0-4" is not start:end$/, /--split 0:4,4:18/],
      [() => parseSplit('0:4,,4:18'), /^--split "0:4,,4:18" has an empty entry$/],
      [() => parseSplit(''), /^--split "" has an empty entry$/],
      [() => parseSplit('0:4,4:4'), /^--split: node 1's range 4:4 holds no layers/, /4:5 is layer 4 alone/],
      [() => parseSplit('0:4,6:2'), /^--split: node 1's range 6:2 holds no layers/],
      [() => parseSplit('0:4,a:18'), /node 1's entry "a:18" is not start:end/],
      [() => parseLayersPerNode('4,0'), /^--layers-per-node: node 1 gets zero layers/, /drop the node/],
      [() => parseLayersPerNode('4,-1'), /node 1's count "-1" is not a whole number/],
      [() => parseLayersPerNode('4,2.5'), /node 1's count "2.5" is not a whole number/],
      [() => parseLayersPerNode('4,'), /has an empty entry/],
    ];
    for (const [f, message, next] of rows) refuses(f, message, next);
  });

  it('a split that does not fit the nodes or the model names the gap, overlap, count or range', () => {
    const rows: [string, 'split' | 'counts', number, number, RegExp, RegExp?][] = [
      ['0:4,4:18', 'split', 3, 18, /^--split gives 2 ranges but there are 3 nodes$/, /one entry per node/],
      ['0:18', 'split', 2, 18, /^--split gives 1 range but there are 2 nodes$/],
      ['4,14', 'counts', 1, 18, /^--layers-per-node gives 2 counts but there is 1 node$/],
      ['0:4,6:18', 'split', 2, 18, /^--split leaves a gap: layers 4-5 between node 0 \(0:4\) and node 1 \(6:18\) have no node$/, /start node 1's range at 4/],
      ['2:4,4:18', 'split', 2, 18, /^--split starts at layer 2, so layers 0-1 have no node$/],
      ['0:5,4:18', 'split', 2, 18, /^--split: node 1 \(4:18\) overlaps node 0 \(0:5\) on layers 4-4$/, /start node 1's range at 5/],
      ['0:10,2:18', 'split', 2, 18, /overlaps node 0 \(0:10\) on layers 2-9/],
      ['0:4,4:20', 'split', 2, 18, /^--split: node 1's range 4:20 goes past the model's 18 layers \(the last is layer 17\)$/, /end the last range at 18/],
      ['0:4,4:16', 'split', 2, 18, /^--split ends at layer 16 but the model has 18 layers: layers 16-17 have no node$/],
      ['4,10', 'counts', 2, 18, /^--layers-per-node 4,10 adds up to 14 layers but the model has 18$/, /4 more layers/],
      ['4,15', 'counts', 2, 18, /adds up to 19 layers but the model has 18/, /take 1 layer away/],
    ];
    for (const [text, kind, nodes, layers, message, next] of rows) {
      const split = kind === 'split' ? parseSplit(text) : parseLayersPerNode(text);
      refuses(() => resolveSplit(split, nodes, layers), message, next, `${text} on ${nodes} nodes, ${layers} layers`);
    }
  });

  it('the cluster file carries layers= per line: on every line or none; only one way to place layers at a time', () => {
    const specs = parseClusterFile('local mem=1G layers=4\nbob@b layers=14\n', 'c.txt');
    assert.deepEqual(specs.map((s) => s.layers), [4, 14]);
    const split = manualSplitFrom({ nodeLayers: specs.map((s) => s.layers) });
    assert.equal(formatSplit(resolveSplit(split!, 2, 18)), '0:4,4:18');
    refuses(() => manualSplitFrom({ nodeLayers: [4, undefined, 3] }), /gives layers= for some nodes but not for node 1$/, /every line a layers= count, or none/);
    refuses(() => manualSplitFrom({ split: '0:4,4:18', nodeLayers: [4, 14] }), /^--split and layers= in the cluster file both place layers/);
    refuses(() => parseClusterFile('a layers=0\n', 'c.txt'), /^c\.txt:1: layers=0: every node/);
    refuses(() => parseClusterFile('a layers=x\n', 'c.txt'), /^c\.txt:1: layers "x" is not a whole number/);
    refuses(() => resolveSplit(manualSplitFrom({ nodeLayers: [4, 4] })!, 2, 18), /^layers= in the cluster file 4,4 adds up to 8 layers but the model has 18$/);
    assert.equal(manualSplitFrom({ nodeLayers: [undefined, undefined] }), undefined);
  });
});

describe('plan with a manual split (the CLI)', { timeout: 60_000 }, () => {
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, ...args]);
  const fails = (args: string[]) => run(...args).then(() => assert.fail(`${args.join(' ')} succeeded`), (e: { code?: number; stderr?: string }) => e);

  it('--split, --layers-per-node and layers= each give the ranges asked for, and the plan says so', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 8 });
    const out = (await run('plan', model, '-n', '2', '--split', '0:6,6:8')).stdout;
    assert.match(out, /^Placement: as given \(manual split\)$/m);
    assert.match(out, /^Node 0: \(embeddings, output\) Layers: 0 - 5, /m);
    assert.match(out, /^Node 1: Layers: 6 - 7, /m);
    const json = JSON.parse((await run('plan', model, '--nodes', 'a,b,c', '--layers-per-node', '1,2,5', '--json')).stdout) as {
      plan: { placement: string; nodes: { layerStart: number; layerEnd: number }[] };
    };
    assert.equal(json.plan.placement, 'manual');
    assert.deepEqual(json.plan.nodes.map((n) => [n.layerStart, n.layerEnd]), [[0, 1], [1, 3], [3, 8]]);
    const file = join(work, 'lab.txt');
    writeFileSync(file, 'a layers=7\nb layers=1\n');
    assert.match((await run('plan', model, '--cluster', file)).stdout, /^Node 1: b Layers: 7 - 7, /m);
    assert.match((await run('plan', model, '-n', '2')).stdout, /^Placement: balanced on memory \(no speed measurements\)$/m);
  });

  it('a bad split, a split over a budget, and both flags are refused with what to do', async () => {
    const model = await makeFixture({ arch: 'llama', layers: 8 });
    const e1 = await fails(['plan', model, '-n', '2', '--split', '0:3,4:8']);
    assert.equal(e1.code, 2);
    assert.match(e1.stderr ?? '', /error: --split leaves a gap: layers 3-3 between node 0 \(0:3\) and node 1 \(4:8\) have no node[\s\S]*start node 1's range at 3/);
    const e2 = await fails(['plan', model, '--nodes', 'a=1G,b=10M', '--layers-per-node', '1,7']);
    assert.match(e2.stderr ?? '', /error: the split does not fit:\n\s+node 1 \(b\): layers 1:8 need ~[\d.]+ MB but its budget is 10\.0 MB/);
    const e3 = await fails(['plan', model, '-n', '2', '--split', '0:4,4:8', '--layers-per-node', '4,4']);
    assert.match(e3.stderr ?? '', /mutually exclusive/);
    const e4 = await fails(['plan', model, '-n', '3', '--layers-per-node', '4,4']);
    assert.match(e4.stderr ?? '', /--layers-per-node gives 2 counts but there are 3 nodes/);
  });
});
