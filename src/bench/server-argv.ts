// argv for the servers a bench starts: stock/patched llama-server, chain ranks, RPC head and ggml-rpc-server. Pure.
import type { ProcessSpec } from '../process/process-spec.js';
import type { BenchRuntime } from './bench-config.js';
import type { RpcSplit } from './rpc-split.js';

export const LOOPBACK = '127.0.0.1';

/** The same flags for every llama-server, so stock, chain and RPC compute the same thing. */
export function serverRuntimeArgs(r: BenchRuntime): string[] {
  const a = ['-c', String(r.ctx), '-np', String(r.slots), '-t', String(r.threads), '-tb', String(r.threads)];
  if (r.batch !== undefined) a.push('-b', String(r.batch));
  if (r.ubatch !== undefined) a.push('-ub', String(r.ubatch));
  // Chains run without warmup and memory fitting; the others match, and the bench warms every config up itself.
  a.push('--no-warmup', '-fit', 'off');
  return a;
}

export function httpArgs(port: number): string[] {
  return ['--host', LOOPBACK, '--port', String(port), '--no-webui'];
}

export function singleServerArgs(model: string, r: BenchRuntime, httpPort: number): string[] {
  return ['-m', model, ...serverRuntimeArgs(r), ...httpArgs(httpPort)];
}

export interface ChainRankArgs {
  model: string;
  runtime: BenchRuntime;
  layers: readonly [number, number];
  listen: string;
  next: string;
  /** Without it the rank reads LLAMA_RELAY_SECRET. */
  secretFile?: string;
  /** Head only. */
  httpPort?: number;
  /** Head only: --stage-no-pipeline. */
  noPipeline?: boolean;
  /** Every rank of the chain alike: --stage-no-encrypt. */
  noEncrypt?: boolean;
}

export function chainRankArgs(a: ChainRankArgs): string[] {
  const argv = [
    '-m', a.model, ...serverRuntimeArgs(a.runtime),
    '--layer-range', `${a.layers[0]}:${a.layers[1]}`,
    '--stage-listen', a.listen, '--stage-next', a.next,
  ];
  if (a.secretFile !== undefined) argv.push('--stage-secret-file', a.secretFile);
  if (a.httpPort !== undefined) argv.push(...httpArgs(a.httpPort));
  if (a.noPipeline) argv.push('--stage-no-pipeline');
  if (a.noEncrypt) argv.push('--stage-no-encrypt');
  return argv;
}

export function rpcHeadArgs(model: string, r: BenchRuntime, httpPort: number, endpoints: readonly string[], split: RpcSplit): string[] {
  return [
    '-m', model, ...serverRuntimeArgs(r), ...httpArgs(httpPort),
    '--rpc', endpoints.join(','),
    '-dev', split.devices.join(','),
    '-ngl', String(split.gpuLayers),
    '-ts', split.tensorSplit.join(','),
    '-ot', split.overrides.join(','),
  ];
}

/** Always loopback: ggml-rpc-server has no authentication, so a head on another node reaches it through ssh. */
export function rpcServerArgs(port: number, threads: number): string[] {
  return ['-H', LOOPBACK, '-p', String(port), '-t', String(threads)];
}

/** Runs the spec's command under `taskset -c core` (taskset execs it: same pid). */
export function pinToCore(spec: ProcessSpec, core: number | undefined): ProcessSpec {
  if (core === undefined) return spec;
  return { ...spec, command: 'taskset', args: ['-c', String(core), spec.command, ...spec.args] };
}
