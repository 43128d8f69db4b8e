// Pure argv builders for the patched llama-server; every rank gets identical cache geometry, or the handshake refuses.

/** Settings every rank must agree on (the engine's handshake compares them). */
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
  /** The head's HTTP API; workers serve none. `alias` is the model name every API response carries (--alias). */
  http?: { host: string; port: number; alias?: string };
  /** Path on the node holding the secret (alternative to LLAMA_RELAY_SECRET); never the secret itself. */
  secretFile?: string;
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
  return a;
}

export function rankArgv(r: RankArgs): string[] {
  const [a, b] = r.layers;
  if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b > a)) throw new Error(`bad layer range ${a}:${b}`);
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
  if (r.http) {
    argv.push('--host', r.http.host, '--port', String(r.http.port), '--no-webui');
    if (r.http.alias) argv.push('--alias', r.http.alias);
  }
  argv.push(...(r.extra ?? []));
  return argv;
}

/** The line a worker prints on stderr once loaded and listening. */
export const stageReadyPattern = /^llama-relay: stage ready layers=(\d+):(\d+) listen=(\S+)/;
