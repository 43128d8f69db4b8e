// The one argv builder for every process the runtime starts: patched llama-server ranks (head and worker), a single
// llama-server (stock, or patched without stage flags), the llama.cpp RPC head and ggml-rpc-server. Pure. Every rank
// of a chain gets identical cache geometry, or the engine's handshake refuses.
import { BugError, UserError } from '../errors.js';
import type { ProcessSpec } from '../process/process-spec.js';
import type { RpcSplit } from './rpc-split.js';

export const LOOPBACK = '127.0.0.1';

/** Settings every server of a run shares (a chain's ranks must agree on them: the engine's handshake compares them). */
export interface ChainRuntime {
  ctx: number;
  parallel: number;
  threads?: number;
  threadsBatch?: number;
  kvUnified?: boolean;
  swaFull?: boolean;
  ubatch?: number;
  batch?: number;
  /** -ctk/-ctv, e.g. "f16" or "q8_0". */
  cacheType?: string;
  flashAttn?: 'on' | 'off' | 'auto';
  /** --no-warmup: the bench warms every configuration up itself. */
  noWarmup?: boolean;
  /** -fit: llama-server's memory fitting (chains run without it). */
  fit?: 'on' | 'off';
}

/** The head's HTTP API (workers serve none); `alias` is the model name every API response carries (--alias). */
export interface HttpBind {
  host: string;
  port: number;
  alias?: string;
}

export interface RankArgs {
  binary: string;
  model: string;
  layers: readonly [number, number];
  /** Where this rank accepts its upstream (the head: the ring's return link). */
  listen: string;
  /** Downstream; the last rank's next is the head's listen. */
  next: string;
  runtime: ChainRuntime;
  stageTimeoutSeconds?: number;
  /** Head only: --stage-resume-timeout (how long a request waits for a lost rank to return; 0 fails it at once). */
  resumeTimeoutSeconds?: number;
  http?: HttpBind;
  /** Path on the node holding the secret (alternative to LLAMA_RELAY_SECRET); never the secret itself. */
  secretFile?: string;
  /** Head only: --stage-no-pipeline (the head waits for every ubatch). */
  noPipeline?: boolean;
  /** Every rank of the chain alike: --stage-no-encrypt (links authenticated, not encrypted). */
  noEncrypt?: boolean;
  /** Head only: --stage-no-microbatch (no micro-batched pipelined decode across requests; on by default). */
  noMicrobatch?: boolean;
  /** Head only: --stage-groups N (groups of generating requests kept in flight across decode steps); omitted: the engine default. */
  groups?: number;
  /** Head only: --stage-batch-groups N (from N generating requests, one batched group per rank); omitted or 0: off. */
  batchGroupsFrom?: number;
  /** --stage-poll US: busy-poll the links this long around each expected frame (link-poll.ts); omitted or 0: off. */
  pollUs?: number | undefined;
  /** -ngl: how many of the rank's layers go on its node's GPU (the placement planner's offload); none on CPU nodes. */
  gpuLayers?: number | undefined;
  extra?: readonly string[];
}

export function runtimeArgs(r: ChainRuntime): string[] {
  const a = ['-c', String(r.ctx), '-np', String(r.parallel)];
  if (r.threads !== undefined) a.push('-t', String(r.threads));
  if (r.threadsBatch !== undefined) a.push('-tb', String(r.threadsBatch));
  if (r.batch !== undefined) a.push('-b', String(r.batch));
  if (r.ubatch !== undefined) a.push('-ub', String(r.ubatch));
  if (r.kvUnified) a.push('--kv-unified');
  if (r.swaFull) a.push('--swa-full');
  if (r.cacheType) a.push('-ctk', r.cacheType, '-ctv', r.cacheType);
  if (r.flashAttn) a.push('-fa', r.flashAttn);
  if (r.noWarmup) a.push('--no-warmup');
  if (r.fit) a.push('-fit', r.fit);
  return a;
}

export function httpArgs(h: HttpBind): string[] {
  const a = ['--host', h.host, '--port', String(h.port), '--no-webui'];
  if (h.alias) a.push('--alias', h.alias);
  return a;
}

/** `up`/`node --groups N`: a whole number of groups (0: the engine's one per generating request; 1: off), checked before anything starts. */
export function checkGroups(groups: number | undefined): void {
  if (groups !== undefined && !(Number.isInteger(groups) && groups >= 0)) {
    throw new UserError(`--groups must be a whole number >= 0, not ${groups}`, ['0: one group per generating request (the engine default), 1: slot groups off, N: up to N groups in flight']);
  }
}

/** `up`/`node`/`bench --batch-groups N`: a whole number of requests (0: off), checked before anything starts. */
export function checkBatchGroups(n: number | undefined): void {
  if (n !== undefined && !(Number.isInteger(n) && n >= 0 && n <= 1024)) {
    throw new UserError(`--batch-groups must be a whole number of requests from 0 to 1024, not ${n}`, [
      '0: one micro-batch per request, N: from N requests generating together, one batched group per rank',
      'or leave it out: up chooses from the batch gain plan --probe measured (bench shows chain-K against chain-K-nobatch)',
    ]);
  }
}

/** A patched llama-server rank: stage flags, plus HTTP on the head. */
export function rankArgv(r: RankArgs): string[] {
  const [a, b] = r.layers;
  if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b > a)) throw new BugError(`bad layer range ${a}:${b}`);
  const argv = [
    r.binary,
    '-m', r.model,
    '--layer-range', `${a}:${b}`,
    '--stage-listen', r.listen,
    '--stage-next', r.next,
    ...runtimeArgs(r.runtime),
  ];
  if (r.stageTimeoutSeconds !== undefined) argv.push('--stage-timeout', String(r.stageTimeoutSeconds));
  if (r.secretFile) argv.push('--stage-secret-file', r.secretFile);
  if (r.http) argv.push(...httpArgs(r.http));
  if (r.noPipeline) argv.push('--stage-no-pipeline');
  if (r.http && r.resumeTimeoutSeconds !== undefined) argv.push('--stage-resume-timeout', String(r.resumeTimeoutSeconds));
  if (r.noEncrypt) argv.push('--stage-no-encrypt');
  if (r.noMicrobatch) argv.push('--stage-no-microbatch');
  if (r.http && r.groups !== undefined) argv.push('--stage-groups', String(r.groups));
  if (r.http && r.batchGroupsFrom) argv.push('--stage-batch-groups', String(r.batchGroupsFrom));
  if (r.pollUs !== undefined && r.pollUs > 0) argv.push('--stage-poll', String(r.pollUs));
  if (r.gpuLayers !== undefined && r.gpuLayers > 0) argv.push('-ngl', String(r.gpuLayers));
  argv.push(...(r.extra ?? []));
  return argv;
}

/** One llama-server holding the whole model: stock, or the patched one without stage flags. */
export function singleServerArgv(s: { binary: string; model: string; runtime: ChainRuntime; http: HttpBind }): string[] {
  return [s.binary, '-m', s.model, ...runtimeArgs(s.runtime), ...httpArgs(s.http)];
}

/** Stock llama-server computing the remote ranges on ggml-rpc-servers (`endpoints`, in device order). */
export function rpcHeadArgv(s: { binary: string; model: string; runtime: ChainRuntime; http: HttpBind; endpoints: readonly string[]; split: RpcSplit }): string[] {
  return [
    ...singleServerArgv(s),
    '--rpc', s.endpoints.join(','),
    '-dev', s.split.devices.join(','),
    '-ngl', String(s.split.gpuLayers),
    '-ts', s.split.tensorSplit.join(','),
    '-ot', s.split.overrides.join(','),
  ];
}

/** Always loopback: ggml-rpc-server has no authentication, so a head on another node reaches it through ssh. */
export function rpcServerArgv(s: { binary: string; port: number; threads: number }): string[] {
  return [s.binary, '-H', LOOPBACK, '-p', String(s.port), '-t', String(s.threads)];
}

/** Runs the spec's command under `taskset -c core` (taskset execs it: same pid). */
export function pinToCore(spec: ProcessSpec, core: number | undefined): ProcessSpec {
  if (core === undefined) return spec;
  return { ...spec, command: 'taskset', args: ['-c', String(core), spec.command, ...spec.args] };
}
