// `llama-relay bench`: stock llama-server vs llama-relay chains vs llama.cpp RPC, one run, table + JSON + SVG.
import { writeFile } from 'node:fs/promises';
import type { CommandModule } from 'yargs';
import { withSignalAbort } from '../abort-on-signals.js';
import { benchNodes, cacheName, parseCountList } from '../../bench/bench-nodes.js';
import { renderChainPredictions } from '../../bench/chain-prediction.js';
import { benchPredictions } from '../../services/bench-prediction.js';
import { renderReport } from '../../bench/report-table.js';
import { renderSvgChart } from '../../bench/svg-chart.js';
import { UserError } from '../../errors.js';
import { EventBus } from '../../events/event-bus.js';
import { attachLineRenderer } from '../../events/line-renderer.js';
import { nodesFromArgs } from '../nodes-option.js';
import { runBench } from '../../services/bench.js';

interface Args {
  model: string;
  nodes?: string;
  cluster?: string;
  n?: number;
  'prompt-tokens': string;
  'gen-tokens': number;
  parallel: string;
  repeat: number;
  'link-latency-ms': number;
  'link-poll'?: number;
  groups?: number;
  'batch-groups'?: number;
  threads: number;
  taskset: boolean;
  json?: string;
  chart?: string;
  rpc: boolean;
  stock: boolean;
  only?: string;
  split?: string;
  'layers-per-node'?: string;
  batch?: number;
  ubatch?: number;
  fault: number;
  'patched-bin-dir'?: string;
  'stock-bin-dir'?: string;
  'ready-timeout': number;
  quiet: boolean;
  root: string[];
  'ssh-config'?: string;
  'accept-new-host-keys': boolean;
  'connect-timeout': number;
  'node-cache'?: string;
  'run-dir'?: string;
}

export const benchCommand: CommandModule<object, Args> = {
  command: 'bench <model>',
  describe: 'Benchmark stock llama-server, llama-relay chains (1..N ranks) and llama.cpp RPC on one model',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: '.gguf path or Ollama model name' })
      .option('nodes', { type: 'string', describe: 'nodes as for `up`: [user@]host[:port] over ssh, `local` = this machine; e.g. local,alice@gpu1' })
      .option('cluster', { type: 'string', describe: 'nodes from a file, one per line (as for up; also --nodes @FILE)' })
      .option('n', { type: 'number', describe: 'number of local nodes' })
      .option('prompt-tokens', { type: 'string', default: '512,2048', describe: 'prompt lengths in tokens, comma-separated' })
      .option('gen-tokens', { type: 'number', default: 128, describe: 'tokens generated per request' })
      .option('parallel', { type: 'string', default: '1,4', describe: 'concurrent requests, comma-separated levels (e.g. 1,4,8); each configuration runs at each' })
      .option('repeat', { type: 'number', default: 3, describe: 'rounds over all configurations, each started afresh (median and min/max per point)' })
      .option('link-latency-ms', { type: 'number', default: 0, describe: 'one-way delay relays add to every link (0: no relays, links direct, bytes from the kernel via ss); local nodes only' })
      .option('link-poll', { type: 'number', describe: 'µs chain ranks with a core to themselves busy-poll their links around each expected frame (default: 10000; 0: off; chain-N-nopoll turns it off in one configuration)' })
      .option('groups', { type: 'number', describe: 'chains: the head keeps up to N groups of generating requests in flight across decode steps, as up --groups N (default: the engine\'s; chain-N-nogroups stays at 1)' })
      .option('batch-groups', { type: 'number', describe: 'chains: from N requests generating together, the head keeps one batched group per rank in flight, as up --batch-groups N (default: as up chooses from the batch gain plan --probe measured; chain-K-nobatch stays off, for the on/off ratio)' })
      .option('threads', { type: 'number', default: 1, describe: 'threads per process (-t/-tb)' })
      .option('taskset', { type: 'boolean', default: false, describe: 'pin each process of a configuration to its own core' })
      .option('json', { type: 'string', describe: 'write the full report as JSON to this file' })
      .option('chart', { type: 'string', describe: 'write an SVG chart of tokens/s to this file' })
      .option('rpc', { type: 'boolean', default: true, describe: 'measure llama.cpp RPC (--no-rpc to skip)' })
      .option('stock', { type: 'boolean', default: true, describe: 'measure stock llama-server (--no-stock to skip)' })
      .option('split', { type: 'string', describe: 'explicit layer ranges per node for the N-rank configurations: 0:4,4:18 (default: the split up launches on ranks of one speed, the head output layer counted)' })
      .option('layers-per-node', { type: 'string', describe: 'layer counts per node for the N-rank configurations: 4,14' })
      .conflicts('split', 'layers-per-node')
      .option('only', { type: 'string', describe: 'only these configurations, e.g. stock,chain-2,chain-2-nomb (stock, chain-K, chain-K-{nopipe,noenc,nomb,nogroups,nopoll,nobatch}, rpc-K)' })
      .option('batch', { type: 'number', describe: 'llama-server -b for every server' })
      .option('ubatch', { type: 'number', describe: 'llama-server -ub for every server' })
      .option('fault', { type: 'number', default: 0, describe: 'also measure the pause a resume costs: N streams on the N-rank chain, each with a worker SIGKILLed at about token 20 and started again (local nodes)' })
      .option('patched-bin-dir', { type: 'string', describe: 'directory of the patched llama-server (default: scripts/build-llama.sh)' })
      .option('stock-bin-dir', { type: 'string', describe: 'directory of stock llama-server and ggml-rpc-server' })
      .option('ready-timeout', { type: 'number', default: 300, describe: 'seconds a process may take to load' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress lines on stderr' })
      .option('root', { type: 'string', array: true, default: [] as string[], describe: 'an extra Ollama models directory' })
      .option('ssh-config', { alias: 'F', type: 'string', describe: 'ssh config file (ssh -F)' })
      .option('accept-new-host-keys', { type: 'boolean', default: false, describe: 'trust unknown host keys on first use (never for changed keys)' })
      .option('connect-timeout', { type: 'number', default: 10, describe: 'seconds to wait for each ssh connection' })
      .option('node-cache', { type: 'string', describe: 'cache directory on remote nodes for binaries, slices and the model (default: ~/.cache/llama-relay there)' })
      .option('run-dir', { type: 'string', hidden: true })
      .conflicts('n', ['nodes', 'cluster'])
      .conflicts('nodes', 'cluster'),
  handler: async (a) => {
    const dirs = [a['patched-bin-dir'], a['stock-bin-dir']];
    if (dirs.filter(Boolean).length === 1) throw new UserError('pass both --patched-bin-dir and --stock-bin-dir, or neither');
    const nodes = nodesFromArgs(a);
    // Signals and the end of the starting process (npx) abort the run, as for `up`.
    const bus = new EventBus();
    const detach = a.quiet ? () => undefined : attachLineRenderer(bus);
    await withSignalAbort(async (signal) => {
      const report = await runBench({
        model: a.model,
        nodes,
        nodeCount: a.n,
        promptTokens: parseCountList('--prompt-tokens', a['prompt-tokens']),
        genTokens: a['gen-tokens'],
        parallel: parseCountList('--parallel', a.parallel, '1,4'),
        repeat: a.repeat,
        linkLatencyMs: a['link-latency-ms'],
        ...(a['link-poll'] !== undefined ? { linkPollUs: a['link-poll'] } : {}),
        ...(a.groups !== undefined ? { groups: a.groups } : {}),
        ...(a['batch-groups'] !== undefined ? { batchGroupsFrom: a['batch-groups'] } : {}),
        threads: a.threads,
        taskset: a.taskset,
        rpc: a.rpc,
        stock: a.stock,
        ...(a.split !== undefined ? { split: a.split } : {}),
        ...(a['layers-per-node'] !== undefined ? { layersPerNode: a['layers-per-node'] } : {}),
        ...(a.only ? { only: a.only.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
        batch: a.batch,
        ubatch: a.ubatch,
        faults: a.fault,
        ...(a['patched-bin-dir'] && a['stock-bin-dir'] ? { binDirs: { patched: a['patched-bin-dir'], stock: a['stock-bin-dir'] } } : {}),
        roots: a.root,
        sshConfig: a['ssh-config'],
        acceptNewHostKeys: a['accept-new-host-keys'],
        connectTimeoutSeconds: a['connect-timeout'],
        nodeCacheDir: a['node-cache'],
        runDir: a['run-dir'],
        readyTimeoutMs: a['ready-timeout'] * 1000,
        signal,
        onEvent: bus.emit,
      });
      process.stdout.write(renderReport(report));
      // The planner's prediction for each chain split, next to what the bench measured (from plan --probe's speeds).
      const predicted = await benchPredictions(report, benchNodes(nodes, a.n).map(cacheName));
      process.stdout.write(renderChainPredictions(predicted, report.settings.linkLatencyMs));
      if (a.json) await writeFile(a.json, `${JSON.stringify({ ...report, predictions: predicted.rows }, null, 2)}\n`);
      if (a.chart) await writeFile(a.chart, renderSvgChart(report));
      if (report.configs.some((c) => c.error)) process.exitCode = 1;
      // A fault stream that did not complete is a resume that failed: the run says so in its exit status.
      if (report.configs.some((c) => c.resume && c.resume.completed < c.resume.trials.length)) process.exitCode = 1;
    }).finally(detach);
  },
};
