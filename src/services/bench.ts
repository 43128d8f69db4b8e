// bench: measure stock llama-server, llama-relay chains and llama.cpp RPC on the same model in one run.
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { stat } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { UserError } from '../errors.js';
import type { Listener } from '../events/event-bus.js';
import { loadGgufModel } from '../gguf/model.js';
import type { NodeSpec } from '../plan/node-spec.js';
import { isGgufArray } from '../gguf/types.js';
import { candidateRoots } from '../ollama/roots.js';
import { resolveModel } from '../ollama/resolve.js';
import { findings, hopOverheads } from '../bench/bench-analysis.js';
import type { BenchNode, BenchOptions, BenchRuntime, BenchSweep } from '../bench/bench-config.js';
import { NodeHosts } from '../runtime/node-hosts.js';
import { benchNodes, budgetsIgnored, cacheName, checkRemoteFlags } from '../bench/bench-nodes.js';
import { manualSplitFrom, resolveSplit } from '../plan/manual-split.js';
import { BenchSites } from '../bench/bench-sites.js';
import type { BenchReport, ConfigResult } from '../bench/bench-result.js';
import { contextSize, planConfigs } from '../bench/config-planner.js';
import { modelInfo } from '../plan/model-info.js';
import { benchPlacements, type MeasuredChain } from '../bench/bench-placement.js';
import { chainLinkSeconds, lookupSpeed, modelKey, nodeSpeedOf } from '../plan/speed-cache.js';
import { readLinks, readSpeeds } from './speed-store.js';
import { binaries, buildDirs, type BinDirs } from '../provision/llama-builds.js';
import { banByteTokens } from '../bench/prompt-tokens.js';
import { mergeRounds } from '../bench/merge-rounds.js';
import { TcpInfoReader } from '../bench/kernel-link-counter.js';
import { runConfig } from '../bench/run-config.js';
import { onOffPoints, scalingPoints } from '../bench/serving-tables.js';
import { checkLinkPoll } from '../runtime/link-poll.js';
import { checkBatchGroups, checkGroups } from '../runtime/server-argv.js';
import { chooseBatchGroups } from '../plan/batch-groups.js';

export interface BenchRequest extends BenchSweep {
  readonly model: string;
  /** `--nodes` text, or the nodes of a cluster file. */
  readonly nodes?: string | readonly NodeSpec[];
  readonly nodeCount?: number;
  /** --groups N: the chains' heads keep up to N slot groups in flight (--stage-groups); undefined: the engine default. */
  readonly groups?: number;
  /** --batch-groups N: the chains' heads batch their groups from N generating requests (--stage-batch-groups); chain-K-nobatch does not. */
  readonly batchGroupsFrom?: number;
  /** --link-poll: the busy-poll window of chain ranks with a core to themselves; default LINK_POLL_US. */
  readonly linkPollUs?: number;
  readonly rpc: boolean;
  readonly stock: boolean;
  readonly only?: readonly string[];
  /** Manual placement over all the nodes: `--split 0:4,4:18` or `--layers-per-node 4,14` (or the cluster file's layers=). */
  readonly split?: string;
  readonly layersPerNode?: string;
  readonly batch?: number;
  readonly ubatch?: number;
  /** Fault trials per round on the N-rank chain: a worker SIGKILLed mid-stream, restarted, the resume timed (0: none). */
  readonly faults?: number;
  /** Both directories, or neither (then scripts/build-llama.sh finds or builds them). */
  readonly binDirs?: BinDirs;
  readonly roots?: readonly string[];
  readonly readyTimeoutMs?: number;
  /** ssh for remote nodes, as `up` takes it. */
  readonly sshConfig?: string;
  readonly acceptNewHostKeys?: boolean;
  readonly connectTimeoutSeconds?: number;
  /** Cache directory on remote nodes for binaries, slices and the whole model (default: ~/.cache/llama-relay there). */
  readonly nodeCacheDir?: string;
  /** Pidfile directory of the remote wrapper on the nodes. */
  readonly runDir?: string;
  readonly signal?: AbortSignal;
  /** Progress, on the one event stream (bench-* events, info). */
  readonly onEvent?: Listener;
}

function check(req: BenchRequest): void {
  const positiveInt = (flag: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UserError(`${flag} must be a positive integer, not ${v}`);
  };
  positiveInt('--gen-tokens', req.genTokens);
  positiveInt('--repeat', req.repeat);
  positiveInt('--threads', req.threads);
  positiveInt('--batch', req.batch);
  positiveInt('--ubatch', req.ubatch);
  if (req.faults !== undefined && !(Number.isInteger(req.faults) && req.faults >= 0)) throw new UserError(`--fault must be a whole number of trials, not ${req.faults}`);
  if (!(req.linkLatencyMs >= 0 && req.linkLatencyMs <= 10_000)) throw new UserError(`--link-latency-ms must be between 0 and 10000, not ${req.linkLatencyMs}`);
  checkLinkPoll(req.linkPollUs);
  checkGroups(req.groups);
  checkBatchGroups(req.batchGroupsFrom);
}

export async function runBench(req: BenchRequest): Promise<BenchReport> {
  check(req);
  // One signal stops everything a run starts: processes, relays and in-flight requests.
  if (req.signal) setMaxListeners(0, req.signal);
  const emit = req.onEvent ?? (() => undefined);
  const nodes = benchNodes(req.nodes, req.nodeCount);
  checkRemoteFlags(nodes, req);
  const manual = manualSplitFrom({
    split: req.split,
    layersPerNode: req.layersPerNode,
    nodeLayers: typeof req.nodes === 'object' ? req.nodes.map((n) => n.layers) : undefined,
  });
  const budgets = budgetsIgnored(req.nodes);
  if (budgets.length) emit({ kind: 'info', message: `bench balances the layers' compute over nodes of one speed; the memory budgets of ${budgets.join(', ')} are not used` });
  const resolved = await resolveModel(req.model, candidateRoots(req.roots ?? []));
  const gguf = await loadGgufModel(resolved.ggufPath);
  const arch = gguf.metadata.string('general.architecture') ?? 'unknown';
  const layers = gguf.metadata.number(`${arch}.block_count`);
  if (!layers) throw new UserError(`${resolved.ggufPath}: no ${arch}.block_count; is it a model GGUF?`);
  const tokenTypes = gguf.metadata.get('tokenizer.ggml.token_type');
  const logitBias = isGgufArray(tokenTypes) ? banByteTokens(tokenTypes.items.map(Number)) : [];

  const cores = availableParallelism();
  const sweep: BenchSweep = {
    promptTokens: req.promptTokens,
    genTokens: req.genTokens,
    parallel: req.parallel,
    repeat: req.repeat,
    linkLatencyMs: req.linkLatencyMs,
    threads: req.threads,
    taskset: req.taskset,
  };
  const options: BenchOptions = {
    nodes,
    ...sweep,
    cores,
    rpc: req.rpc,
    stock: req.stock,
    only: req.only,
    ...(req.groups !== undefined ? { groups: req.groups } : {}),
    batch: req.batch,
    ubatch: req.ubatch,
  };
  const split = manual ? resolveSplit(manual, nodes.length, layers).map((r) => [r.layerStart, r.layerEnd] as const) : undefined;
  if (split) emit({ kind: 'info', message: `bench: the ${nodes.length}-rank configurations use the split given, ${split.map(([a, b]) => `${a}:${b}`).join(',')}` });
  const measured = await measuredChains(nodes, resolved.ggufPath);
  const slots = Math.max(...req.parallel);
  const placements = benchPlacements(modelInfo(gguf.metadata, gguf.tensors), nodes.length, slots, measured);
  // Each K-rank chain batches its groups as `up` would on these nodes (--batch-groups decides where given).
  const batchGroups = new Map<number, number>();
  for (let k = 2; k <= nodes.length; k++) {
    const gains = measured(k)?.batchGains;
    const c = chooseBatchGroups({ ranks: k, parallel: slots, ...(gains ? { gains } : {}), ...(req.batchGroupsFrom !== undefined ? { asked: req.batchGroupsFrom } : {}) });
    batchGroups.set(k, c.from);
    if (slots > 1) emit({ kind: 'info', message: `bench: the ${k}-rank chains' batched groups: ${c.why}` });
  }
  if (!split) {
    for (const [k, p] of placements) {
      const ranges = p.ranges.map(([a, b]) => `${a}:${b}`).join(',');
      emit({ kind: 'info', message: `bench: the ${k}-rank configurations use ${ranges}, ${p.measured ? 'balanced on the speeds plan --probe measured' : 'balanced over ranks of one speed (plan --probe first to place on measured speeds)'}` });
    }
  }
  const placement = new Map([...placements].map(([k, p]) => [k, p.ranges]));
  const configs = planConfigs({ ...options, placement, batchGroups, ...(split ? { split } : {}) }, layers);
  const faults = req.faults ?? 0;
  // --fault measures the resume on the full chain: a worker of the N-rank chain killed and started again on this machine.
  const faultId = `chain-${nodes.length}`;
  if (faults > 0) {
    if (nodes.length < 2) throw new UserError(`--fault kills a worker rank of the ${nodes.length}-rank chain, which has none`, ['run it with 2 nodes or more (-n 2)']);
    const remote = nodes.filter((n) => n.kind === 'ssh').map((n) => n.name);
    if (remote.length) {
      throw new UserError(`--fault kills and restarts a rank on this machine; ${remote.join(', ')} ${remote.length > 1 ? 'are' : 'is'} remote`, ['use local nodes only (-n 3)']);
    }
    if (!configs.some((c) => c.id === faultId)) throw new UserError(`--fault measures ${faultId}, which --only leaves out`, [`add ${faultId} to --only`]);
  }
  const runtime: BenchRuntime = {
    threads: req.threads,
    ctx: contextSize(req.promptTokens, req.genTokens, slots),
    slots,
    batch: req.batch,
    ubatch: req.ubatch,
  };
  emit({ kind: 'info', message: `bench: ${configs.map((c) => c.id).join(', ')} on ${resolved.ggufPath} (${layers} layers)` });
  const bins = await binaries(req.binDirs ?? (await buildDirs(req.signal)));

  const startedAt = new Date().toISOString();
  const results: ConfigResult[] = [];
  const hosts = nodes.some((n) => n.kind === 'ssh')
    ? await NodeHosts.open(nodes, {
        sshConfig: req.sshConfig,
        acceptNewHostKeys: req.acceptNewHostKeys,
        connectTimeoutSeconds: req.connectTimeoutSeconds,
        runDir: req.runDir,
        signal: req.signal,
      })
    : undefined;
  try {
    const remote = hosts
      ? {
          hosts,
          sites: new BenchSites({
            hosts,
            model: resolved.ggufPath,
            gguf,
            bins,
            nodeCacheDir: req.nodeCacheDir,
            info: (message) => emit({ kind: 'info', message }),
            signal: req.signal,
          }),
        }
      : undefined;
    const runTag = randomBytes(3).toString('hex');
    const tcpInfo = new TcpInfoReader((message) => emit({ kind: 'info', message }));
    // Repeats are rounds over every configuration (each started afresh), not back-to-back runs of one: a machine
    // whose speed drifts (shared hosts, VMs) then slows every configuration alike instead of whichever ran last.
    const rounds = new Map<string, ConfigResult[]>(configs.map((c) => [c.id, []]));
    for (let round = 0; round < req.repeat; round++) {
      for (const c of configs) {
        if (req.signal?.aborted) throw new UserError('bench interrupted');
        const done = rounds.get(c.id)!;
        // A configuration that failed once is reported as failed, not tried again.
        if (done.some((r) => r.error !== undefined)) continue;
        done.push(
          await runConfig(c, {
            model: resolved.ggufPath,
            bins,
            runtime,
            nodes,
            linkLatencyMs: req.linkLatencyMs,
            linkPollUs: req.linkPollUs,
            promptTokens: req.promptTokens,
            genTokens: req.genTokens,
            parallel: req.parallel,
            repeat: 1,
            faults: c.id === faultId ? faults : 0,
            round: { index: round, of: req.repeat },
            logitBias,
            readyTimeoutMs: req.readyTimeoutMs ?? 300_000,
            emit,
            runTag,
            tcpInfo,
            remote,
            signal: req.signal,
          }),
        );
      }
    }
    for (const c of configs) results.push(mergeRounds(rounds.get(c.id)!));
  } finally {
    await hosts?.close();
  }
  if (req.signal?.aborted) throw new UserError('bench interrupted');

  const settings = {
    nodes: nodes.map((n) => n.name),
    ...sweep,
    ctx: runtime.ctx,
    batch: req.batch,
    ubatch: req.ubatch,
    faults,
  };
  return {
    version: 3,
    startedAt,
    model: { path: resolved.ggufPath, layers, fileBytes: gguf.fileBytes, arch },
    machine: { cores, cpu: cpus()[0]?.model.trim() ?? 'unknown' },
    settings,
    configs: results,
    hopOverhead: hopOverheads(results, req.linkLatencyMs),
    scaling: scalingPoints(results),
    onOff: onOffPoints(results),
    findings: findings(results, settings),
  };
}

/**
 * Each bench node's measurements for this model as `plan --probe` left them in the speed cache, by the name the cache
 * gives it (this machine's are all "local"): the first k nodes' speeds and links, where every one was measured.
 */
async function measuredChains(nodes: readonly BenchNode[], ggufPath: string): Promise<(k: number) => MeasuredChain | undefined> {
  const names = nodes.map(cacheName);
  const key = modelKey(ggufPath, (await stat(ggufPath)).size);
  const records = await readSpeeds();
  const links = await readLinks();
  return (k) => {
    const known = names.slice(0, k).map((n) => lookupSpeed(records, n, key));
    if (known.some((r) => r === undefined)) return undefined;
    const measured = known as NonNullable<(typeof known)[number]>[];
    return { speeds: measured.map(nodeSpeedOf), links: chainLinkSeconds(names.slice(0, k), measured, links), batchGains: measured.map((r) => r.batchGain) };
  };
}
