import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planLaunch, type LaunchInput, type LaunchNode } from '../../src/runtime/launch-plan.js';
import { STAGE_READY_LINE } from '../../src/runtime/readiness.js';
import { rankArgv, runtimeArgs } from '../../src/runtime/server-argv.js';

const node = (name: string, stageHost: string): LaunchNode => ({ name, stageHost, binary: '/opt/lr/llama-server', model: '/m/model.gguf' });

const input = (over: Partial<LaunchInput> = {}): LaunchInput => ({
  ranks: [
    { node: node('local', '10.0.0.1'), layerStart: 0, layerEnd: 10 },
    { node: node('alice@10.0.0.5', '10.0.0.5'), layerStart: 10, layerEnd: 20 },
    { node: node('bob@gpu-box', '10.0.0.7'), layerStart: 20, layerEnd: 32 },
  ],
  stagePorts: [47100, 47101, 47102],
  api: { host: '127.0.0.1', port: 8000 },
  runtime: { ctx: 4096, parallel: 1, threads: 4 },
  runName: 'run1',
  ...over,
});

describe('runtimeArgs', () => {
  const table: [Parameters<typeof runtimeArgs>[0], string[]][] = [
    [{ ctx: 2048, parallel: 1 }, ['-c', '2048', '-np', '1']],
    [{ ctx: 4096, parallel: 4, kvUnified: true }, ['-c', '4096', '-np', '4', '--kv-unified']],
    [
      { ctx: 512, parallel: 2, threads: 2, threadsBatch: 2, ubatch: 256, batch: 512, cacheType: 'q8_0', flashAttn: 'off', swaFull: true },
      ['-c', '512', '-np', '2', '-t', '2', '-tb', '2', '-b', '512', '-ub', '256', '--swa-full', '-ctk', 'q8_0', '-ctv', 'q8_0', '-fa', 'off'],
    ],
  ];
  for (const [rt, want] of table) it(JSON.stringify(rt), () => assert.deepEqual(runtimeArgs(rt), want));
});

describe('rankArgv', () => {
  const base = { binary: 'llama-server', model: 'm.gguf', listen: '127.0.0.1:1', next: '127.0.0.1:2', runtime: { ctx: 64, parallel: 1 } };
  it('head: stage flags plus HTTP', () => {
    assert.deepEqual(rankArgv({ ...base, layers: [0, 4], http: { host: '127.0.0.1', port: 8000 }, stageTimeoutSeconds: 30 }), [
      'llama-server', '-m', 'm.gguf', '--layer-range', '0:4', '--stage-listen', '127.0.0.1:1', '--stage-next', '127.0.0.1:2',
      '-c', '64', '-np', '1', '--stage-timeout', '30', '--host', '127.0.0.1', '--port', '8000', '--no-webui',
    ]);
  });
  it('worker: no HTTP flags, secret file path but never the secret', () => {
    const argv = rankArgv({ ...base, layers: [4, 8], secretFile: '/run/s' });
    assert.ok(!argv.includes('--port'));
    assert.deepEqual(argv.slice(-2), ['--stage-secret-file', '/run/s']);
  });
  it('refuses an empty or negative range', () => {
    assert.throws(() => rankArgv({ ...base, layers: [4, 4] }), { name: 'BugError', message: 'bad layer range 4:4' });
    assert.throws(() => rankArgv({ ...base, layers: [-1, 4] }), { name: 'BugError', message: 'bad layer range -1:4' });
  });
  it('engine switches: each flag only where asked, in a fixed place', () => {
    const head = { ...base, layers: [0, 4] as const, http: { host: '127.0.0.1', port: 8000 } };
    const tail = (argv: string[]) => argv.slice(argv.indexOf('--no-webui') + 1);
    assert.deepEqual(tail(rankArgv(head)), []);
    assert.deepEqual(tail(rankArgv({ ...head, noMicrobatch: true })), ['--stage-no-microbatch']);
    assert.deepEqual(tail(rankArgv({ ...head, noPipeline: true, noEncrypt: true, noMicrobatch: true })), ['--stage-no-pipeline', '--stage-no-encrypt', '--stage-no-microbatch']);
    assert.deepEqual(tail(rankArgv({ ...head, groups: 1 })), ['--stage-groups', '1']);
    assert.deepEqual(tail(rankArgv({ ...head, groups: 0 })), ['--stage-groups', '0'], '0 is passed, not taken for unset');
    assert.deepEqual(tail(rankArgv({ ...head, noMicrobatch: true, groups: 3 })), ['--stage-no-microbatch', '--stage-groups', '3']);
    assert.ok(!rankArgv({ ...base, layers: [4, 8], groups: 2 }).includes('--stage-groups'), 'a worker never gets it');
    assert.deepEqual(tail(rankArgv({ ...head, groups: 2, batchGroupsFrom: 8 })), ['--stage-groups', '2', '--stage-batch-groups', '8']);
    assert.deepEqual(tail(rankArgv({ ...head, batchGroupsFrom: 0 })), [], '0 is the engine default: not passed');
    assert.ok(!rankArgv({ ...base, layers: [4, 8], batchGroupsFrom: 8 }).includes('--stage-batch-groups'), 'a worker never gets it');
  });
  it('recognises the worker ready line', () => {
    const m = STAGE_READY_LINE.exec('llama-relay: stage ready layers=4:8 listen=127.0.0.1:47101');
    assert.deepEqual(m?.slice(1), ['4', '8', '127.0.0.1:47101']);
  });
  it('recognises it after another log entry\'s prefix on the same line (the engine\'s log thread writes prefix and text apart)', () => {
    const m = STAGE_READY_LINE.exec('0.01.234.567 I llama-relay: stage ready layers=1:18 listen=127.0.0.1:47101');
    assert.deepEqual(m?.slice(1), ['1', '18', '127.0.0.1:47101']);
  });
});

describe('planLaunch', () => {
  it('starts downstream first and closes the ring on the head', () => {
    const plan = planLaunch(input());
    assert.deepEqual(plan.map((p) => p.rank), [2, 1, 0]);
    const byRank = new Map(plan.map((p) => [p.rank, p]));
    assert.equal(byRank.get(0)!.next, '10.0.0.5:47101');
    assert.equal(byRank.get(1)!.next, '10.0.0.7:47102');
    assert.equal(byRank.get(2)!.next, '10.0.0.1:47100', 'last rank returns to the head');
    assert.equal(byRank.get(1)!.listen, '10.0.0.5:47101', 'binds to the address the chain uses, not 0.0.0.0');
    assert.deepEqual(byRank.get(0)!.readiness, { kind: 'http-health', host: '127.0.0.1', port: 8000 });
    assert.deepEqual(byRank.get(2)!.readiness, { kind: 'stage-ready-line', layers: [20, 32] });
    assert.deepEqual(plan.map((p) => p.wrapperName), ['run1-rank2', 'run1-rank1', 'run1-rank0']);
    assert.ok(plan.every((p) => p.argv.join(' ').includes('-c 4096 -np 1 -t 4')), 'identical runtime on every rank');
    assert.ok(byRank.get(0)!.argv.includes('--port'));
    assert.ok(!byRank.get(1)!.argv.includes('--port'));
  });

  it('--no-microbatch goes to the head only; on by default (no flag)', () => {
    const flagged = (over: Partial<LaunchInput>) => planLaunch(input(over)).filter((p) => p.argv.includes('--stage-no-microbatch')).map((p) => p.rank);
    assert.deepEqual(flagged({ microbatch: false }), [0]);
    assert.deepEqual(flagged({}), []);
    assert.deepEqual(flagged({ microbatch: true }), []);
    // The other switches are independent of it.
    const plan = planLaunch(input({ microbatch: false, pipeline: false, encrypt: false }));
    assert.deepEqual(plan.filter((p) => p.argv.includes('--stage-no-pipeline')).map((p) => p.rank), [0]);
    assert.deepEqual(plan.filter((p) => p.argv.includes('--stage-no-encrypt')).map((p) => p.rank), [2, 1, 0]);
  });

  it('--groups goes to the head only, as --stage-groups; the engine default unless given', () => {
    const flagged = (over: Partial<LaunchInput>) =>
      planLaunch(input(over)).filter((p) => p.argv.includes('--stage-groups')).map((p) => [p.rank, p.argv[p.argv.indexOf('--stage-groups') + 1]]);
    assert.deepEqual(flagged({ groups: 1 }), [[0, '1']]);
    assert.deepEqual(flagged({ groups: 0 }), [[0, '0']]);
    assert.deepEqual(flagged({ groups: 4, microbatch: false }), [[0, '4']]);
    assert.deepEqual(flagged({}), []);
  });

  it('--batch-groups goes to the head only, as --stage-batch-groups', () => {
    const flagged = (over: Partial<LaunchInput>) =>
      planLaunch(input(over)).filter((p) => p.argv.includes('--stage-batch-groups')).map((p) => [p.rank, p.argv[p.argv.indexOf('--stage-batch-groups') + 1]]);
    assert.deepEqual(flagged({ batchGroupsFrom: 8 }), [[0, '8']]);
    assert.deepEqual(flagged({ batchGroupsFrom: 0 }), []);
    assert.deepEqual(flagged({}), []);
  });

  it('--resume-timeout reaches the head only, as --stage-resume-timeout', () => {
    const plan = planLaunch(input({ resumeTimeoutSeconds: 0 }));
    const byRank = new Map(plan.map((p) => [p.rank, p]));
    assert.ok(byRank.get(0)!.argv.join(' ').includes('--stage-resume-timeout 0'));
    assert.ok(plan.filter((p) => p.rank > 0).every((p) => !p.argv.includes('--stage-resume-timeout')));
    assert.ok(planLaunch(input()).every((p) => !p.argv.includes('--stage-resume-timeout')), 'the engine default unless given');
  });

  it('tunnelled links: each rank dials its own tunnel instead of the next listen address', () => {
    const plan = planLaunch(input({ links: ['127.0.0.1:5001', '127.0.0.1:5002', '127.0.0.1:5003'] }));
    const byRank = new Map(plan.map((p) => [p.rank, p]));
    assert.equal(byRank.get(0)!.next, '127.0.0.1:5001');
    assert.equal(byRank.get(2)!.next, '127.0.0.1:5003');
    assert.ok(byRank.get(2)!.argv.join(' ').includes('--stage-next 127.0.0.1:5003'));
    assert.throws(() => planLaunch(input({ links: ['x:1'] })), { name: 'BugError', message: 'need 3 links, got 1' });
  });

  it('brackets IPv6 stage addresses', () => {
    const p = planLaunch(input({ ranks: [{ node: node('local', '::1'), layerStart: 0, layerEnd: 4 }], stagePorts: [5] }));
    assert.equal(p[0]!.listen, '[::1]:5');
    assert.equal(p[0]!.next, '[::1]:5', 'a single rank rings to itself');
  });

  const bad: [string, Partial<LaunchInput>, string][] = [
    ['gap in layers', { ranks: [{ node: node('a', 'h'), layerStart: 0, layerEnd: 4 }, { node: node('b', 'h'), layerStart: 5, layerEnd: 8 }], stagePorts: [1, 2] }, 'rank 1: layers 5:8 do not continue the chain at 4'],
    ['not starting at 0', { ranks: [{ node: node('a', 'h'), layerStart: 1, layerEnd: 4 }], stagePorts: [1] }, 'rank 0: layers 1:4 do not continue the chain at 0'],
    ['port count', { stagePorts: [1] }, 'need 3 stage ports, got 1'],
    ['no ranks', { ranks: [], stagePorts: [] }, 'no ranks to launch'],
  ];
  // The class and the whole message: a TypeError from a typo in the planner must not pass as a refusal.
  for (const [name, over, message] of bad) it(`refuses: ${name}`, () => assert.throws(() => planLaunch(input(over)), { name: 'BugError', message }));
});
