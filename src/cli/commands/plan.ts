// `llama-relay plan` (alias `shard`): how a model's layers split over nodes, with memory per node.
import { BATCH_GAIN_MIN, BATCH_ROWS } from '../../plan/batch-groups.js';
import type { CommandModule } from 'yargs';
import { UserError } from '../../errors.js';
import { formatBytes } from '../../plan/size.js';
import { PLACEMENT_TEXT } from '../../plan/planner.js';
import { PREFILL_TOKENS } from '../../plan/speed-model.js';
import { planModel, type PlanResult } from '../../services/plan.js';
import { probeSpeeds, type ProbeResult } from '../../services/probe-speeds.js';
import { formatPlain } from '../../events/plain-format.js';
import { withSignalAbort } from '../abort-on-signals.js';
import { nodesFromArgs } from '../nodes-option.js';

interface Args {
  model: string;
  n?: number;
  nodes?: string;
  cluster?: string;
  ctx: number;
  parallel: number;
  'kv-unified': boolean;
  'swa-full': boolean;
  split?: string;
  'layers-per-node'?: string;
  json: boolean;
  root: string[];
  probe: boolean;
  'llama-server'?: string;
  'ssh-config'?: string;
  'accept-new-host-keys': boolean;
  threads?: number;
  'stage-port-base'?: number;
  'node-cache'?: string;
  'run-dir'?: string;
}

/** The predicted decode of the split, per rank, and the single-node verdict; what to do where nothing was measured. */
export function renderPrediction(r: PlanResult): string[] {
  const p = r.plan;
  if (!p.prediction) {
    return r.nodeSpecs && p.nodes.length > 1 ? ['', 'Predicted speed: not measured yet; `plan --probe` runs a short calibration on these nodes'] : [];
  }
  const d = p.prediction;
  const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
  const links = d.hops ? ` + links ${d.linkSeconds.map((s) => `${(s * 1000).toFixed(2)}`).join(' + ')} ms` : '';
  const bound = d.quotaBound ? `; rank ${d.quotaBound.rank}'s CPU quota allows at most ${(1 / d.quotaBound.seconds).toFixed(1)} tok/s` : '';
  const lines = [
    '',
    `Predicted decode: ${d.decodeTokensPerSecond.toFixed(1)} tok/s (one request: ${ms(d.tokenSeconds)} a token = ${d.rankSeconds.map(ms).join(' + ')} compute${links}${bound})`,
  ];
  if (d.prefillTokensPerSecond !== undefined) lines.push(`Predicted prefill: ${d.prefillTokensPerSecond.toFixed(1)} tok/s (a ${PREFILL_TOKENS}-token prompt)`);
  if (p.alone) {
    lines.push(`Verdict: splitting is predicted slower than running on ${p.alone.node} alone (${d.decodeTokensPerSecond.toFixed(1)} vs ${p.alone.decodeTokensPerSecond.toFixed(1)} tok/s)`);
  }
  if (r.speeds) lines.push(`Measured: ${r.speeds.map((s) => `${s.node} at ${s.measuredAt}`).join(', ')}`);
  return lines;
}

/** What --probe found: each node's devices and memory, and the calibration run's own decode. */
export function renderProbe(r: PlanResult, probe: ProbeResult): string {
  const lines = ['', 'Probed:'];
  probe.devices.forEach((d, i) => {
    const name = r.plan.nodes[i]?.name ?? `node ${i}`;
    if (!d) return lines.push(`  ${name}: could not be asked`);
    const devs = d.devices === undefined ? 'devices unknown (no llama-server there)' : d.devices.length ? d.devices.map((x) => `${x.name} ${x.description} ${formatBytes(x.freeBytes)} free`).join(', ') : 'CPU only';
    const mem = d.memory ? `${formatBytes(d.memory.availableBytes)} of ${formatBytes(d.memory.totalBytes)} RAM available` : 'memory unknown';
    return lines.push(`  ${name}: ${devs}; ${mem}`);
  });
  lines.push(`  calibration: layers ${probe.measured.split} decoded ${probe.measured.decodeTokensPerSecond.toFixed(1)} tok/s (measured)`);
  const gain = probe.measured.batchGain;
  if (gain !== undefined) {
    const pays = gain >= BATCH_GAIN_MIN ? `up batches groups from ${BATCH_ROWS} requests per rank` : `under ${BATCH_GAIN_MIN}x: up keeps one micro-batch per request`;
    lines.push(`  batching: ${BATCH_ROWS} requests in one batch decoded at ${gain.toFixed(2)}x one request's rate (measured; ${pays})`);
  }
  return `${lines.join('\n')}\n`;
}

export function renderPlan(r: PlanResult): string {
  const p = r.plan;
  const lines = [
    `Model: ${r.model.name} (${p.model.arch}, ${p.model.layers} layers, ${p.model.fileType})`,
    `Context: ${p.runtime.ctx} x ${p.runtime.parallel} slot(s)`,
    `Placement: ${PLACEMENT_TEXT[p.placement]}`,
    '',
  ];
  for (const n of p.nodes) {
    const roles = [n.embeddings ? 'embeddings' : '', n.output ? 'output' : ''].filter(Boolean).join(', ');
    const who = r.nodeSpecs ? ` ${n.name}` : '';
    const budget = n.budget !== undefined ? ` of ${formatBytes(n.budget)}` : '';
    lines.push(
      `Node ${n.index}:${who}${roles ? ` (${roles})` : ''} Layers: ${n.layerStart} - ${n.layerEnd - 1}, Estimated Memory: ~${formatBytes(n.memory.total)}${budget}`,
    );
    if (n.offload) {
      const rest = n.layerEnd - n.layerStart - n.offload.layers;
      lines.push(`  GPU ${n.offload.device}: ${n.offload.layers} of its ${n.layerEnd - n.layerStart} layers (-ngl ${n.offload.layers}, ~${formatBytes(n.offload.bytes)})${rest ? `; ${rest} stay in RAM` : ''}`);
    }
  }
  lines.push('', `Total: ~${formatBytes(p.totalMemory)}`);
  lines.push(...renderPrediction(r));
  return `${lines.join('\n')}\n`;
}

export const planCommand: CommandModule<object, Args> = {
  command: 'plan <model>',
  aliases: ['shard'],
  describe: 'Split a model\'s layers across nodes and estimate memory per node',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'Ollama model name or .gguf path' })
      .option('n', { type: 'number', describe: 'number of nodes' })
      .option('nodes', { type: 'string', describe: 'nodes as [user@]host[:port][=MEM],... e.g. a=24G,b=16G; @FILE reads a cluster file' })
      .option('cluster', { type: 'string', describe: 'cluster file: one node per line, [user@]host[:sshport] [mem=24G]' })
      .option('ctx', { type: 'number', default: 4096, describe: 'context size (llama-server -c)' })
      .option('parallel', { type: 'number', default: 1, describe: 'slots (llama-server --parallel)' })
      .option('kv-unified', { type: 'boolean', default: false, describe: 'one KV buffer shared by all slots' })
      .option('swa-full', { type: 'boolean', default: false, describe: 'full-size cache for sliding-window layers' })
      .option('split', { type: 'string', describe: 'explicit layer ranges per node, half-open: 0:4,4:18' })
      .option('layers-per-node', { type: 'string', describe: 'layer counts per node: 4,14' })
      .conflicts('split', 'layers-per-node')
      .option('probe', { type: 'boolean', default: false, describe: 'measure the nodes first (a short calibration run of the chain, devices, memory); refreshes the speed cache' })
      .option('llama-server', { type: 'string', describe: 'with --probe: llama-server path on every node (default: build the patched one)' })
      .option('ssh-config', { alias: 'F', type: 'string', describe: 'with --probe: ssh config file (ssh -F)' })
      .option('accept-new-host-keys', { type: 'boolean', default: false, describe: 'with --probe: trust unknown host keys on first use' })
      .option('threads', { type: 'number', describe: 'with --probe: threads per rank (-t and -tb)' })
      .option('stage-port-base', { type: 'number', hidden: true })
      .option('node-cache', { type: 'string', hidden: true })
      .option('run-dir', { type: 'string', hidden: true })
      .option('json', { type: 'boolean', default: false })
      .option('root', { type: 'string', array: true, default: [] as string[], describe: 'an extra Ollama models directory' })
      .conflicts('n', ['nodes', 'cluster'])
      .conflicts('cluster', 'nodes'),
  handler: async (a) => {
    const nodes = nodesFromArgs(a);
    if (a.n === undefined && nodes === undefined) throw new UserError('say how many nodes: -n N, --nodes SPEC or --cluster FILE', ['example: llama-relay plan llama3:70b -n 3']);
    let probe: ProbeResult | undefined;
    if (a.probe) {
      if (nodes === undefined) throw new UserError('plan --probe measures real nodes: give them with --nodes or --cluster', ['e.g. llama-relay plan MODEL --nodes local,alice@gpu1 --probe']);
      probe = await withSignalAbort((signal) =>
        probeSpeeds({
          model: a.model,
          nodes,
          ctx: a.ctx,
          ...(a.threads !== undefined ? { threads: a.threads } : {}),
          ...(a['llama-server'] ? { llamaServer: a['llama-server'] } : {}),
          ...(a['ssh-config'] ? { sshConfig: a['ssh-config'] } : {}),
          ...(a['accept-new-host-keys'] ? { acceptNewHostKeys: true } : {}),
          ...(a['stage-port-base'] !== undefined ? { stagePortBase: a['stage-port-base'] } : {}),
          ...(a['node-cache'] ? { nodeCacheDir: a['node-cache'] } : {}),
          ...(a['run-dir'] ? { runDir: a['run-dir'] } : {}),
          emit: (e) => {
            const line = formatPlain(e);
            if (line !== null) process.stderr.write(`${line}\n`);
          },
          signal,
        }),
      );
    }
    const r = await planModel({
      model: a.model,
      nodeCount: a.n,
      nodes,
      runtime: { ctx: a.ctx, parallel: a.parallel, kvUnified: a['kv-unified'], swaFull: a['swa-full'] },
      roots: a.root,
      ...(a.split !== undefined ? { split: a.split } : {}),
      ...(a['layers-per-node'] !== undefined ? { layersPerNode: a['layers-per-node'] } : {}),
    });
    process.stdout.write(
      a.json
        ? `${JSON.stringify({ model: r.model, plan: r.plan, ...(probe ? { probe } : {}), ...(r.speeds ? { speeds: r.speeds } : {}) }, null, 2)}\n`
        : renderPlan(r) + (probe ? renderProbe(r, probe) : ''),
    );
  },
};
