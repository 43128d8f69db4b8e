// `up`: connect to every node, check what each rank needs, launch the chain downstream-first, serve or generate, tear down.
import { randomBytes } from 'node:crypto';
import getPort from 'get-port';
import { startApiProxy, type ApiProxy } from '../serve/api-proxy.js';
import { ClusterRun } from '../runtime/cluster-run.js';
import { evenSplit } from '../runtime/even-split.js';
import { runChatSession } from '../serve/chat-session.js';
import { generationSettings, type GenerationSettings } from '../serve/generation-settings.js';
import { generateOnce, promptMode } from '../serve/generate.js';
import { planLaunch, type LaunchNode } from '../runtime/launch-plan.js';
import { checkBatchGroups, checkGroups, type ChainRuntime } from '../runtime/server-argv.js';
import { generateSecret } from '../runtime/secret.js';
import { UserError } from '../errors.js';
import { EventBus } from '../events/event-bus.js';
import type { Emit } from '../events/events.js';
import { parseNodeList, type NodeSpec } from '../plan/node-spec.js';
import { formatSplit, manualSplitFrom, resolveSplit } from '../plan/manual-split.js';
import { PLACEMENT_TEXT, type PlanNode } from '../plan/planner.js';
import type { Prediction } from '../plan/speed-model.js';
import { makeControlDir } from '../ssh/ssh-transport.js';
import type { Forward, Transport } from '../ssh/transport.js';
import { canConnect } from '../ssh/wait-for-port.js';
import { checkSpares, spareTimeouts, splitSpares } from '../plan/spares.js';
import { hostPort, splitHostPort } from '../runtime/host-port.js';
import { startLinkRelay, type LinkRelay } from '../runtime/link-relay.js';
import { patchedLlamaServer } from '../provision/llama-builds.js';
import { provisionChain } from '../provision/provision-nodes.js';
import { connectNodes, isLocalSpec, nodeName, nodeTransports, sshSettings } from '../runtime/node-transports.js';
import { checkLinkPoll, linkPollWindows } from '../runtime/link-poll.js';
import { modelChatTemplate } from './model-template.js';
import { chooseBatchGroups } from '../plan/batch-groups.js';
import { planModel } from './plan.js';
import { looksLikeModelPath, resolveModel } from '../ollama/resolve.js';
import { candidateRoots } from '../ollama/roots.js';
import { rejectedOnAbort } from '../process/rejected-on-abort.js';
import { bindRefusal } from '../serve/api-guard.js';
import { ChainMetrics } from '../events/chain-metrics.js';
import { describeServedModel, minimalServedModel } from './served-model.js';

export interface UpOptions {
  /** GGUF path or an Ollama name; remote nodes get their ranks' slices (with --layers: the same path on every node). */
  model: string;
  /** `--nodes` text: `[user@]host[:port][=MEM],...` (or the specs of a cluster file); `local` runs here without ssh. */
  nodes: string | readonly NodeSpec[];
  /** llama-server on every node; default: the patched build from scripts/build-llama.sh. */
  llamaServer?: string;
  /** Split this many layers evenly instead of planning from the GGUF header. */
  layers?: number;
  /** Manual placement: `--split 0:4,4:18` or `--layers-per-node 4,14` (a cluster file's layers= comes with the nodes). */
  split?: string;
  layersPerNode?: string;
  apiPort: number;
  /** Address the API binds on this machine (default 127.0.0.1); another needs apiKey or allowNoApiKey. */
  apiHost?: string;
  /** Bearer key every endpoint but liveness requires (read from a file or the environment; never passed on argv). */
  apiKey?: string;
  /** --no-api-key: serve a non-loopback address without a key, as the user said. */
  allowNoApiKey?: boolean;
  /** Browser origins allowed to call the API besides same-origin and loopback pages. */
  apiOrigins?: readonly string[];
  stagePortBase: number;
  runtime: ChainRuntime;
  prompt?: string;
  /** --raw: send the prompt as a plain completion even where the model has a chat template. */
  raw?: boolean;
  /** --interactive: chat with the chain, one message per line, until the lines end or /exit (instead of serving). */
  chatLines?: AsyncIterable<string>;
  maxTokens: number;
  sshConfig?: string;
  acceptNewHostKeys?: boolean;
  connectTimeoutSeconds?: number;
  /** Carry activations through ssh tunnels via this machine (untrusted networks); ranks bind loopback only. */
  tunnelActivations?: boolean;
  readyTimeoutSeconds: number;
  stageTimeoutSeconds?: number;
  /** false (--no-microbatch): the head decodes without micro-batches across requests (--stage-no-microbatch). */
  microbatch?: boolean;
  /** --groups N: the head keeps up to N groups of generating requests in flight across decode steps (--stage-groups); undefined: engine default. */
  groups?: number;
  /** --batch-groups N: from N generating requests, the head keeps one batched group per rank (--stage-batch-groups; 0: off); undefined: chosen from the probe's batch gain (batch-groups.ts). */
  batchGroupsFrom?: number;
  /** --link-poll US: the busy-poll window of ranks with a machine to themselves (engine --stage-poll); 0: off; default LINK_POLL_US. */
  linkPollUs?: number;
  /** Seconds a request in flight waits for a lost rank to come back before it fails (the head's --stage-resume-timeout). */
  resumeTimeoutSeconds?: number;
  /** With spare nodes (a cluster file's spare lines): seconds a worker rank's node may stay lost before its rank moves to a spare (default 30). */
  replaceAfterSeconds?: number;
  /** Cache directory on the nodes for provisioned binaries and slices (default: ~/.cache/llama-relay there). */
  nodeCacheDir?: string;
  /** Pidfile directory on the nodes (default: $TMPDIR/llama-relay-$UID there). */
  runDir?: string;
  /** Seconds to wait while another launcher provisions the same node cache. */
  provisionLockTimeoutSeconds?: number;
  /** Extra environment for every rank (tests use it to steer fixtures). */
  rankEnv?: Readonly<Record<string, string>>;
  extraArgs?: readonly string[];
  /**
   * Called once every node holds what its ranks run, before they start (plan --probe asks each node's own engine
   * for its devices here, and times the links): per rank, its node, the provisioned llama-server there and the
   * address its stage binds.
   */
  onProvisioned?: (ranks: readonly ProvisionedRank[], signal: AbortSignal) => Promise<void>;
  /** Called once the chain serves (programmatic use: startCluster); up() goes on serving until `signal` aborts. */
  onReady?: (ready: { apiUrl: string; generation: GenerationSettings }) => void;
}

export interface ProvisionedRank {
  readonly rank: number;
  readonly node: string;
  readonly transport: Transport;
  readonly binary: string;
  readonly address: string;
}

export interface UpResult {
  apiUrl: string;
  text?: string;
}

/** Runs until the prompt is answered, the chat ends, or (server mode) until `signal` aborts. Always tears down before returning. */
export async function up(o: UpOptions, bus: EventBus, signal: AbortSignal): Promise<UpResult> {
  const emit = bus.emit;
  checkGroups(o.groups);
  checkBatchGroups(o.batchGroupsFrom);
  checkLinkPoll(o.linkPollUs);
  const apiHost = o.apiHost ?? '127.0.0.1';
  const exposed = bindRefusal(apiHost, !!o.apiKey, !!o.allowNoApiKey);
  if (exposed) throw new UserError(exposed, ['require a key: --api-key-file FILE (or LLAMA_RELAY_API_KEY)', 'or serve without one, on purpose: --no-api-key']);
  const metrics = new ChainMetrics();
  const unsubscribeMetrics = bus.subscribe(metrics.onEvent);
  const listed = typeof o.nodes === 'string' ? parseNodeList(o.nodes) : [...o.nodes];
  const { active: specs, spares } = splitSpares(listed);
  const timeouts = spareTimeouts({
    spares: spares.length,
    ...(o.replaceAfterSeconds !== undefined ? { replaceAfterSeconds: o.replaceAfterSeconds } : {}),
    ...(o.resumeTimeoutSeconds !== undefined ? { resumeTimeoutSeconds: o.resumeTimeoutSeconds } : {}),
  });
  if (spares.length && o.tunnelActivations) {
    throw new UserError('spare nodes and --tunnel-activations cannot be combined yet', ['drop the spare lines, or --tunnel-activations']);
  }
  const control = makeControlDir();
  const settings = sshSettings(control.dir, o);
  // the chain's nodes and the spares: every one is connected and provisioned up front
  const transports = nodeTransports(listed, settings);
  let run: ClusterRun | undefined;
  let proxy: ApiProxy | undefined;
  let unwatch: (() => void) | undefined;
  const tunnels: Forward[] = [];
  let relay: LinkRelay | undefined;
  try {
    const { ranges, modelPath, memory, params, system, placement, prediction, offload, batchGains } = await layerRanges(o, specs);
    checkSpares(spares, ranges.map((_, i) => memory?.[i]));
    emit({ kind: 'info', message: `placement: ${placement} (${formatSplit(ranges)})` });
    offload?.forEach((g, i) => {
      if (g) emit({ kind: 'info', message: `rank ${i}: ${g.layers} of its layers on ${g.device} (-ngl ${g.layers}), the rest in RAM` });
    });
    if (prediction) unwatch = watchPrediction(bus, prediction);
    const batched = chooseBatchGroups({ ranks: ranges.length, parallel: o.runtime.parallel, ...(batchGains ? { gains: batchGains } : {}), ...(o.batchGroupsFrom !== undefined ? { asked: o.batchGroupsFrom } : {}) });
    if (ranges.length > 1 && o.runtime.parallel > 1) emit({ kind: 'info', message: `batched groups: ${batched.why}` });
    const generation = generationSettings({ chatTemplate: await modelChatTemplate(modelPath), ollamaParams: params, system });
    const served = await describeServedModel(o.model, o.runtime).catch(() => minimalServedModel(o.model, o.runtime));
    ranges.forEach((r, i) =>
      emit({ kind: 'rank-planned', rank: i, node: nodeName(specs[i]!), layers: [r.layerStart, r.layerEnd], role: i === 0 ? 'head' : 'worker' }),
    );
    const { perRank: addresses, byNode } = await connectAll(specs, transports, emit, signal);
    const binary = o.llamaServer ?? (await patchedLlamaServer(emit, signal));
    const { ranks: resources, spares: spareResources } = await provisionChain({
      ranks: ranges.map((r, i) => ({ rank: i, node: nodeName(specs[i]!), ...r })),
      transports,
      binary,
      binaryGiven: o.llamaServer !== undefined,
      model: modelPath,
      sliceModel: o.layers === undefined,
      memory,
      spares: spares.map((x) => x.name),
      nodeCacheDir: o.nodeCacheDir,
      runDir: o.runDir,
      lockWaitSeconds: o.provisionLockTimeoutSeconds,
      emit,
      signal,
    });

    await o.onProvisioned?.(
      specs.map((s, i) => ({ rank: i, node: nodeName(s), transport: transports.get(nodeName(s))!, binary: resources[i]!.binary, address: addresses[i]! })),
      signal,
    );
    const head = transports.get(nodeName(specs[0]!))!;
    const stagePorts = await Promise.all(specs.map((s, i) => (transports.get(nodeName(s))!.isLocal ? getPort({ host: '127.0.0.1' }) : o.stagePortBase + i)));
    if (await canConnect('127.0.0.1', o.apiPort)) {
      throw apiPortTaken(o.apiPort);
    }
    // The head's own HTTP port is private (loopback on its node); the API users see is the proxy on --api-port.
    const api = { host: '127.0.0.1', port: head.isLocal ? await getPort({ host: '127.0.0.1' }) : o.stagePortBase + specs.length };
    const tunnelled = o.tunnelActivations
      ? await tunnelLinks(specs.map((s) => transports.get(nodeName(s))!), stagePorts, o.stagePortBase, tunnels)
      : undefined;
    // With spares the head dials rank 1 through a relay here, which a move of rank 1 re-points (the head keeps running).
    let headLink: string | undefined;
    if (spares.length) {
      relay = await startLinkRelay(hostPort(addresses[1]!, stagePorts[1]!));
      if (head.isLocal) headLink = relay.address;
      else {
        const back = await head.reverseForward(o.stagePortBase + specs.length + 1, '127.0.0.1', relay.port);
        tunnels.push(back);
        headLink = back.address;
      }
    }
    const spareStage = new Map(
      await Promise.all(
        spares.map(async (x, j) => [x.name, { host: byNode.get(x.name)!, port: transports.get(x.name)!.isLocal ? await getPort({ host: '127.0.0.1' }) : o.stagePortBase + specs.length + 2 + j }] as const),
      ),
    );
    const rankNodes = ranges.map((_, i): LaunchNode => {
      const stageHost = tunnelled ? '127.0.0.1' : addresses[i]!;
      return { name: nodeName(specs[i]!), stageHost, binary: resources[i]!.binary, model: resources[i]!.model };
    });
    // Local ranks share this machine; ssh nodes of other names are taken for machines of their own.
    const polls = linkPollWindows(specs.map((s) => ({ machine: isLocalSpec(s) ? 'local' : nodeName(s) })), o.linkPollUs);
    const launchInput = {
      ranks: ranges.map((r, i) => {
        const gpuLayers = offload?.[i]?.layers;
        return { node: rankNodes[i]!, ...r, ...(gpuLayers ? { gpuLayers } : {}), pollUs: polls[i] };
      }),
      stagePorts,
      api: { ...api, alias: served.name },
      runtime: o.runtime,
      stageTimeoutSeconds: o.stageTimeoutSeconds,
      ...(timeouts.resumeTimeoutSeconds !== undefined ? { resumeTimeoutSeconds: timeouts.resumeTimeoutSeconds } : {}),
      // One name per launch: a restart of a rank in this run stops its stale copy, but another `up` on the same
      // node (another terminal, the same user) never takes this run's ranks for stale ones.
      runName: `lr${o.stagePortBase}-${randomBytes(3).toString('hex')}`,
      extraArgs: o.extraArgs,
      links: tunnelled ?? (headLink ? ranges.map((_, i) => (i === 0 ? headLink : undefined)) : undefined),
      microbatch: o.microbatch,
      ...(o.groups !== undefined ? { groups: o.groups } : {}),
      batchGroupsFrom: batched.from,
    };
    const launches = planLaunch(launchInput);
    // A move: the rank's node, binary, slice and stage port become the spare's; planLaunch re-derives every link.
    const relaunch = (moves: ReadonlyMap<number, string>) =>
      planLaunch({
        ...launchInput,
        ranks: launchInput.ranks.map((r, i) => {
          const to = moves.get(i);
          if (to === undefined) return r;
          const res = spareResources.get(to)!.get(i)!;
          const { gpuLayers: _, ...cpu } = r; // a spare's GPU was not planned for: its rank runs on the CPU
          return { ...cpu, node: { name: to, stageHost: spareStage.get(to)!.host, binary: res.binary, model: res.model } };
        }),
        stagePorts: stagePorts.map((p, i) => (moves.has(i) ? spareStage.get(moves.get(i)!)!.port : p)),
      });
    emit({ kind: 'info', message: 'launch secret generated; starting ranks downstream-first' });
    run = new ClusterRun(launches, {
      transports,
      secret: generateSecret(),
      emit,
      readyTimeoutMs: o.readyTimeoutSeconds * 1000,
      runDir: o.runDir,
      env: o.rankEnv,
      ...(spares.length
        ? {
            spares: {
              nodes: spares,
              replaceAfterMs: timeouts.replaceAfterSeconds! * 1000,
              ...(memory ? { rankMemory: memory } : {}),
              relaunch,
              onMoved: (now: readonly { rank: number; listen: string }[]) => relay!.retarget(now.find((l) => l.rank === 1)!.listen),
            },
          }
        : {}),
    });
    if (spares.length) {
      emit({ kind: 'info', message: `spare${spares.length > 1 ? 's' : ''} ${spares.map((x) => x.name).join(', ')} standing by: a worker rank lost for ${timeouts.replaceAfterSeconds} s moves to one (requests wait up to ${timeouts.resumeTimeoutSeconds} s)` });
    }
    const aborted = rejectedOnAbort(signal);
    const started = run;
    proxy = await startApiProxy({
      host: apiHost,
      port: o.apiPort,
      upstream: () => started.api,
      emit,
      model: served,
      apiKey: o.apiKey,
      origins: o.apiOrigins,
      metrics: () => metrics.render(),
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') throw err;
      throw apiPortTaken(o.apiPort);
    });
    await Promise.race([run.start(signal), run.fatal, aborted]);
    const apiUrl = proxy.url;
    // With a key, this process's own prompt and chat go to the head directly: the key guards the API, not the launcher.
    const selfUrl = o.apiKey ? (run.api ?? apiUrl) : apiUrl;
    emit({ kind: 'api-listening', url: apiUrl, model: served.name });
    emit({ kind: 'info', message: `chain ready: ${launches.length} ranks; API ${apiUrl}` });

    o.onReady?.({ apiUrl, generation });

    if (o.prompt !== undefined) {
      emit({ kind: 'info', message: promptMode(generation, o.raw).note });
      const r = await Promise.race([
        generateOnce(selfUrl, generation, o.prompt, { maxTokens: o.maxTokens, raw: o.raw ?? false, onToken: (text) => emit({ kind: 'token', text }), signal }),
        run.fatal,
      ]);
      emit({ kind: 'generation-done', tokens: r.tokens, seconds: r.seconds });
      // The chain timing of the whole answer, however short it was against the sampling interval.
      if (prediction) await run.checkHealth();
      // The head's own decode timing: the same measure the prediction was calibrated on.
      if (prediction && r.decodeTokensPerSecond) {
        emit({ kind: 'info', message: `decode: measured ${r.decodeTokensPerSecond.toFixed(1)} tok/s, predicted ${prediction.decodeTokensPerSecond.toFixed(1)} tok/s` });
      }
      return { apiUrl, text: r.text };
    }
    const session = o.chatLines
      ? runChatSession({ apiUrl: selfUrl, lines: o.chatLines, maxTokens: o.maxTokens, emit, signal, generation }).then(() => undefined)
      : undefined;
    session?.catch(() => undefined); // a rejection after teardown began is not news
    await Promise.race([run.fatal, aborted, ...(session ? [session] : [])]).catch((err: unknown) => {
      if (!signal.aborted) throw err;
    });
    return { apiUrl };
  } finally {
    emit({ kind: 'info', message: 'stopping all ranks' });
    await proxy?.close();
    await run?.stop();
    await relay?.close();
    await Promise.all(tunnels.map((t) => t.stop()));
    await Promise.all([...transports.values()].map((t) => t.close().catch(() => undefined)));
    control.remove();
    unsubscribeMetrics();
    unwatch?.();
  }
}

/**
 * Routes every link rank i -> i+1 through this machine: a forward to the next rank's loopback listen address, and,
 * when rank i is remote, a reverse forward so it dials 127.0.0.1 on its own node. Returns the address each rank dials.
 */
async function tunnelLinks(nodes: readonly Transport[], stagePorts: readonly number[], base: number, tunnels: Forward[]): Promise<string[]> {
  const n = nodes.length;
  const links: string[] = [];
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    const toNext = await nodes[j]!.forward('127.0.0.1', stagePorts[j]!);
    tunnels.push(toNext);
    if (nodes[i]!.isLocal) {
      links.push(toNext.address);
      continue;
    }
    const { host, port } = splitHostPort(toNext.address);
    // Rank i's dial port on its node: after the stage ports and the head's API port.
    const back = await nodes[i]!.reverseForward(base + n + 1 + i, host, port);
    tunnels.push(back);
    links.push(back.address);
  }
  return links;
}

async function layerRanges(
  o: UpOptions,
  specs: readonly NodeSpec[],
): Promise<{
  ranges: { layerStart: number; layerEnd: number }[];
  modelPath: string;
  placement: string;
  prediction?: Prediction;
  /** Per rank, its GPU offload where its node has a GPU (from the node's last probe). */
  offload?: (PlanNode['offload'] | undefined)[];
  memory?: number[];
  params?: Record<string, unknown>;
  system?: string;
  /** Per rank, the batch gain its node's last probe measured (undefined: not measured). */
  batchGains?: (number | undefined)[];
}> {
  const manualFlags = { ...(o.split !== undefined ? { split: o.split } : {}), ...(o.layersPerNode !== undefined ? { layersPerNode: o.layersPerNode } : {}) };
  if (o.layers !== undefined) {
    const manual = manualSplitFrom({ ...manualFlags, nodeLayers: specs.map((s) => s.layers) });
    if (!manual && o.layers < specs.length) throw new UserError(`${specs.length} nodes but only ${o.layers} layers`, [`use at most ${o.layers} nodes`]);
    const ranges = manual ? resolveSplit(manual, specs.length, o.layers) : evenSplit(o.layers, specs.length).map(([layerStart, layerEnd]) => ({ layerStart, layerEnd }));
    // --layers skips planning (the path may exist only on the nodes), but an Ollama name still resolves to its blob.
    const modelPath = looksLikeModelPath(o.model) ? o.model : (await resolveModel(o.model, candidateRoots([]))).ggufPath;
    return { ranges, modelPath, placement: manual ? `as given by ${manual.from}` : `even over --layers ${o.layers}` };
  }
  const r = await planModel({ model: o.model, nodes: specs, runtime: { ctx: o.runtime.ctx, parallel: o.runtime.parallel }, ...manualFlags });
  return {
    placement: PLACEMENT_TEXT[r.plan.placement],
    ...(r.plan.prediction ? { prediction: r.plan.prediction } : {}),
    ...(r.plan.nodes.some((n) => n.offload) ? { offload: r.plan.nodes.map((n) => n.offload) } : {}),
    ranges: r.plan.nodes.map((n) => ({ layerStart: n.layerStart, layerEnd: n.layerEnd })),
    modelPath: r.model.ggufPath,
    memory: r.plan.nodes.map((n) => n.memory.total),
    ...(r.speeds ? { batchGains: r.speeds.map((s) => s.batchGain) } : {}),
    params: r.model.params,
    system: r.model.system,
  };
}

/**
 * The prediction before launch, then against the chain's decode as the head's chain timing comes in: per token, the
 * head's layers, the round trip through the workers and links (with any stall of theirs), and the head's output part,
 * which the chain timing leaves out (the calibrated figure stands in for it). Ends with the bus's subscribers.
 */
function watchPrediction(bus: EventBus, p: Prediction): () => void {
  const predicted = { predictedDecodeTps: p.decodeTokensPerSecond, ...(p.prefillTokensPerSecond !== undefined ? { predictedPrefillTps: p.prefillTokensPerSecond } : {}) };
  bus.emit({ kind: 'decode-vs-predicted', ...predicted });
  let seen = 0;
  return bus.subscribe((e) => {
    if (e.kind !== 'chain-stats' || e.tokens === seen || e.tokens === 0) return;
    seen = e.tokens;
    const head = e.ranks.find((r) => r.rank === 0)?.computeMsPerToken ?? 0;
    const ms = head + e.roundTripMsPerToken + p.headOutputSeconds * 1000;
    if (ms > 0) bus.emit({ kind: 'decode-vs-predicted', ...predicted, measuredDecodeTps: 1000 / ms, tokens: e.tokens });
  });
}

/** Connects to every node (spares too) in parallel; returns, per rank and per node, the address its stage socket binds to. */
async function connectAll(
  specs: readonly NodeSpec[],
  transports: Map<string, Transport>,
  emit: Emit,
  signal: AbortSignal,
): Promise<{ perRank: string[]; byNode: Map<string, string> }> {
  const ranksOf = (name: string) => specs.flatMap((s, i) => (nodeName(s) === name ? [i] : []));
  const addresses = await connectNodes(transports.values(), {
    signal,
    onConnect: (t) => ranksOf(t.name).forEach((rank) => emit({ kind: 'node-phase', rank, node: t.name, phase: 'connect' })),
    onFailed: (t) => ranksOf(t.name).forEach((rank) => emit({ kind: 'node-phase', rank, node: t.name, phase: 'failed', detail: 'cannot connect' })),
  });
  return { perRank: specs.map((s) => addresses.get(nodeName(s))!), byNode: addresses };
}

/** Checked before launching, and again when the proxy binds (something may take the port meanwhile). */
function apiPortTaken(port: number): UserError {
  return new UserError(`port ${port} is already taken on this machine, so the API cannot listen there`, ['choose another port: --api-port']);
}
