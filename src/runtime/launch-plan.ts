// A chain's launch as data: which rank runs where with which argv, in which order, and how each is known to be ready.
// Pure; tests assert it before anything runs. `up`, `node` and the bench's chain configurations all plan through it.
import { BugError } from '../errors.js';
import { hostPort } from './host-port.js';
import type { Readiness } from './readiness.js';
import { rankArgv, type ChainRuntime, type HttpBind } from './server-argv.js';

export interface LaunchNode {
  /** The node as the user wrote it ("bob@gpu-box", "local"). */
  name: string;
  /** Address the other ranks use to reach this node, and the one its stage socket binds to. */
  stageHost: string;
  /** llama-server on that node. */
  binary: string;
  /** The model (or this rank's slice) on that node. */
  model: string;
  /** The secret file on that node; without it the rank reads LLAMA_RELAY_SECRET. */
  secretFile?: string;
}

export interface LaunchInput {
  /** Rank order = chain order; rank 0 is the head. Layer ranges are half-open and must tile 0..N. */
  /** pollUs: the rank's --stage-poll window (linkPollWindows: only a rank with a core to itself polls). */
  ranks: readonly { node: LaunchNode; layerStart: number; layerEnd: number; gpuLayers?: number; pollUs?: number }[];
  /** One stage port per rank. */
  stagePorts: readonly number[];
  /** The head's HTTP API, as bound on the head's node; `alias`: the served model name (llama-server --alias). */
  api: HttpBind;
  runtime: ChainRuntime;
  stageTimeoutSeconds?: number;
  /** Head: --stage-resume-timeout, seconds a request in flight waits for a lost rank (0: fail at once). */
  resumeTimeoutSeconds?: number;
  /** Names pidfiles on the nodes, so a stale run of the same cluster is cleaned at the next start. */
  runName: string;
  extraArgs?: readonly string[];
  /**
   * Per rank, the address it dials downstream, when links do not go straight to the next listen address (ssh tunnels;
   * the head's relay while spares stand by); undefined entries go straight.
   */
  links?: readonly (string | undefined)[];
  /** false: the head waits for every ubatch (--stage-no-pipeline). */
  pipeline?: boolean;
  /** false: links authenticated, not encrypted (--stage-no-encrypt), on every rank. */
  encrypt?: boolean;
  /** false: the head decodes without micro-batches across requests (--stage-no-microbatch). */
  microbatch?: boolean;
  /** Head: --stage-groups N, groups of generating requests in flight across decode steps (1: off); undefined: engine default. */
  groups?: number;
  /** Head: --stage-batch-groups N, from N generating requests one batched group per rank; undefined or 0: off. */
  batchGroupsFrom?: number;
}

export interface RankLaunch {
  rank: number;
  role: 'head' | 'worker';
  node: LaunchNode;
  layers: readonly [number, number];
  listen: string;
  next: string;
  argv: string[];
  /** Wrapper name on the node (pidfile), unique per run and rank. */
  wrapperName: string;
  readiness: Readiness;
}

/** Ranks in start order: downstream first (last worker … rank 1), the head last, so each link finds its peer listening. */
export function planLaunch(input: LaunchInput): RankLaunch[] {
  const n = input.ranks.length;
  if (n === 0) throw new BugError('no ranks to launch');
  if (input.stagePorts.length !== n) throw new BugError(`need ${n} stage ports, got ${input.stagePorts.length}`);
  if (input.links && input.links.length !== n) throw new BugError(`need ${n} links, got ${input.links.length}`);
  input.ranks.forEach((r, i) => {
    const expectedStart = i === 0 ? 0 : input.ranks[i - 1]!.layerEnd;
    if (r.layerStart !== expectedStart || r.layerEnd <= r.layerStart) {
      throw new BugError(`rank ${i}: layers ${r.layerStart}:${r.layerEnd} do not continue the chain at ${expectedStart}`);
    }
  });
  const listen = input.ranks.map((r, i) => hostPort(r.node.stageHost, input.stagePorts[i]!));
  const launches = input.ranks.map((r, i): RankLaunch => {
    const head = i === 0;
    const layers = [r.layerStart, r.layerEnd] as const;
    const next = input.links?.[i] ?? listen[(i + 1) % n]!;
    return {
      rank: i,
      role: head ? 'head' : 'worker',
      node: r.node,
      layers,
      listen: listen[i]!,
      next,
      argv: rankArgv({
        binary: r.node.binary,
        model: r.node.model,
        layers,
        listen: listen[i]!,
        next,
        runtime: input.runtime,
        stageTimeoutSeconds: input.stageTimeoutSeconds,
        secretFile: r.node.secretFile,
        http: head ? input.api : undefined,
        noPipeline: head && input.pipeline === false,
        ...(head && input.resumeTimeoutSeconds !== undefined ? { resumeTimeoutSeconds: input.resumeTimeoutSeconds } : {}),
        noEncrypt: input.encrypt === false,
        noMicrobatch: head && input.microbatch === false,
        ...(head && input.groups !== undefined ? { groups: input.groups } : {}),
        batchGroupsFrom: input.batchGroupsFrom,
        extra: input.extraArgs,
        gpuLayers: r.gpuLayers,
        pollUs: r.pollUs,
      }),
      wrapperName: `${input.runName}-rank${i}`,
      readiness: head ? { kind: 'http-health', host: input.api.host, port: input.api.port } : { kind: 'stage-ready-line', layers },
    };
  });
  return [...launches.slice(1).reverse(), launches[0]!];
}
