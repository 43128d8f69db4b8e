// `plan --probe`: measure the nodes for this model, then plan with the measurements. A short calibration run of the
// real chain (the `up` service, so the same provisioning and ranks): one greedy completion whose decode time the head
// times, then the head's /health chain timing (each rank's compute, the round trip, the hop). The result goes to the
// speed cache (per node, binary, model). Once every node holds its llama-server (provisioned) and before the ranks
// start, each node's own engine lists its devices, its memory and CPU quota are read, and every link of the chain is
// timed (TCP connects to a port the next node listens on: provision/probe-links.ts).
import { stat } from 'node:fs/promises';
import getPort from 'get-port';
import { headHealth, streamCompletion, type ChainStats } from '../runtime/head-client.js';
import { ExternalError, UserError } from '../errors.js';
import { EventBus } from '../events/event-bus.js';
import type { Emit } from '../events/events.js';
import { parseNodeList, type NodeSpec } from '../plan/node-spec.js';
import type { NodeDevices } from '../provision/node-devices.js';
import { createServer, type AddressInfo } from 'node:net';
import { probeNodeDevices } from '../provision/probe-devices.js';
import { measureLink } from '../provision/probe-links.js';
import { modelKey, recordsFromChainStats, type LinkRecord, type SpeedRecord } from '../plan/speed-cache.js';
import { patchedLlamaServer } from '../provision/llama-builds.js';
import { nodeName } from '../runtime/node-transports.js';
import { BATCH_ROWS } from '../plan/batch-groups.js';
import { planModel } from './plan.js';
import { saveDevices, saveSpeeds } from './speed-store.js';
import { up, type ProvisionedRank } from './up.js';

export interface ProbeRequest {
  readonly model: string;
  readonly nodes: string | readonly NodeSpec[];
  readonly ctx: number;
  readonly threads?: number;
  /** llama-server on every node (default: the patched build, provisioned to remote nodes as `up` does). */
  readonly llamaServer?: string;
  readonly sshConfig?: string;
  readonly acceptNewHostKeys?: boolean;
  readonly runDir?: string;
  readonly nodeCacheDir?: string;
  readonly stagePortBase?: number;
  /** Tokens the calibration decodes (default CALIBRATION_TOKENS). */
  readonly tokens?: number;
  readonly emit: Emit;
  readonly signal: AbortSignal;
}

export interface ProbeResult {
  readonly records: readonly SpeedRecord[];
  /** The chain's links as measured (rank i to i+1, the last back to the head). */
  readonly links: readonly LinkRecord[];
  /** Per node (in order): what its engine and OS reported. */
  readonly devices: readonly (NodeDevices | undefined)[];
  /** The measured run: its split and decode, and (where the context held BATCH_ROWS slots) its batch gain. */
  readonly measured: { readonly split: string; readonly decodeTokensPerSecond: number; readonly batchGain?: number };
}

const PROMPT = 'The history of the Roman Empire begins';
// Long enough to average over a shared host's swings in load: 64 tokens (about 10 s here) measured 5.5 tok/s in a busy
// moment where bench then measured 7.8 on every split (a 42% miss from one sample).
const CALIBRATION_TOKENS = 192;
// A longer prompt for the prefill timing (a few words is too short a batch to be typical): some 50 tokens a copy.
const PARAGRAPH =
  'Rome grew from a small town on the Tiber into an empire that ruled the Mediterranean world. Its roads, laws and ' +
  'cities outlasted its emperors, and its language became the root of many others spoken today across Europe. ';
// The batch phase: BATCH_ROWS requests of this many tokens decoded together (short: its steps are the costly part).
const BATCH_TOKENS = 96;
const calibrationPrompt = (ctx: number, tokens: number): string => {
  const copies = Math.max(0, Math.min(4, Math.floor((ctx - tokens - 64) / 60)));
  return PARAGRAPH.repeat(copies) + PROMPT;
};

/** Runs the calibration and saves its measurements; returns them with each node's devices. */
export async function probeSpeeds(req: ProbeRequest): Promise<ProbeResult> {
  const specs = typeof req.nodes === 'string' ? parseNodeList(req.nodes) : [...req.nodes];
  if (specs.length < 2) throw new UserError('plan --probe measures a chain: give at least two nodes', ['e.g. --nodes local,alice@gpu1']);
  const binary = req.llamaServer ?? (await patchedLlamaServer(req.emit, req.signal));
  // The split the calibration runs: what the planner would choose without measurements (every node gets layers).
  const first = await planModel({ model: req.model, nodes: specs, runtime: { ctx: req.ctx }, speeds: [] });
  const ranges = first.plan.nodes.map((n) => ({ node: nodeName(specs[n.index]!), layerStart: n.layerStart, layerEnd: n.layerEnd }));
  const split = ranges.map((r) => `${r.layerStart}:${r.layerEnd}`).join(',');
  const tokens = req.tokens ?? CALIBRATION_TOKENS;
  // BATCH_ROWS slots where each can hold the calibration (the context is shared by the slots): then a second phase
  // decodes BATCH_ROWS requests as one batch per step (micro-batches off), for the batch gain. One stream is the same
  // with or without micro-batches (there is nothing to split).
  const slots = Math.floor(req.ctx / BATCH_ROWS) >= tokens + 64 ? BATCH_ROWS : 1;
  req.emit({ kind: 'info', message: `probe: a calibration run of ${tokens} tokens on layers ${split}${slots > 1 ? `, then ${slots} requests of ${BATCH_TOKENS} decoded as one batch` : ''}` });

  const bus = new EventBus();
  bus.subscribe((e) => (e.kind === 'info' || e.kind === 'node-phase' || e.kind === 'error' || e.kind === 'rank-exited' ? req.emit(e) : undefined));
  const ac = new AbortController();
  const stop = () => ac.abort();
  req.signal.addEventListener('abort', stop, { once: true });
  let measuredRun: { stats: ChainStats; decodeMs: number; prompt?: { ms: number; tokens: number }; batchGain?: number } | undefined;
  let probed: { devices: (NodeDevices | undefined)[]; links: (number | undefined)[] } | undefined;
  let failure: unknown;
  const ready = async ({ apiUrl }: { apiUrl: string }) => {
    try {
      const one = await calibrate(apiUrl, calibrationPrompt(Math.floor(req.ctx / slots), tokens), tokens, ac.signal);
      measuredRun = slots > 1 ? { ...one, batchGain: (await batchDecodeTps(apiUrl, slots, ac.signal)) * (one.decodeMs / 1000) } : one;
    } catch (err) {
      failure = err;
    } finally {
      ac.abort();
    }
  };
  await up(
    {
      model: req.model,
      nodes: specs,
      // Not given: `up` provisions each remote node as it would for a run (its own copy or build), and the devices
      // are listed by that copy.
      ...(req.llamaServer ? { llamaServer: req.llamaServer } : {}),
      split,
      apiPort: await getPort({ host: '127.0.0.1' }),
      stagePortBase: req.stagePortBase ?? 47100,
      runtime: { ctx: req.ctx, parallel: slots, ...(req.threads !== undefined ? { threads: req.threads, threadsBatch: req.threads } : {}) },
      ...(slots > 1 ? { microbatch: false, batchGroupsFrom: 0 } : {}),
      maxTokens: tokens,
      readyTimeoutSeconds: 600,
      ...(req.sshConfig ? { sshConfig: req.sshConfig } : {}),
      ...(req.acceptNewHostKeys ? { acceptNewHostKeys: true } : {}),
      ...(req.runDir ? { runDir: req.runDir } : {}),
      ...(req.nodeCacheDir ? { nodeCacheDir: req.nodeCacheDir } : {}),
      onProvisioned: async (ranks, signal) => {
        probed = { devices: await nodeDevices(ranks, signal), links: await chainLinks(ranks, signal) };
      },
      onReady: (r) => void ready(r),
    },
    bus,
    ac.signal,
  ).finally(() => req.signal.removeEventListener('abort', stop));
  if (req.signal.aborted) throw new UserError('plan --probe interrupted');
  if (failure) throw failure;
  if (!measuredRun || !probed) throw new UserError('the calibration run ended before it was measured');

  const size = (await stat(first.model.ggufPath)).size;
  const at = new Date().toISOString();
  const devices = probed.devices;
  const quotas = Object.fromEntries(specs.flatMap((s, i) => (devices[i]?.cpuQuotaCores !== undefined ? [[nodeName(s), devices[i]!.cpuQuotaCores!]] : [])));
  const records = recordsFromChainStats(
    first.info,
    ranges,
    { ranks: measuredRun.stats.ranks.map((r) => ({ rank: r.rank, computeMsPerToken: r.compute_ms_per_token })), hopMs: measuredRun.stats.hop_ms, roundTripMsPerToken: measuredRun.stats.round_trip_ms_per_token },
    measuredRun.decodeMs,
    { binary, model: modelKey(first.model.ggufPath, size), at },
    {
      ...(measuredRun.prompt ? { prompt: measuredRun.prompt } : {}),
      cpuQuotaCores: quotas,
      threads: req.threads ?? 1,
      linkSeconds: probed.links,
      ...(measuredRun.batchGain !== undefined ? { batchGain: measuredRun.batchGain } : {}),
    },
  );
  const links = probed.links.flatMap((l, i) => (l === undefined ? [] : [{ from: ranges[i]!.node, to: ranges[(i + 1) % ranges.length]!.node, oneWaySeconds: l, measuredAt: at }]));
  await saveSpeeds(records, links);
  await saveDevices(Object.fromEntries(specs.flatMap((s, i) => (devices[i] ? [[nodeName(s), devices[i]!]] : []))));
  return {
    records,
    links,
    devices,
    measured: { split, decodeTokensPerSecond: 1000 / measuredRun.decodeMs, ...(measuredRun.batchGain !== undefined ? { batchGain: measuredRun.batchGain } : {}) },
  };
}

/**
 * `n` greedy requests at once, each decoded in the same steps (one ubatch of n rows, micro-batches off): their decode
 * rates, as the head timed each, summed.
 */
async function batchDecodeTps(apiUrl: string, n: number, signal: AbortSignal): Promise<number> {
  const sampling = { temperature: 0, ignore_eos: true };
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => streamCompletion(apiUrl, { prompt: `${PROMPT} (${i + 1})`, maxTokens: BATCH_TOKENS, sampling }, () => undefined, signal)));
  if (runs.some((r) => !r.decodeTokensPerSecond)) throw new ExternalError('the calibration batch gave no decode timing', { command: `POST ${apiUrl}/completion` });
  return runs.reduce((a, r) => a + r.decodeTokensPerSecond!, 0);
}

/** One greedy completion through the head; its own decode timing, then the chain timing of exactly those tokens' run. */
async function calibrate(apiUrl: string, prompt: string, tokens: number, signal: AbortSignal): Promise<{ stats: ChainStats; decodeMs: number; prompt?: { ms: number; tokens: number } }> {
  const sampling = { temperature: 0, ignore_eos: true };
  const r = await streamCompletion(apiUrl, { prompt, maxTokens: tokens, sampling }, () => undefined, signal);
  if (!r.decodeTokensPerSecond) throw new ExternalError('the calibration completion gave no decode timing', { command: `POST ${apiUrl}/completion` });
  // (a kept-alive upstream connection the head was closing used to fail this read; the API proxy now opens one per request)
  const h = await headHealth(apiUrl, signal);
  if (!h.ok || !h.chain || h.chain.tokens === 0) throw new ExternalError('the head reported no chain timing after the calibration', { command: `GET ${apiUrl}/health`, stderrTail: h.ok ? 'no chain stats' : h.message });
  return { stats: h.chain, decodeMs: 1000 / r.decodeTokensPerSecond, ...(r.prompt ? { prompt: r.prompt } : {}) };
}

/**
 * Each rank's node's devices, memory and CPU quota, asked of its own provisioned llama-server (so a remote node lists
 * its devices on the first probe too); a node that cannot be asked is left undefined (its plan uses mem= or nothing).
 */
async function nodeDevices(ranks: readonly ProvisionedRank[], signal: AbortSignal): Promise<(NodeDevices | undefined)[]> {
  const byNode = new Map<string, Promise<NodeDevices | undefined>>();
  for (const r of ranks) if (!byNode.has(r.node)) byNode.set(r.node, probeNodeDevices(r.transport, r.binary, signal).catch(() => undefined));
  return Promise.all(ranks.map((r) => byNode.get(r.node)!));
}

/**
 * Each link's one-way latency (rank i to i+1, the last back to the head), timed against a port the far end listens
 * on: a remote node's sshd (the port its ssh connection came in on), from the near end; a link into this machine, from
 * here to the near end (a round trip is the same either way); two ends on this machine, a loopback listener here.
 */
async function chainLinks(ranks: readonly ProvisionedRank[], signal: AbortSignal): Promise<(number | undefined)[]> {
  const sshPort = new Map<string, Promise<number | undefined>>();
  const portOf = (r: ProvisionedRank) => {
    if (!sshPort.has(r.node)) {
      sshPort.set(
        r.node,
        r.transport
          .exec(['sh', '-c', 'echo "$SSH_CONNECTION"'], { signal })
          .then(({ stdout }) => Number(stdout.trim().split(/\s+/)[3]) || undefined)
          .catch(() => undefined),
      );
    }
    return sshPort.get(r.node)!;
  };
  const loopback = createServer((c) => c.destroy());
  await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve));
  try {
    const out: (number | undefined)[] = [];
    for (let i = 0; i < ranks.length && ranks.length > 1; i++) {
      const a = ranks[i]!;
      const b = ranks[(i + 1) % ranks.length]!;
      if (a.transport.isLocal && b.transport.isLocal) out.push(await measureLink(a.transport, '127.0.0.1', (loopback.address() as AddressInfo).port, signal));
      else if (!b.transport.isLocal) {
        const port = await portOf(b);
        out.push(port === undefined ? undefined : await measureLink(a.transport, b.address, port, signal));
      } else {
        const port = await portOf(a);
        out.push(port === undefined ? undefined : await measureLink(b.transport, a.address, port, signal));
      }
    }
    return out;
  } finally {
    loopback.close();
  }
}
