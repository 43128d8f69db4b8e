// The programmatic API: start a chain from code, stream tokens to a callback, stop it. A thin layer over `up` (the same
// planning, provisioning, supervision and teardown) that keeps serving until stop() instead of printing anything.
import getPort from 'get-port';
import { generateOnce } from '../serve/generate.js';
import type { GenerationSettings } from '../serve/generation-settings.js';
import type { CompletionResult } from '../runtime/head-client.js';
import { EventBus, type Listener } from '../events/event-bus.js';
import type { NodeSpec } from '../plan/node-spec.js';
import { defaultModelPath } from './default-model.js';
import { up } from './up.js';

export interface StartClusterOptions {
  /** GGUF path or Ollama name; default: the embedded SmolLM2-135M-Instruct (fetched into the cache on first use). */
  model?: string;
  /** `[user@]host[:port][=MEM],...` or node specs; `local` runs on this machine. Default: `local,local`. */
  nodes?: string | readonly NodeSpec[];
  /** Port of the OpenAI-compatible API on this machine; default: a free one. */
  apiPort?: number;
  ctx?: number;
  parallel?: number;
  threads?: number;
  /** false: the head decodes without micro-batches across requests (llama-server --stage-no-microbatch). */
  microbatch?: boolean;
  /** The head keeps up to N groups of generating requests in flight across decode steps (`up --groups`, llama-server --stage-groups; 1: off). */
  groups?: number;
  /** From N generating requests, one batched group per rank (`up --batch-groups`, llama-server --stage-batch-groups; 0: off; undefined: as `up` chooses). */
  batchGroupsFrom?: number;
  /** With spare nodes (NodeSpec `spare: true`, a cluster file's spare lines): `up --replace-after`. */
  replaceAfterSeconds?: number;
  /** llama-server on every node; default: the patched build (scripts/build-llama.sh, built on first use). */
  llamaServer?: string;
  sshConfig?: string;
  acceptNewHostKeys?: boolean;
  /** Seconds a rank may take to load (default 600). */
  readyTimeoutSeconds?: number;
  /** Cache directory on the nodes (default: ~/.cache/llama-relay there). */
  nodeCacheDir?: string;
  /** Every event from the start (build, provisioning, loading); later listeners can use `events.subscribe`. */
  onEvent?: Listener;
  /** Aborting it while starting gives up and tears down; once started, it stops the cluster like stop(). */
  signal?: AbortSignal;
}

export interface GenerateOptions {
  /** Called with each piece of text as it arrives. */
  onToken?: (text: string) => void;
  /** Default 256. */
  maxTokens?: number;
  /** Aborts this generation only. */
  signal?: AbortSignal;
  /** Plain completion even where the model has a chat template (default: a chat message, as `ollama run` sends it). */
  raw?: boolean;
}

export interface Cluster {
  /** The OpenAI-compatible / llama-server API of the head, e.g. http://127.0.0.1:8000. */
  readonly apiUrl: string;
  /** The typed event stream (rank phases, memory, tokens/s, rank exits, errors). */
  readonly events: { subscribe(listener: Listener): () => void };
  /** The chat template and sampling prompts use. */
  readonly generation: GenerationSettings;
  generate(prompt: string, o?: GenerateOptions): Promise<CompletionResult>;
  /** Stops every rank and the API; resolves once all are gone. */
  stop(): Promise<void>;
  /** Settles when the cluster has stopped: undefined after stop(), or the error that ended it (a rank lost for good). */
  readonly closed: Promise<Error | undefined>;
}

export async function startCluster(o: StartClusterOptions = {}): Promise<Cluster> {
  const bus = new EventBus();
  if (o.onEvent) bus.subscribe(o.onEvent);
  const ac = new AbortController();
  const abort = () => ac.abort();
  o.signal?.addEventListener('abort', abort, { once: true });
  const model = o.model ?? (await defaultModelPath(bus.emit, ac.signal));
  let ready!: (r: { apiUrl: string; generation: GenerationSettings }) => void;
  const started = new Promise<{ apiUrl: string; generation: GenerationSettings }>((r) => (ready = r));
  const done = up(
    {
      model,
      nodes: o.nodes ?? 'local,local',
      apiPort: o.apiPort ?? (await getPort({ host: '127.0.0.1' })),
      stagePortBase: 47100,
      runtime: { ctx: o.ctx ?? 4096, parallel: o.parallel ?? 1, threads: o.threads, threadsBatch: o.threads },
      maxTokens: 256,
      readyTimeoutSeconds: o.readyTimeoutSeconds ?? 600,
      llamaServer: o.llamaServer,
      ...(o.microbatch === false ? { microbatch: false } : {}),
      ...(o.groups !== undefined ? { groups: o.groups } : {}),
      ...(o.batchGroupsFrom !== undefined ? { batchGroupsFrom: o.batchGroupsFrom } : {}),
      ...(o.replaceAfterSeconds !== undefined ? { replaceAfterSeconds: o.replaceAfterSeconds } : {}),
      sshConfig: o.sshConfig,
      acceptNewHostKeys: o.acceptNewHostKeys,
      nodeCacheDir: o.nodeCacheDir,
      onReady: ready,
    },
    bus,
    ac.signal,
  );
  const closed = done.then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  const r = await Promise.race([started, closed.then((err) => Promise.reject(err ?? new Error('the cluster stopped before it was ready')))]);
  return {
    apiUrl: r.apiUrl,
    events: bus,
    generation: r.generation,
    generate: (prompt, g = {}) =>
      generateOnce(r.apiUrl, r.generation, prompt, {
        maxTokens: g.maxTokens ?? 256,
        raw: g.raw ?? false,
        onToken: g.onToken ?? (() => undefined),
        ...(g.signal ? { signal: AbortSignal.any([g.signal, ac.signal]) } : { signal: ac.signal }),
      }),
    stop: async () => {
      ac.abort();
      o.signal?.removeEventListener('abort', abort);
      await closed;
    },
    closed,
  };
}
