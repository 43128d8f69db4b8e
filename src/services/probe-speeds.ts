// `plan --probe`: measure the nodes for this model, then plan with the measurements. A short calibration run of the
// real chain (the `up` service, so the same provisioning and ranks): one greedy completion whose decode time the head
// times, then the head's /health chain timing (each rank's compute, the round trip, the hop). The result goes to the
// speed cache (per node, binary, model); each node's devices and available memory are asked too (after provisioning,
// with the node's own llama-server where there is one).
import { stat } from 'node:fs/promises';
import getPort from 'get-port';
import { headHealth, streamCompletion, type ChainStats } from '../runtime/head-client.js';
import { ExternalError, UserError } from '../errors.js';
import { EventBus } from '../events/event-bus.js';
import type { Emit } from '../events/events.js';
import { parseNodeList, type NodeSpec } from '../plan/node-spec.js';
import type { NodeDevices } from '../provision/node-devices.js';
import { probeNodeDevices } from '../provision/probe-devices.js';
import { modelKey, recordsFromChainStats, type SpeedRecord } from '../plan/speed-cache.js';
import { makeControlDir } from '../ssh/ssh-transport.js';
import { patchedLlamaServer } from '../provision/llama-builds.js';
import { makeTransport, nodeName, sshSettings } from '../runtime/node-transports.js';
import { planModel } from './plan.js';
import { saveDevices, saveSpeeds } from './speed-store.js';
import { up } from './up.js';

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
  /** Tokens the calibration decodes. */
  readonly tokens?: number;
  readonly emit: Emit;
  readonly signal: AbortSignal;
}

export interface ProbeResult {
  readonly records: readonly SpeedRecord[];
  /** Per node (in order): what its engine and OS reported. */
  readonly devices: readonly (NodeDevices | undefined)[];
  /** The measured run: its split and decode. */
  readonly measured: { readonly split: string; readonly decodeTokensPerSecond: number };
}

const PROMPT = 'The history of the Roman Empire begins';

/** Runs the calibration and saves its measurements; returns them with each node's devices. */
export async function probeSpeeds(req: ProbeRequest): Promise<ProbeResult> {
  const specs = typeof req.nodes === 'string' ? parseNodeList(req.nodes) : [...req.nodes];
  if (specs.length < 2) throw new UserError('plan --probe measures a chain: give at least two nodes', ['e.g. --nodes local,alice@gpu1']);
  const binary = req.llamaServer ?? (await patchedLlamaServer(req.emit, req.signal));
  // The split the calibration runs: what the planner would choose without measurements (every node gets layers).
  const first = await planModel({ model: req.model, nodes: specs, runtime: { ctx: req.ctx }, speeds: [] });
  const ranges = first.plan.nodes.map((n) => ({ node: nodeName(specs[n.index]!), layerStart: n.layerStart, layerEnd: n.layerEnd }));
  const split = ranges.map((r) => `${r.layerStart}:${r.layerEnd}`).join(',');
  req.emit({ kind: 'info', message: `probe: a calibration run of ${req.tokens ?? 64} tokens on layers ${split}` });

  const bus = new EventBus();
  bus.subscribe((e) => (e.kind === 'info' || e.kind === 'node-phase' || e.kind === 'error' || e.kind === 'rank-exited' ? req.emit(e) : undefined));
  const ac = new AbortController();
  const stop = () => ac.abort();
  req.signal.addEventListener('abort', stop, { once: true });
  let measuredRun: { stats: ChainStats; decodeMs: number } | undefined;
  let failure: unknown;
  const ready = async ({ apiUrl }: { apiUrl: string }) => {
    try {
      measuredRun = await calibrate(apiUrl, req.tokens ?? 64, ac.signal);
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
      llamaServer: binary,
      split,
      apiPort: await getPort({ host: '127.0.0.1' }),
      stagePortBase: req.stagePortBase ?? 47100,
      runtime: { ctx: req.ctx, parallel: 1, ...(req.threads !== undefined ? { threads: req.threads, threadsBatch: req.threads } : {}) },
      maxTokens: req.tokens ?? 64,
      readyTimeoutSeconds: 600,
      ...(req.sshConfig ? { sshConfig: req.sshConfig } : {}),
      ...(req.acceptNewHostKeys ? { acceptNewHostKeys: true } : {}),
      ...(req.runDir ? { runDir: req.runDir } : {}),
      ...(req.nodeCacheDir ? { nodeCacheDir: req.nodeCacheDir } : {}),
      onReady: (r) => void ready(r),
    },
    bus,
    ac.signal,
  ).finally(() => req.signal.removeEventListener('abort', stop));
  if (req.signal.aborted) throw new UserError('plan --probe interrupted');
  if (failure) throw failure;
  if (!measuredRun) throw new UserError('the calibration run ended before it was measured');

  const size = (await stat(first.model.ggufPath)).size;
  const records = recordsFromChainStats(
    first.info,
    ranges,
    { ranks: measuredRun.stats.ranks.map((r) => ({ rank: r.rank, computeMsPerToken: r.compute_ms_per_token })), hopMs: measuredRun.stats.hop_ms, roundTripMsPerToken: measuredRun.stats.round_trip_ms_per_token },
    measuredRun.decodeMs,
    { binary, model: modelKey(first.model.ggufPath, size), at: new Date().toISOString() },
  );
  await saveSpeeds(records);
  const devices = await nodeDevices(specs, binary, req);
  await saveDevices(Object.fromEntries(specs.flatMap((s, i) => (devices[i] ? [[nodeName(s), devices[i]!]] : []))));
  return { records, devices, measured: { split, decodeTokensPerSecond: 1000 / measuredRun.decodeMs } };
}

/** One greedy completion through the head; its own decode timing, then the chain timing of exactly those tokens' run. */
async function calibrate(apiUrl: string, tokens: number, signal: AbortSignal): Promise<{ stats: ChainStats; decodeMs: number }> {
  const sampling = { temperature: 0, ignore_eos: true };
  const r = await streamCompletion(apiUrl, { prompt: PROMPT, maxTokens: tokens, sampling }, () => undefined, signal);
  if (!r.decodeTokensPerSecond) throw new ExternalError('the calibration completion gave no decode timing', { command: `POST ${apiUrl}/completion` });
  const h = await headHealth(apiUrl, signal);
  if (!h.ok || !h.chain || h.chain.tokens === 0) throw new ExternalError('the head reported no chain timing after the calibration', { command: `GET ${apiUrl}/health`, stderrTail: h.ok ? 'no chain stats' : h.message });
  return { stats: h.chain, decodeMs: 1000 / r.decodeTokensPerSecond };
}

/** Each node's devices and memory; a node that cannot be asked is left undefined (its plan uses mem= or nothing). */
async function nodeDevices(specs: readonly NodeSpec[], binary: string, req: ProbeRequest): Promise<(NodeDevices | undefined)[]> {
  const control = makeControlDir();
  const settings = sshSettings(control.dir, req);
  try {
    return await Promise.all(
      specs.map(async (s) => {
        const t = makeTransport(s, settings);
        try {
          await t.connect(req.signal);
          // Remote nodes run the llama-server given for every node, else none is known here: memory figures only.
          return await probeNodeDevices(t, t.isLocal || req.llamaServer ? binary : 'llama-server', req.signal);
        } catch {
          return undefined;
        } finally {
          await t.close().catch(() => undefined);
        }
      }),
    );
  } finally {
    control.remove();
  }
}

