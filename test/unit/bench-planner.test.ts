// bench: node lists, layer splits, configurations, the RPC split and launch plans, all as data before anything runs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BenchConfig, BenchOptions, BenchRuntime } from '../../src/bench/bench-config.js';
import { benchNodes, budgetsIgnored, checkRemoteFlags, parseCountList } from '../../src/bench/bench-nodes.js';
import { contextSize, planConfigs } from '../../src/bench/config-planner.js';
import { benchPlacements } from '../../src/bench/bench-placement.js';
import { planModel } from '../helpers/plan-model.js';
import { planConfigLaunch as planLaunch, portNodes, portsNeeded, type LaunchInput, type RankSite } from '../../src/bench/config-launch.js';
import { parseBuildOutput } from '../../src/provision/llama-builds.js';
import { banByteTokens, buildPrompt } from '../../src/bench/prompt-tokens.js';
import { llamaCppLayerDevice, rpcSplit } from '../../src/runtime/rpc-split.js';
import { parseListeningPorts, pickPorts } from '../../src/runtime/remote-ports.js';
import { pinToCore } from '../../src/runtime/server-argv.js';
import { UserError } from '../../src/errors.js';
import { evenSplit } from '../../src/runtime/even-split.js';
import { STAGE_READY_LINE } from '../../src/runtime/readiness.js';
import { parseNodeSpec } from '../../src/plan/node-spec.js';

const options = (o: Partial<BenchOptions> = {}): BenchOptions => ({
  nodes: benchNodes(undefined, 3),
  promptTokens: [512, 2048],
  genTokens: 128,
  parallel: [1, 4],
  repeat: 3,
  linkLatencyMs: 0,
  threads: 1,
  taskset: false,
  cores: 2,
  rpc: true,
  stock: true,
  ...o,
});

describe('benchNodes and count lists', () => {
  it('takes a count or a list of local nodes', () => {
    assert.deepEqual(benchNodes(undefined, 2).map((n) => n.name), ['local0', 'local1']);
    assert.equal(benchNodes('local,localhost,127.0.0.1', undefined).length, 3);
  });
  it('takes remote nodes as `up` does: [user@]host[:port] over ssh, local ones by name', () => {
    const n = benchNodes('local, alice@gpu1:2222,gpu2', undefined);
    assert.deepEqual(n.map((x) => [x.name, x.kind]), [['local0', 'local'], ['alice@gpu1:2222', 'ssh'], ['gpu2', 'ssh']]);
    const gpu1 = n[1]!;
    assert.ok(gpu1.kind === 'ssh');
    assert.deepEqual([gpu1.spec.user, gpu1.spec.host, gpu1.spec.port], ['alice', 'gpu1', 2222]);
  });
  it('takes the specs of a cluster file, and names the memory budgets it does not use', () => {
    const specs = [parseNodeSpec('local=8G'), parseNodeSpec('alice@gpu1:2222=24G'), parseNodeSpec('gpu2')];
    assert.deepEqual(benchNodes(specs, undefined).map((x) => [x.name, x.kind]), [['local0', 'local'], ['alice@gpu1:2222', 'ssh'], ['gpu2', 'ssh']]);
    assert.deepEqual(budgetsIgnored(specs), ['local', 'alice@gpu1:2222']);
    assert.deepEqual(budgetsIgnored('local,gpu1=24G'), ['gpu1']);
    assert.deepEqual(benchNodes('local,gpu1=24G', undefined).map((x) => x.name), ['local0', 'gpu1']);
  });
  it('refuses malformed nodes, both flags, no flag, and bad counts with a next step', () => {
    assert.throws(() => benchNodes('local,bad host', undefined), UserError);
    assert.throws(() => benchNodes('local', 2), UserError);
    assert.throws(() => benchNodes(undefined, undefined), (e: unknown) => e instanceof UserError && e.next.length > 0);
    assert.throws(() => benchNodes(undefined, 0), UserError);
    assert.throws(() => benchNodes([], undefined), UserError);
  });
  it('refuses --link-latency-ms and --taskset once a node is remote, naming it; allows them on local nodes', () => {
    const remote = benchNodes('local,gpu1', undefined);
    assert.throws(
      () => checkRemoteFlags(remote, { linkLatencyMs: 5, taskset: false }),
      (e: unknown) => e instanceof UserError && /--link-latency-ms/.test(e.message) && /gpu1/.test(e.message) && /drop --link-latency-ms/.test(e.next.join()),
    );
    assert.throws(() => checkRemoteFlags(remote, { linkLatencyMs: 0, taskset: true }), (e: unknown) => e instanceof UserError && /--taskset/.test(e.message));
    assert.doesNotThrow(() => checkRemoteFlags(remote, { linkLatencyMs: 0, taskset: false }));
    assert.doesNotThrow(() => checkRemoteFlags(benchNodes(undefined, 3), { linkLatencyMs: 5, taskset: true }));
  });
  it('parses comma-separated positive integers', () => {
    assert.deepEqual(parseCountList('--prompt-tokens', '512, 2048'), [512, 2048]);
    assert.deepEqual(parseCountList('--parallel', 4), [4]);
    for (const bad of ['', '0', '1,x', '2.5', '-1']) assert.throws(() => parseCountList('--parallel', bad), UserError, bad);
  });
});

describe('rpcSplit', () => {
  it('gives -ngl, -ts and -dev for the remote ranges', () => {
    const s = rpcSplit(evenSplit(18, 3), 18);
    assert.deepEqual({ ...s, overrides: [] }, { gpuLayers: 13, tensorSplit: [6, 7], devices: ['RPC0', 'RPC1'], overrides: [] });
    assert.ok(s.overrides.includes('^output\\.weight=CPU'));
  });
  it("reproduces the chain's split under llama.cpp's layer assignment, output layer on the head", () => {
    for (let layers = 2; layers <= 64; layers++) {
      for (let n = 2; n <= Math.min(layers, 6); n++) {
        const ranges = evenSplit(layers, n);
        const split = rpcSplit(ranges, layers);
        for (let il = 0; il <= layers; il++) {
          // The output layer lands on the last device, and -ot puts its tensors back on the head.
          const want = il === layers ? n - 2 : ranges.findIndex(([a, b]) => il >= a && il < b) - 1;
          assert.equal(llamaCppLayerDevice(il, layers, split), want, `L=${layers} n=${n} layer ${il}`);
        }
      }
    }
  });
});

describe('benchPlacements', () => {
  // 20 layers of 100 MB and a 400 MB output matrix (plan-model.ts): by bytes the head's output weighs 4 layers.
  const ranges = (m: ReturnType<typeof benchPlacements>, k: number) => m.get(k)!.ranges.map(([a, b]) => `${a}:${b}`).join(',');
  it('without measurements: ranks of one speed, the output counted by its bytes', () => {
    const m = benchPlacements(planModel(), 3, 4, () => undefined);
    assert.deepEqual([ranges(m, 2), ranges(m, 3)], ['0:8,8:20', '0:4,4:12,12:20']);
    assert.ok(!m.get(2)!.measured && !m.get(3)!.measured);
  });
  it('with the speeds plan --probe measured: the split up launches on them (a cheap measured output moves layers to the head)', () => {
    // Measured: 1 ns a byte (100 ms a layer), the head's output part 50 ms (half a layer, not its bytes' 4 layers).
    const speed = { secondsPerByte: 1e-9, outputSeconds: 0.05 };
    const m = benchPlacements(planModel(), 3, 4, (k) => (k === 2 ? { speeds: [speed, speed], links: 0 } : undefined));
    assert.equal(ranges(m, 2), '0:10,10:20'); // stages 1.05 s and 1 s (0:9: 1.1 s)
    assert.ok(m.get(2)!.measured);
    assert.equal(ranges(m, 3), '0:4,4:12,12:20', 'a count not measured for every node stays one-speed');
    assert.ok(!m.get(3)!.measured);
    // At one slot the objective is the time per token: equal speeds cost the same anywhere; the stages break the tie.
    assert.equal(ranges(benchPlacements(planModel(), 2, 1, () => ({ speeds: [speed, speed], links: 0 })), 2), '0:10,10:20');
  });
});

describe('planConfigs', () => {
  it('a placement per rank count (the split up launches) is used by every K-rank configuration; the user\'s split wins for N', () => {
    const placement = new Map<number, [number, number][]>([[2, [[0, 5], [5, 18]]], [3, [[0, 2], [2, 10], [10, 18]]]]);
    const c = planConfigs(options({ placement }), 18);
    for (const id of ['chain-2']) assert.deepEqual(c.find((x) => x.id === id)!.ranks.map((r) => r.layers), [[0, 5], [5, 18]]);
    for (const id of ['chain-3', 'chain-3-nomb', 'chain-3-nogroups', 'rpc-3']) assert.deepEqual(c.find((x) => x.id === id)!.ranks.map((r) => r.layers), [[0, 2], [2, 10], [10, 18]], id);
    const given = planConfigs(options({ placement, split: [[0, 6], [6, 12], [12, 18]] }), 18);
    assert.deepEqual(given.find((x) => x.id === 'chain-3')!.ranks.map((r) => r.layers), [[0, 6], [6, 12], [12, 18]]);
    assert.deepEqual(given.find((x) => x.id === 'chain-2')!.ranks.map((r) => r.layers), [[0, 5], [5, 18]]);
    assert.deepEqual(planConfigs(options(), 18).find((x) => x.id === 'chain-2')!.ranks.map((r) => r.layers), [[0, 9], [9, 18]], 'no placement: even');
  });
  it('plans stock, chain-1..N, chain-N-nopipe, chain-N-noenc, chain-N-nomb, chain-N-nogroups and rpc-N with even splits', () => {
    const c = planConfigs(options(), 18);
    assert.deepEqual(c.map((x) => x.id), ['stock', 'chain-1', 'chain-2', 'chain-3', 'chain-3-nopipe', 'chain-3-noenc', 'chain-3-nomb', 'chain-3-nogroups', 'rpc-3']);
    assert.deepEqual(c.find((x) => x.id === 'chain-2')!.ranks.map((r) => r.layers), [[0, 9], [9, 18]]);
    assert.deepEqual(c.map((x) => x.hops), [0, 0, 2, 3, 3, 3, 3, 3, 4]);
    assert.equal(c.find((x) => x.id === 'chain-3-nopipe')!.pipeline, false);
    assert.equal(c.find((x) => x.id === 'chain-3-noenc')!.encrypt, false);
    const nomb = c.find((x) => x.id === 'chain-3-nomb')!;
    assert.deepEqual([nomb.microbatch, nomb.pipeline, nomb.encrypt, nomb.description], [false, true, undefined, 'llama-relay chain, 3 ranks, micro-batched decode off']);
    assert.ok(c.filter((x) => x.id !== 'chain-3-nomb').every((x) => x.microbatch === undefined), 'only the nomb variant turns it off');
    const nogroups = c.find((x) => x.id === 'chain-3-nogroups')!;
    assert.deepEqual([nogroups.groups, nogroups.microbatch, nogroups.pipeline, nogroups.encrypt, nogroups.description], [1, undefined, true, undefined, 'llama-relay chain, 3 ranks, slot groups off']);
    assert.ok(c.filter((x) => x.id !== 'chain-3-nogroups').every((x) => x.groups === undefined), 'only the nogroups variant sets groups');
    assert.ok(c.every((x) => x.ranks.every((r, i) => r.node === i && r.core === undefined)));
  });
  it('drops stock and rpc on request, and has no rpc or nopipe with one node', () => {
    assert.deepEqual(planConfigs(options({ rpc: false, stock: false }), 6).map((x) => x.id), ['chain-1', 'chain-2', 'chain-3', 'chain-3-nopipe', 'chain-3-noenc', 'chain-3-nomb', 'chain-3-nogroups']);
    assert.deepEqual(planConfigs(options({ nodes: benchNodes(undefined, 1) }), 6).map((x) => x.id), ['stock', 'chain-1']);
  });
  it('--groups N reaches every chain of 2+ ranks (as up --groups N); chain-N-nogroups stays at 1', () => {
    const c = planConfigs(options({ groups: 2 }), 6);
    assert.deepEqual(c.map((x) => [x.id, x.groups]), [
      ['stock', undefined], ['chain-1', undefined], ['chain-2', 2], ['chain-3', 2], ['chain-3-nopipe', 2], ['chain-3-noenc', 2], ['chain-3-nomb', 2], ['chain-3-nogroups', 1], ['rpc-3', undefined],
    ]);
  });
  it('batched groups reach the chains of their rank count; chain-N-nobatch joins the default set only where the N-rank chain batches', () => {
    const c = planConfigs(options({ batchGroups: new Map([[2, 8], [3, 12]]) }), 6);
    assert.deepEqual(c.map((x) => [x.id, x.batchGroupsFrom]), [
      ['stock', undefined], ['chain-1', undefined], ['chain-2', 8], ['chain-3', 12], ['chain-3-nopipe', 12], ['chain-3-noenc', 12], ['chain-3-nomb', 12], ['chain-3-nogroups', 12], ['chain-3-nobatch', 0], ['rpc-3', undefined],
    ]);
    assert.equal(c.find((x) => x.id === 'chain-3-nobatch')!.description, 'llama-relay chain, 3 ranks, batched groups off');
    assert.ok(!planConfigs(options({}), 6).some((x) => x.id.endsWith('-nobatch')), 'no chain batches: nothing to turn off');
    assert.ok(!planConfigs(options({ batchGroups: new Map([[3, 0]]) }), 6).some((x) => x.id.endsWith('-nobatch')));
  });
  it('pins rank i to core i mod cores with --taskset', () => {
    const c = planConfigs(options({ taskset: true, cores: 2 }), 6);
    assert.deepEqual(c.find((x) => x.id === 'chain-3')!.ranks.map((r) => r.core), [0, 1, 0]);
    // pinned, ranks can have cores of their own: the busy-poll variant joins the default set
    assert.deepEqual(c.filter((x) => x.id.startsWith('chain-3-')).map((x) => x.id), ['chain-3-nopipe', 'chain-3-noenc', 'chain-3-nomb', 'chain-3-nogroups', 'chain-3-nopoll']);
    assert.equal(c.find((x) => x.id === 'chain-3-nopoll')!.poll, false);
    assert.deepEqual(c.find((x) => x.id === 'stock')!.ranks.map((r) => r.core), [0]);
  });
  it('filters with --only and names the valid ids when one is unknown', () => {
    assert.deepEqual(planConfigs(options({ only: ['chain-3', 'chain-3-nopipe'] }), 6).map((x) => x.id), ['chain-3', 'chain-3-nopipe']);
    assert.throws(() => planConfigs(options({ only: ['chain-9'] }), 6), (e: unknown) => e instanceof UserError && /chain-3-nopipe/.test(e.next.join()));
  });
  it('--only names smaller variants and RPC too, in report order, once each; refuses what the nodes cannot run', () => {
    const c = planConfigs(options({ only: ['chain-2-nomb', 'rpc-2', 'chain-2-nogroups', 'chain-2', 'stock', 'chain-3-nomb', 'chain-2'] }), 6);
    assert.deepEqual(c.map((x) => x.id), ['stock', 'chain-2', 'chain-2-nomb', 'chain-2-nogroups', 'chain-3-nomb', 'rpc-2']);
    assert.deepEqual(c.map((x) => x.ranks.length), [1, 2, 2, 2, 3, 2]);
    assert.equal(c[2]!.microbatch, false);
    assert.equal(c[2]!.hops, 2);
    assert.equal(c[3]!.groups, 1);
    // --only decides, whatever --no-rpc/--no-stock say about the default set.
    assert.deepEqual(planConfigs(options({ only: ['rpc-3', 'stock'], rpc: false, stock: false }), 6).map((x) => x.id), ['stock', 'rpc-3']);
    for (const bad of ['chain-1-nomb', 'chain-1-nogroups', 'rpc-1', 'chain-4', 'chain-2-nope', 'chain-02', 'Chain-2']) {
      assert.throws(
        () => planConfigs(options({ only: ['chain-2', bad] }), 6),
        (e: unknown) => e instanceof UserError && e.message === `unknown configuration(s): ${bad}` && /chain-K-\{nopipe,noenc,nomb,nogroups,nopoll,nobatch\}/.test(e.next.join()),
        bad,
      );
    }
  });
  it('a user split (--split, --layers-per-node) places the N-rank configurations; smaller chains stay even', () => {
    const split = [[0, 1], [1, 3], [3, 9]] as const;
    const byId = new Map(planConfigs(options({ split }), 9).map((c) => [c.id, c.ranks.map((r) => r.layers)]));
    for (const id of ['chain-3', 'chain-3-nopipe', 'chain-3-noenc', 'chain-3-nomb', 'chain-3-nogroups', 'rpc-3']) assert.deepEqual(byId.get(id), split, id);
    assert.deepEqual(byId.get('chain-2'), [[0, 5], [5, 9]]);
    assert.deepEqual(byId.get('stock'), [[0, 9]]);
  });
  it('refuses more nodes than layers', () => assert.throws(() => planConfigs(options({ nodes: benchNodes(undefined, 5) }), 4), UserError));
  it('sizes the context for the longest prompt plus generation in every slot', () => {
    assert.equal(contextSize([512, 2048], 128, 1), 2304);
    assert.equal(contextSize([64], 8, 4), 768);
  });
});

describe('planLaunch', () => {
  const runtime: BenchRuntime = { threads: 1, ctx: 2304, slots: 4 };
  // Link latency 0 unless given: local links go direct; above 0 through relays that emulate it.
  const input = (c: BenchConfig, linkLatencyMs = 0): LaunchInput => ({
    model: '/m.gguf',
    bins: { patchedServer: '/p/llama-server', stockServer: '/s/llama-server', rpcServer: '/s/ggml-rpc-server' },
    runtime,
    nodes: benchNodes(undefined, 3),
    ports: Array.from({ length: portsNeeded(c, linkLatencyMs === 0) }, (_, i) => 9000 + i),
    secretFile: '/tmp/secret',
    linkLatencyMs,
    linkPollUs: 10000,
  });
  const configs = planConfigs(options({ taskset: true }), 6);
  const byId = (id: string) => configs.find((c) => c.id === id)!;
  // Server flags come after the binary (taskset's own -c comes before it).
  const flag = (args: readonly string[], f: string) => {
    const from = args.findIndex((a) => a.endsWith('llama-server') || a.endsWith('ggml-rpc-server'));
    return args[args.indexOf(f, from) + 1];
  };

  it('starts one stock server with the shared runtime flags, pinned', () => {
    const p = planLaunch(byId('stock'), input(byId('stock')));
    assert.equal(p.processes.length, 1);
    const s = p.processes[0]!.spec;
    assert.equal(s.command, 'taskset');
    assert.deepEqual(s.args.slice(0, 3), ['-c', '0', '/s/llama-server']);
    assert.equal(flag(s.args, '--port'), '9000');
    assert.equal(flag(s.args, '-c'), '2304');
    assert.equal(flag(s.args, '-np'), '4');
    assert.equal(flag(s.args, '-t'), '1');
    assert.deepEqual(p.processes[0]!.ready, { kind: 'http-health', host: '127.0.0.1', port: 9000 });
    assert.deepEqual(p.links, []);
  });

  it('gives --stage-poll only to chain ranks with a core to themselves; chain-N-nopoll to none', () => {
    const polls = (c: BenchConfig, i = input(c)) =>
      [...planLaunch(c, i).processes].sort((a, b) => a.rank - b.rank).map((x) => (x.spec.args.includes('--stage-poll') ? flag(x.spec.args, '--stage-poll') : '-'));
    const pinned = planConfigs(options({ taskset: true, only: ['chain-2', 'chain-3', 'chain-2-nopoll'] }), 6);
    const of = (cs: BenchConfig[], id: string) => cs.find((c) => c.id === id)!;
    assert.deepEqual(polls(of(pinned, 'chain-2')), ['10000', '10000'], 'cores 0 and 1');
    assert.deepEqual(polls(of(pinned, 'chain-3')), ['-', '10000', '-'], 'ranks 0 and 2 share core 0 of 2');
    assert.deepEqual(polls(of(pinned, 'chain-2-nopoll')), ['-', '-']);
    assert.deepEqual(polls(of(pinned, 'chain-2'), { ...input(of(pinned, 'chain-2')), linkPollUs: 250 }), ['250', '250']);
    const loose = planConfigs(options({ only: ['chain-2'] }), 6);
    assert.deepEqual(polls(of(loose, 'chain-2')), ['-', '-'], 'unpinned on one machine: they share its cores');
  });

  it('chains at link latency 0: workers downstream first, each --stage-next the next rank\'s listen port (no relay), the ring closing on the head', () => {
    const c = byId('chain-3');
    assert.equal(portsNeeded(c, true), 4, 'no relay ports');
    const p = planLaunch(c, input(c));
    assert.deepEqual(p.processes.map((x) => x.rank), [2, 1, 0]);
    const listen = (r: number) => flag(p.processes.find((x) => x.rank === r)!.spec.args, '--stage-listen');
    const next = (r: number) => flag(p.processes.find((x) => x.rank === r)!.spec.args, '--stage-next');
    assert.deepEqual([0, 1, 2].map(listen), ['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']);
    assert.deepEqual([0, 1, 2].map(next), [listen(1), listen(2), listen(0)]);
    // Every link is still listed, without a relay port: its bytes are counted at its server's listen port.
    assert.deepEqual(p.links, [
      { name: '0->1', fromRank: 0, toRank: 1, targetPort: 9002 },
      { name: '1->2', fromRank: 1, toRank: 2, targetPort: 9003 },
      { name: '2->0', fromRank: 2, toRank: 0, targetPort: 9001 },
    ]);
    const head = p.processes.find((x) => x.rank === 0)!;
    assert.equal(head.role, 'head');
    assert.deepEqual(head.ready, { kind: 'http-health', host: '127.0.0.1', port: p.httpPort });
    assert.ok(!head.spec.args.includes('--stage-no-pipeline'));
    assert.equal(flag(head.spec.args, '--layer-range'), '0:2');
    const w = p.processes.find((x) => x.rank === 2)!;
    assert.deepEqual(w.ready, { kind: 'stage-ready-line', layers: [4, 6] });
    assert.ok(!w.spec.args.includes('--port'));
    assert.equal(flag(w.spec.args, '--stage-secret-file'), '/tmp/secret');
    assert.ok(STAGE_READY_LINE.test('llama-relay: stage ready layers=4:6 listen=127.0.0.1:9003'));
    assert.deepEqual(p.processes.map((x) => x.spec.args[1]), ['0', '1', '0']);
  });

  it('chains with link latency: every --stage-next through a relay on loopback that forwards to the next listen port', () => {
    const c = byId('chain-3');
    const p = planLaunch(c, input(c, 5));
    const listen = (r: number) => flag(p.processes.find((x) => x.rank === r)!.spec.args, '--stage-listen');
    const next = (r: number) => flag(p.processes.find((x) => x.rank === r)!.spec.args, '--stage-next');
    assert.deepEqual(p.links.map((l) => l.name), ['0->1', '1->2', '2->0']);
    for (const l of p.links) {
      assert.equal(next(l.fromRank), `127.0.0.1:${l.listenPort}`);
      assert.equal(listen(l.toRank), `127.0.0.1:${l.targetPort}`);
    }
    assert.deepEqual(p.links.map((l) => l.listenPort), [9004, 9005, 9006]);
    assert.ok([0, 1, 2].every((r) => ![0, 1, 2].some((q) => next(r) === listen(q))), 'no rank dials another directly');
  });

  it('turns pipelining off on the nopipe head only', () => {
    const c = byId('chain-3-nopipe');
    const p = planLaunch(c, input(c));
    assert.deepEqual(p.processes.filter((x) => x.spec.args.includes('--stage-no-pipeline')).map((x) => x.rank), [0]);
  });

  it('turns micro-batched decode off on the nomb head only', () => {
    const c = byId('chain-3-nomb');
    const p = planLaunch(c, input(c));
    assert.deepEqual(p.processes.filter((x) => x.spec.args.includes('--stage-no-microbatch')).map((x) => x.rank), [0]);
    const on = byId('chain-3');
    assert.ok(planLaunch(on, input(on)).processes.every((x) => !x.spec.args.includes('--stage-no-microbatch')));
  });

  it('starts the nogroups head only with --stage-groups 1; no other configuration gets --stage-groups', () => {
    const c = byId('chain-3-nogroups');
    const p = planLaunch(c, input(c));
    assert.deepEqual(p.processes.filter((x) => x.spec.args.includes('--stage-groups')).map((x) => [x.rank, flag(x.spec.args, '--stage-groups')]), [[0, '1']]);
    for (const id of ['chain-3', 'chain-3-nomb', 'chain-3-nopipe']) {
      const on = byId(id);
      assert.ok(planLaunch(on, input(on)).processes.every((x) => !x.spec.args.includes('--stage-groups')), id);
    }
  });

  it('batched groups: every such chain head gets --stage-batch-groups N, the nobatch one none, no worker ever', () => {
    const c = planConfigs(options({ batchGroups: new Map([[2, 8], [3, 8]]) }), 6);
    const withIt = (id: string) => {
      const cfg = c.find((x) => x.id === id)!;
      return planLaunch(cfg, input(cfg)).processes.filter((x) => x.spec.args.includes('--stage-batch-groups')).map((x) => [x.rank, x.spec.args[x.spec.args.indexOf('--stage-batch-groups') + 1]]);
    };
    assert.deepEqual(withIt('chain-3'), [[0, '8']]);
    assert.deepEqual(withIt('chain-3-nomb'), [[0, '8']]);
    assert.deepEqual(withIt('chain-3-nobatch'), []);
  });

  it('turns encryption off on every rank of the noenc chain only', () => {
    const c = byId('chain-3-noenc');
    const p = planLaunch(c, input(c));
    assert.deepEqual(p.processes.filter((x) => x.spec.args.includes('--stage-no-encrypt')).map((x) => x.rank).sort(), [0, 1, 2]);
    const on = byId('chain-3');
    assert.ok(planLaunch(on, input(on)).processes.every((x) => !x.spec.args.includes('--stage-no-encrypt')));
  });

  it('rpc at link latency 0: the stock head dials its ggml-rpc-servers directly', () => {
    const c = byId('rpc-3');
    const p = planLaunch(c, input(c));
    const servers = p.processes.filter((x) => x.role === 'rpc-server');
    assert.deepEqual(servers.map((s) => flag(s.spec.args, '-p')), ['9001', '9002']);
    assert.equal(flag(p.processes.at(-1)!.spec.args, '--rpc'), '127.0.0.1:9001,127.0.0.1:9002');
    assert.deepEqual(p.links, [
      { name: '0->1', fromRank: 0, toRank: 1, targetPort: 9001 },
      { name: '0->2', fromRank: 0, toRank: 2, targetPort: 9002 },
    ]);
    assert.equal(p.tunnels, undefined);
  });

  it('rpc with link latency: ggml-rpc-servers first, the stock head dialling them through relays with the same split', () => {
    const c = byId('rpc-3');
    const p = planLaunch(c, input(c, 5));
    assert.ok(p.links.every((l) => l.listenPort !== undefined));
    assert.deepEqual(p.processes.map((x) => x.role), ['rpc-server', 'rpc-server', 'rpc-head']);
    const head = p.processes[2]!.spec.args;
    assert.equal(flag(head, '--rpc'), p.links.map((l) => `127.0.0.1:${l.listenPort}`).join(','));
    assert.equal(flag(head, '-ngl'), '5');
    assert.equal(flag(head, '-ts'), '2,3');
    assert.match(flag(head, '-ot')!, /\^output\\.weight=CPU/);
    assert.equal(flag(head, '-dev'), 'RPC0,RPC1');
    p.processes.slice(0, 2).forEach((s, i) => {
      assert.equal(flag(s.spec.args, '-p'), String(p.links[i]!.targetPort));
      assert.deepEqual(s.ready, { kind: 'tcp', port: p.links[i]!.targetPort });
    });
    assert.ok(head.includes('/s/llama-server'));
  });

  it('chain-1 is the patched server without stage flags', () => {
    const c = byId('chain-1');
    const args = planLaunch(c, input(c)).processes[0]!.spec.args;
    assert.ok(args.includes('/p/llama-server'));
    assert.ok(!args.some((a) => a.startsWith('--stage') || a === '--layer-range'));
  });

  describe('with remote nodes (real links, no relays)', () => {
    const plain = planConfigs(options({ nodes: benchNodes('local,gpu1,gpu2', undefined) }), 6);
    const cfg = (id: string) => plain.find((c) => c.id === id)!;
    const hosts = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
    // Not pinned here: the flags follow the command directly.
    const flag = (args: readonly string[], f: string) => args[args.indexOf(f) + 1];
    const site = (i: number): RankSite =>
      i === 0
        ? { host: hosts[0]!, model: '/m.gguf', bins: { patchedServer: '/p/llama-server', stockServer: '/s/llama-server', rpcServer: '/s/ggml-rpc-server' }, secretFile: '/tmp/secret' }
        : { host: hosts[i]!, model: `/cache/slice-${i}.gguf`, bins: { patchedServer: `/n${i}/llama-server`, stockServer: `/n${i}/stock/llama-server`, rpcServer: `/n${i}/stock/ggml-rpc-server` } };
    const direct = (id: string): LaunchInput => {
      const c = cfg(id);
      return { ...input(c), nodes: benchNodes('local,gpu1,gpu2', undefined), ports: portNodes(c, true).map((n, i) => 7000 + 100 * n! + i), sites: c.ranks.map((_, i) => site(i)) };
    };

    it('never relays real links, whatever the link latency', () => {
      const p = planLaunch(cfg('chain-3'), { ...direct('chain-3'), linkLatencyMs: 5 });
      assert.deepEqual(p.links, []);
      assert.equal(flag(p.processes.find((x) => x.rank === 0)!.spec.args, '--stage-next'), '10.0.0.2:7102');
    });

    it('takes one port per listening process on its own node, none for relays', () => {
      assert.deepEqual(portNodes(cfg('chain-3'), true), [0, 0, 1, 2]);
      assert.deepEqual(portNodes(cfg('rpc-3'), true), [0, 1, 2, 0, 0], 'rpc: the tunnels to the servers end on the head node');
      assert.deepEqual(portNodes(cfg('chain-3')), [0, 0, 1, 2, undefined, undefined, undefined]);
      assert.equal(portsNeeded(cfg('chain-3'), true), 4);
    });

    it('chains: each rank binds its node address and dials the next one directly; remote ranks get the secret in the environment', () => {
      const p = planLaunch(cfg('chain-3'), direct('chain-3'));
      assert.deepEqual(p.links, []);
      const byRank = (r: number) => p.processes.find((x) => x.rank === r)!;
      const listen = (r: number) => flag(byRank(r).spec.args, '--stage-listen');
      const next = (r: number) => flag(byRank(r).spec.args, '--stage-next');
      assert.deepEqual([0, 1, 2].map(listen), ['10.0.0.1:7001', '10.0.0.2:7102', '10.0.0.3:7203']);
      assert.deepEqual([0, 1, 2].map(next), [listen(1), listen(2), listen(0)]);
      assert.equal(byRank(1).spec.command, '/n1/llama-server');
      assert.equal(flag(byRank(2).spec.args, '-m'), '/cache/slice-2.gguf');
      assert.equal(flag(byRank(0).spec.args, '--stage-secret-file'), '/tmp/secret');
      assert.ok(!byRank(1).spec.args.includes('--stage-secret-file'));
      assert.deepEqual(p.processes.map((x) => x.secretInEnv ?? false), [true, true, false]);
      assert.equal(flag(byRank(0).spec.args, '--host'), '127.0.0.1', 'the head serves HTTP on its own loopback');
    });

    it('rpc: every ggml-rpc-server binds its own loopback (no authentication); the head dials ssh tunnels ending on its node', () => {
      const p = planLaunch(cfg('rpc-3'), direct('rpc-3'));
      assert.deepEqual(p.links, []);
      const servers = p.processes.filter((x) => x.role === 'rpc-server');
      assert.deepEqual(servers.map((x) => flag(x.spec.args, '-H')), ['127.0.0.1', '127.0.0.1']);
      assert.deepEqual(servers.map((x) => x.spec.command), ['/n1/stock/ggml-rpc-server', '/n2/stock/ggml-rpc-server']);
      assert.deepEqual(servers.map((x) => x.ready), [{ kind: 'node-listening', port: 7101 }, { kind: 'node-listening', port: 7202 }]);
      const head = p.processes.at(-1)!;
      assert.equal(flag(head.spec.args, '--rpc'), '127.0.0.1:7003,127.0.0.1:7004');
      assert.equal(head.spec.command, '/s/llama-server');
      assert.deepEqual(p.tunnels, [
        { name: '0->1', fromNode: 0, toNode: 1, listenPort: 7003, targetPort: 7101 },
        { name: '0->2', fromNode: 0, toNode: 2, listenPort: 7004, targetPort: 7202 },
      ]);
    });

    it('rpc: a server on the head machine is dialled on loopback directly, without a tunnel', () => {
      const c = cfg('rpc-3');
      const sameHost = { ...direct('rpc-3'), nodes: benchNodes('local,local,gpu2', undefined) };
      const p = planLaunch(c, sameHost);
      assert.equal(flag(p.processes.at(-1)!.spec.args, '--rpc'), '127.0.0.1:7101,127.0.0.1:7004');
      assert.deepEqual(p.tunnels, [{ name: '0->2', fromNode: 0, toNode: 2, listenPort: 7004, targetPort: 7202 }]);
    });
  });

  it('pinToCore leaves unpinned specs alone', () => {
    const s = { label: 'x', command: '/bin/true', args: ['a'] };
    assert.equal(pinToCore(s, undefined), s);
    assert.deepEqual(pinToCore(s, 1).args, ['-c', '1', '/bin/true', 'a']);
  });
});

describe('free ports on a remote node', () => {
  const procNet = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:4E21 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:4E22 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1',
    '   0: 00000000000000000000000000000000:4E23 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0',
  ].join('\n');
  it('reads the listening ports (IPv4 and IPv6) only', () => assert.deepEqual([...parseListeningPorts(procNet)].sort(), [20001, 20003]));
  it('picks distinct ports in range that are not taken', () => {
    let i = 0;
    const seq = [0, 0, 0.1, 0.0001, 0.2];
    const got = pickPorts(3, new Set([20000]), () => seq[i++ % seq.length]!);
    assert.deepEqual(got, [21000, 20001, 22000]);
  });
});

describe('prompts, logit bias and build output', () => {
  it('builds prompts of the exact length that differ by variant', () => {
    const base = [10, 11, 12, 13, 14];
    assert.equal(buildPrompt(base, 2048, 3).length, 2048);
    assert.notDeepEqual(buildPrompt(base, 8, 1), buildPrompt(base, 8, 2));
    assert.ok(buildPrompt(base, 12, 0).every((t) => base.includes(t)));
  });
  it('bans byte tokens only', () => assert.deepEqual(banByteTokens([3, 6, 1, 6]), [[1, false], [3, false]]));
  it('reads the last patched=/stock= lines of build-llama.sh', () => {
    assert.deepEqual(parseBuildOutput('log\npatched=/a/bin\nstock=/b/bin\n'), { patched: '/a/bin', stock: '/b/bin' });
    assert.equal(parseBuildOutput('nothing'), undefined);
  });
});
