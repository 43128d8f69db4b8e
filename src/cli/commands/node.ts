// `llama-relay node`: run one rank on this machine by hand (the original tool's launcher); thin over services/node.
import type { CommandModule } from 'yargs';
import { parseEnvPairs, withSignalAbort } from '../abort-on-signals.js';
import { EventBus } from '../../events/event-bus.js';
import { attachOutput } from '../output.js';
import { runNode } from '../../services/node.js';
import { tuiFits } from '../terminal.js';

interface Args {
  model: string;
  rank: number;
  'world-size': number;
  nodes: string;
  'secret-file'?: string;
  'llama-server'?: string;
  layers?: number;
  split?: string;
  'layers-per-node'?: string;
  'api-host': string;
  'api-port': number;
  ctx: number;
  parallel: number;
  threads?: number;
  microbatch: boolean;
  groups?: number;
  'batch-groups'?: number;
  'link-poll'?: number;
  prompt?: string;
  'max-tokens': number;
  interactive: boolean;
  server: boolean;
  json: boolean;
  verbose: boolean;
  'ready-timeout': number;
  'resume-timeout'?: number;
  'run-dir'?: string;
  'rank-env': string[];
}

export const nodeCommand: CommandModule<object, Args> = {
  command: 'node',
  describe: 'Run one rank on this machine; start every rank by hand with the same --nodes and secret',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'GGUF path or Ollama name (same model on every machine)' })
      .option('rank', { type: 'number', demandOption: true, describe: 'this machine\'s rank; 0 is the head (serves the API)' })
      .option('world-size', { type: 'number', demandOption: true, describe: 'number of ranks' })
      .option('nodes', { type: 'string', demandOption: true, describe: 'stage address of every rank in order: host:port,host:port,...' })
      .option('secret-file', { type: 'string', describe: 'file with the shared stage secret (else LLAMA_RELAY_SECRET)' })
      .option('llama-server', { type: 'string', describe: 'patched llama-server (default: build it)' })
      .option('layers', { type: 'number', describe: 'split this many layers evenly instead of planning from the GGUF header' })
      .option('split', { type: 'string', describe: 'explicit layer ranges per rank, half-open, the same on every machine: 0:4,4:18' })
      .option('layers-per-node', { type: 'string', describe: 'layer counts per rank, the same on every machine: 4,14' })
      .conflicts('split', 'layers-per-node')
      .option('api-host', { type: 'string', default: '127.0.0.1', describe: 'head only: address the API binds to' })
      .option('api-port', { type: 'number', default: 8000, describe: 'head only: API port' })
      .option('ctx', { type: 'number', default: 4096 })
      .option('parallel', { type: 'number', default: 1 })
      .option('threads', { type: 'number' })
      .option('microbatch', { type: 'boolean', default: true, describe: 'head only: micro-batched pipelined decode across requests (--no-microbatch: off, llama-server --stage-no-microbatch)' })
      .option('groups', { type: 'number', describe: 'head: keep up to N groups of generating requests in flight across decode steps (default: one per request; 1: off; llama-server --stage-groups)' })
      .option('batch-groups', { type: 'number', describe: 'head: from N requests generating together, keep one group per rank in flight, each decoded as one batch of its requests; pays where a batch of rows costs less per row than one row (bench it: chain-K vs chain-K-nobatch); default 0: one micro-batch per request (llama-server --stage-batch-groups)' })
      .option('link-poll', { type: 'number', describe: 'µs this rank busy-polls its links around each expected frame when no other rank is on its host (default: 10000; 0: off; llama-server --stage-poll)' })
      .option('prompt', { type: 'string', describe: 'head only: run one generation and exit' })
      .option('max-tokens', { type: 'number', default: 64, describe: 'tokens per answer' })
      .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'head only: chat with the model once the chain is ready (a prompt line; without a terminal: one message per stdin line)' })
      .option('server', { type: 'boolean', default: false, describe: 'keep serving (the default without --prompt)' })
      .option('json', { type: 'boolean', default: false })
      .option('verbose', { type: 'boolean', default: false })
      .option('ready-timeout', { type: 'number', default: 600 })
      .option('resume-timeout', { type: 'number', describe: 'head only: seconds a request in flight waits for a lost rank to come back, then resumes (0: fail at once) [engine default: 60]' })
      .option('run-dir', { type: 'string', hidden: true })
      .option('rank-env', { type: 'string', array: true, default: [] as string[], hidden: true })
            // Not conflicts(): it counts a boolean's default as given.
      .check((a) => !(a.interactive && (a.server || a.prompt !== undefined)) || '--interactive cannot be combined with --prompt or --server'),
  handler: async (a) => {
    const bus = new EventBus();
    await withSignalAbort(async (signal, interrupt) => {
      // Plain lines as before; a chat on a terminal gets the TUI and its prompt line.
      const tui = a.interactive && tuiFits(a.json);
      const output = await attachOutput(bus, { tui, json: a.json, verbose: a.verbose, interactive: a.interactive, interrupt });
      try {
        await runNode(
          {
            model: a.model,
            rank: a.rank,
            worldSize: a['world-size'],
            nodes: a.nodes,
            secretFile: a['secret-file'],
            llamaServer: a['llama-server'],
            layers: a.layers,
            split: a.split,
            layersPerNode: a['layers-per-node'],
            apiHost: a['api-host'],
            apiPort: a['api-port'],
            runtime: { ctx: a.ctx, parallel: a.parallel, threads: a.threads, threadsBatch: a.threads },
            microbatch: a.microbatch,
            ...(a.groups !== undefined ? { groups: a.groups } : {}),
            ...(a['batch-groups'] !== undefined ? { batchGroupsFrom: a['batch-groups'] } : {}),
            ...(a['link-poll'] !== undefined ? { linkPollUs: a['link-poll'] } : {}),
            ...(a.prompt !== undefined && !a.server ? { prompt: a.prompt } : {}),
            chatLines: output.chatLines,
            maxTokens: a['max-tokens'],
            readyTimeoutSeconds: a['ready-timeout'],
            ...(a['resume-timeout'] !== undefined ? { resumeTimeoutSeconds: a['resume-timeout'] } : {}),
            runDir: a['run-dir'],
            ...(a['rank-env'].length ? { rankEnv: parseEnvPairs(a['rank-env']) } : {}),
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
