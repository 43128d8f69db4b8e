// The one runtime under up, node and bench: the even split they all launch, what "local" means for --nodes, and the
// one SSE reader (with and without a space after `data:`).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { streamCompletion as benchStream } from '../../src/bench/completion-client.js';
import type { BenchOptions } from '../../src/bench/bench-config.js';
import { benchNodes } from '../../src/bench/bench-nodes.js';
import { planConfigs } from '../../src/bench/config-planner.js';
import { planConfigLaunch, portsNeeded, serverRuntime } from '../../src/bench/config-launch.js';
import { UserError } from '../../src/errors.js';
import { parseNodeList } from '../../src/plan/node-spec.js';
import { evenSplit } from '../../src/runtime/even-split.js';
import { streamCompletion as headStream } from '../../src/runtime/head-client.js';
import { planLaunch } from '../../src/runtime/launch-plan.js';
import { NodeHosts } from '../../src/runtime/node-hosts.js';
import { nodeTransports, sshSettings } from '../../src/runtime/node-transports.js';
import { sseFields } from '../../src/runtime/sse.js';
import { LocalTransport } from '../../src/ssh/local-transport.js';
import { SshTransport } from '../../src/ssh/ssh-transport.js';

const flag = (argv: readonly string[], f: string) => argv[argv.indexOf(f) + 1];
const ranges = (argv: readonly (readonly string[])[]) => argv.map((a) => flag(a, '--layer-range')!.split(':').map(Number));

/** The ranges `up --layers L` launches over n local nodes: its even split through the runtime's chain planner. */
function upRanges(layers: number, n: number): number[][] {
  const node = { name: 'local', stageHost: '127.0.0.1', binary: '/p/llama-server', model: '/m.gguf' };
  const launches = planLaunch({
    ranks: evenSplit(layers, n).map(([layerStart, layerEnd]) => ({ node, layerStart, layerEnd })),
    stagePorts: Array.from({ length: n }, (_, i) => 9100 + i),
    api: { host: '127.0.0.1', port: 9000 },
    runtime: { ctx: 256, parallel: 1 },
    runName: 't',
  });
  return ranges([...launches].sort((a, b) => a.rank - b.rank).map((l) => l.argv));
}

/** The ranges `bench` launches for its chain-n configuration (and rpc-n, the same split). */
function benchRanges(layers: number, n: number): { config: number[][]; launched: number[][] } {
  const o: BenchOptions = {
    nodes: benchNodes(undefined, n), promptTokens: [8], genTokens: 8, parallel: [1], repeat: 1, linkLatencyMs: 0,
    threads: 1, taskset: false, cores: 1, rpc: true, stock: false,
  };
  const c = planConfigs(o, layers).find((x) => x.id === `chain-${n}`)!;
  const bins = { patchedServer: '/p/llama-server', stockServer: '/s/llama-server', rpcServer: '/s/ggml-rpc-server' };
  const plan = planConfigLaunch(c, {
    model: '/m.gguf', bins, runtime: { threads: 1, ctx: 256, slots: 1 }, nodes: o.nodes, secretFile: '/tmp/s',
    ports: Array.from({ length: portsNeeded(c) }, (_, i) => 9000 + i), linkLatencyMs: o.linkLatencyMs, linkPollUs: 1000,
  });
  const launched = n === 1 ? [[0, layers]] : ranges([...plan.processes].sort((a, b) => a.rank - b.rank).map((p) => p.spec.args));
  return { config: c.ranks.map((r) => [...r.layers]), launched };
}

describe('one even split: bench configurations and up --layers launch the same ranges', () => {
  // Leftover layers go to the first ranks.
  const table: [number, number, number[][]][] = [
    [10, 3, [[0, 4], [4, 7], [7, 10]]],
    [18, 2, [[0, 9], [9, 18]]],
    [18, 3, [[0, 6], [6, 12], [12, 18]]],
    [7, 7, [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7]]],
    [7, 3, [[0, 3], [3, 5], [5, 7]]],
    [8, 3, [[0, 3], [3, 6], [6, 8]]],
    [30, 4, [[0, 8], [8, 16], [16, 23], [23, 30]]],
    [5, 1, [[0, 5]]],
  ];
  for (const [layers, n, want] of table) {
    it(`${layers} layers over ${n}`, () => {
      assert.deepEqual(evenSplit(layers, n), want);
      assert.deepEqual(upRanges(layers, n), want, 'up --layers');
      const bench = benchRanges(layers, n);
      assert.deepEqual(bench.config, want, 'bench configuration');
      assert.deepEqual(bench.launched, want, 'bench --layer-range flags');
    });
  }
  it('covers every layer once with sizes within one of each other, larger first', () => {
    for (let layers = 1; layers <= 40; layers++) {
      for (let n = 1; n <= Math.min(layers, 8); n++) {
        const s = evenSplit(layers, n);
        assert.equal(s[0]![0], 0);
        assert.equal(s.at(-1)![1], layers);
        s.forEach(([a], i) => i > 0 && assert.equal(a, s[i - 1]![1]));
        const sizes = s.map(([a, b]) => b - a);
        assert.ok(sizes.every((x, i) => i === 0 || x <= sizes[i - 1]!) && sizes[0]! - sizes.at(-1)! <= 1, `${layers}/${n}: ${sizes}`);
      }
    }
  });
  it('refuses more ranks than layers, with a next step', () => {
    assert.throws(() => evenSplit(2, 3), (e: unknown) => e instanceof UserError && e.next.length > 0);
  });
});

describe('one argv builder and one readiness: a bench chain is launched as up launches a chain', () => {
  it('chain-3 with emulated links: every rank has the argv and readiness the runtime planner gives those nodes and ports', () => {
    const o: BenchOptions = {
      nodes: benchNodes(undefined, 3), promptTokens: [8], genTokens: 8, parallel: [1], repeat: 1, linkLatencyMs: 2,
      threads: 2, taskset: false, cores: 1, rpc: false, stock: false,
    };
    const c = planConfigs(o, 10).find((x) => x.id === 'chain-3')!;
    const runtime = { threads: 2, ctx: 512, slots: 2 };
    const bins = { patchedServer: '/p/llama-server', stockServer: '/s/llama-server', rpcServer: '/s/ggml-rpc-server' };
    const ports = Array.from({ length: portsNeeded(c) }, (_, i) => 9000 + i);
    const bench = planConfigLaunch(c, { model: '/m.gguf', bins, runtime, nodes: o.nodes, secretFile: '/tmp/s', ports, linkLatencyMs: o.linkLatencyMs, linkPollUs: 1000 });
    const up = planLaunch({
      ranks: evenSplit(10, 3).map(([layerStart, layerEnd], i) => ({
        node: { name: `local${i}`, stageHost: '127.0.0.1', binary: '/p/llama-server', model: '/m.gguf', secretFile: '/tmp/s' },
        layerStart,
        layerEnd,
      })),
      stagePorts: [9001, 9002, 9003],
      api: { host: '127.0.0.1', port: 9000 },
      runtime: serverRuntime(runtime),
      runName: 'x',
      links: ['127.0.0.1:9004', '127.0.0.1:9005', '127.0.0.1:9006'],
    });
    assert.deepEqual(bench.processes.map((p) => [p.spec.command, ...p.spec.args]), up.map((l) => l.argv));
    assert.deepEqual(bench.processes.map((p) => p.ready), up.map((l) => l.readiness));
    assert.deepEqual(up[0]!.argv.slice(0, 9), ['/p/llama-server', '-m', '/m.gguf', '--layer-range', '7:10', '--stage-listen', '127.0.0.1:9003', '--stage-next', '127.0.0.1:9006']);
    assert.deepEqual(up.map((l) => l.readiness.kind), ['stage-ready-line', 'stage-ready-line', 'http-health']);
  });
});

describe('what "local" means for --nodes: the same under up and bench', () => {
  const settings = sshSettings(undefined, {});
  for (const spec of ['local', 'localhost', '127.0.0.1']) {
    it(`${spec} runs on this machine without ssh`, async () => {
      assert.ok(nodeTransports(parseNodeList(spec), settings).get(spec) instanceof LocalTransport, 'up');
      const nodes = benchNodes(spec, undefined);
      assert.equal(nodes[0]!.kind, 'local', 'bench');
      const hosts = await NodeHosts.open(nodes);
      try {
        assert.ok(hosts.isLocal(0) && hosts.transport(0) instanceof LocalTransport, 'bench hosts');
        assert.equal(hosts.address(0), '127.0.0.1');
      } finally {
        await hosts.close();
      }
    });
  }
  for (const spec of ['alice@localhost', 'localhost:2222', 'gpu1']) {
    it(`${spec} is reached over ssh`, () => {
      assert.ok(nodeTransports(parseNodeList(spec), settings).get(spec) instanceof SshTransport, 'up');
      assert.equal(benchNodes(spec, undefined)[0]!.kind, 'ssh', 'bench');
    });
  }
});

describe('the one SSE reader', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));
  /** A llama-server stand-in streaming /completion with `sep` after every `data:`. */
  async function serve(sep: string): Promise<string> {
    const frames = [{ content: 'Hel' }, { content: 'lo' }, { content: '', stop: true, timings: { prompt_n: 3, prompt_per_second: 30, predicted_n: 2, predicted_per_second: 20 } }];
    const s = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const f of frames) res.write(`data:${sep}${JSON.stringify(f)}\n\n`);
      res.end();
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }
  for (const [name, sep] of [['data: (space)', ' '], ['data: (no space)', '']] as const) {
    it(`reads ${name} for up's client and bench's timed client`, async () => {
      const url = await serve(sep);
      const pieces: string[] = [];
      const r = await headStream(url, { prompt: 'x', maxTokens: 2 }, (t) => pieces.push(t));
      assert.deepEqual([r.text, r.tokens, pieces], ['Hello', 2, ['Hel', 'lo']]);
      const b = await benchStream(Number(new URL(url).port), { prompt: [1, 2, 3], nPredict: 2 });
      assert.deepEqual([b.promptN, b.predictedN, b.predictedPerSecond], [3, 2, 20]);
    });
  }
  it('yields data and error fields split across chunks', async () => {
    const enc = new TextEncoder();
    async function* body() {
      yield enc.encode('data: {"a"');
      yield enc.encode(':1}\n\ndata:{"b":2}\nerror: {"message":"x"}\n: comment\n');
    }
    const got = [];
    for await (const f of sseFields(body())) got.push(f);
    assert.deepEqual(got, [
      { field: 'data', value: '{"a":1}' },
      { field: 'data', value: '{"b":2}' },
      { field: 'error', value: '{"message":"x"}' },
    ]);
  });
});
