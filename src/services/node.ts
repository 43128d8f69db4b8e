// `node`: the original tool's per-machine launcher. Every machine runs one rank by hand; the shared plan makes them agree.
import { readFileSync } from 'node:fs';
import { ClusterRun } from '../runtime/cluster-run.js';
import { evenSplit } from '../runtime/even-split.js';
import { runChatSession } from '../serve/chat-session.js';
import { streamCompletion } from '../runtime/head-client.js';
import { planLaunch, type LaunchNode } from '../runtime/launch-plan.js';
import { MIN_SECRET_BITS, secretBits } from '../runtime/secret.js';
import { checkBatchGroups, checkGroups, type ChainRuntime } from '../runtime/server-argv.js';
import { checkLinkPoll, linkPollWindows } from '../runtime/link-poll.js';
import { UserError } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import { LocalTransport } from '../ssh/local-transport.js';
import { patchedLlamaServer } from '../provision/llama-builds.js';
import { planModel } from './plan.js';
import { manualSplitFrom, resolveSplit } from '../plan/manual-split.js';
import { rejectedOnAbort } from '../process/rejected-on-abort.js';

export interface NodeOptions {
  model: string;
  rank: number;
  worldSize: number;
  /** Stage address of every rank, in rank order: "host:port,host:port". */
  nodes: string;
  secret?: string;
  secretFile?: string;
  llamaServer?: string;
  layers?: number;
  /** Manual placement, the same text on every machine: `--split 0:4,4:18` or `--layers-per-node 4,14`. */
  split?: string;
  layersPerNode?: string;
  apiHost: string;
  apiPort: number;
  runtime: ChainRuntime;
  /** Head only, false (--no-microbatch): no micro-batched decode across requests (--stage-no-microbatch). */
  microbatch?: boolean;
  /** Head only (--groups N): up to N groups of generating requests in flight across decode steps (--stage-groups); undefined: engine default. */
  groups?: number;
  /** Head only (--batch-groups N): from N generating requests, one batched group per rank (--stage-batch-groups); 0/undefined: off. */
  batchGroupsFrom?: number;
  /** --link-poll US: this rank busy-polls its links when no other rank's address is on its host (--stage-poll); 0: off. */
  linkPollUs?: number;
  prompt?: string;
  /** Head only, --interactive: chat with the chain, one message per line, until the lines end or /exit. */
  chatLines?: AsyncIterable<string>;
  maxTokens: number;
  readyTimeoutSeconds: number;
  /** Head: seconds a request in flight waits for a lost rank to come back (--stage-resume-timeout). */
  resumeTimeoutSeconds?: number;
  runDir?: string;
  rankEnv?: Readonly<Record<string, string>>;
}

export function parseStageAddresses(text: string, worldSize: number): { host: string; port: number }[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length !== worldSize) {
    throw new UserError(`--nodes lists ${parts.length} addresses but --world-size is ${worldSize}`, ['give one host:port per rank, in rank order']);
  }
  return parts.map((p) => {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(p);
    if (!m) throw new UserError(`--nodes entry "${p}" is not host:port`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  });
}

function readSecret(o: NodeOptions): string {
  const s = o.secretFile ? readFileSync(o.secretFile, 'utf8').trim() : (o.secret ?? process.env.LLAMA_RELAY_SECRET ?? '').trim();
  // read once: the ranks get it on their wrapper's stdin, and no child process should inherit it
  delete process.env.LLAMA_RELAY_SECRET;
  const howTo = [
    'create one: head -c 32 /dev/urandom | base64 > relay.secret && chmod 600 relay.secret, copy it to every machine',
    'then pass --secret-file relay.secret (or set LLAMA_RELAY_SECRET)',
  ];
  if (!s) throw new UserError('every rank needs the same stage secret', howTo);
  if (secretBits(s) < MIN_SECRET_BITS) {
    const from = o.secretFile ? `--secret-file ${o.secretFile}` : 'the stage secret';
    throw new UserError(`${from} is too short to hold ${MIN_SECRET_BITS} bits (${s.length} characters): anyone who sees a handshake could guess it`, howTo);
  }
  return s;
}

export async function runNode(o: NodeOptions, bus: EventBus, signal: AbortSignal): Promise<void> {
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw new UserError(`--rank must be 0..${o.worldSize - 1}`);
  checkGroups(o.groups);
  checkBatchGroups(o.batchGroupsFrom);
  checkLinkPoll(o.linkPollUs);
  if (o.chatLines && o.rank !== 0) throw new UserError('--interactive chats through the head: use it on rank 0', ['start this rank without --interactive']);
  const addrs = parseStageAddresses(o.nodes, o.worldSize);
  const secret = readSecret(o);
  const manualFlags = { ...(o.split !== undefined ? { split: o.split } : {}), ...(o.layersPerNode !== undefined ? { layersPerNode: o.layersPerNode } : {}) };
  const manual = manualSplitFrom(manualFlags);
  const ranges =
    o.layers !== undefined
      ? manual
        ? resolveSplit(manual, o.worldSize, o.layers)
        : evenSplit(o.layers, o.worldSize).map(([layerStart, layerEnd]) => ({ layerStart, layerEnd }))
      : (await planModel({ model: o.model, nodeCount: o.worldSize, runtime: { ctx: o.runtime.ctx, parallel: o.runtime.parallel }, ...manualFlags })).plan.nodes;
  const binary = o.llamaServer ?? (await patchedLlamaServer(bus.emit, signal));
  const self = `rank${o.rank}`;
  // Ranks at one host share its cores (another address of the same machine is taken for another machine).
  const polls = linkPollWindows(addrs.map((a) => ({ machine: a.host })), o.linkPollUs);
  const launches = planLaunch({
    ranks: ranges.map((r, i) => {
      const node: LaunchNode = { name: i === o.rank ? 'local' : `${addrs[i]!.host}`, stageHost: addrs[i]!.host, binary, model: o.model };
      return { node, layerStart: r.layerStart, layerEnd: r.layerEnd, pollUs: polls[i] };
    }),
    stagePorts: addrs.map((a) => a.port),
    api: { host: o.apiHost, port: o.apiPort },
    runtime: o.runtime,
    ...(o.resumeTimeoutSeconds !== undefined ? { resumeTimeoutSeconds: o.resumeTimeoutSeconds } : {}),
    runName: `node-${addrs[o.rank]!.port}`,
    microbatch: o.microbatch,
    ...(o.groups !== undefined ? { groups: o.groups } : {}),
    batchGroupsFrom: o.batchGroupsFrom,
  });
  const mine = launches.find((l) => l.rank === o.rank)!;
  bus.emit({ kind: 'rank-planned', rank: o.rank, node: 'local', layers: mine.layers, role: mine.role });
  bus.emit({ kind: 'info', message: `${self}: layers ${mine.layers[0]}:${mine.layers[1]}, listening on ${mine.listen}, next ${mine.next}` });
  const run = new ClusterRun([mine], {
    transports: new Map([['local', new LocalTransport()]]),
    secret,
    emit: bus.emit,
    readyTimeoutMs: o.readyTimeoutSeconds * 1000,
    heartbeatSeconds: 0, // the wrapper still stops the rank when this process dies (stdin EOF)
    runDir: o.runDir,
    env: o.rankEnv,
  });
  const aborted = rejectedOnAbort(signal);
  try {
    const api = await Promise.race([run.start(signal), run.fatal, aborted]);
    if (api) bus.emit({ kind: 'api-listening', url: api });
    if (api && o.prompt !== undefined) {
      const r = await Promise.race([streamCompletion(api, { prompt: o.prompt, maxTokens: o.maxTokens }, (text) => bus.emit({ kind: 'token', text }), signal), run.fatal]);
      bus.emit({ kind: 'generation-done', tokens: r.tokens, seconds: r.seconds });
      return;
    }
    const session = api && o.chatLines ? runChatSession({ apiUrl: api, lines: o.chatLines, maxTokens: o.maxTokens, emit: bus.emit, signal }).then(() => undefined) : undefined;
    session?.catch(() => undefined); // a rejection after teardown began is not news
    await Promise.race([run.fatal, aborted, ...(session ? [session] : [])]).catch((err: unknown) => {
      if (!signal.aborted) throw err;
    });
  } finally {
    await run.stop();
  }
}
