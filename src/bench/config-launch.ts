// A bench configuration turned into processes to start (in order, each with its readiness) and links to relay. Chains
// are planned by the runtime's chain planner, stock and RPC servers by its argv builders. Pure: ports and paths come
// in, data goes out; the runner starts exactly this.
import { BugError } from '../errors.js';
import type { ProcessSpec } from '../process/process-spec.js';
import type { Binaries } from '../provision/llama-builds.js';
import { hostPort } from '../runtime/host-port.js';
import { planLaunch, type LaunchNode } from '../runtime/launch-plan.js';
import { linkPollWindows } from '../runtime/link-poll.js';
import type { Readiness } from '../runtime/readiness.js';
import { rpcSplit } from '../runtime/rpc-split.js';
import { LOOPBACK, pinToCore, rpcHeadArgv, rpcServerArgv, singleServerArgv, type ChainRuntime } from '../runtime/server-argv.js';
import type { BenchConfig, BenchNode, BenchRuntime } from './bench-config.js';

export type ProcessRole = 'server' | 'head' | 'worker' | 'rpc-head' | 'rpc-server';

export interface PlannedProcess {
  readonly rank: number;
  readonly node: number;
  readonly role: ProcessRole;
  readonly layers: readonly [number, number];
  readonly spec: ProcessSpec;
  readonly ready: Readiness;
  /** The chain secret goes to it in LLAMA_RELAY_SECRET (through the remote wrapper's stdin), not as a file. */
  readonly secretInEnv?: boolean;
}

/**
 * An inter-node connection whose bytes are measured: the client dials `listenPort` (a relay), which forwards to
 * `targetPort`; without `listenPort` it dials `targetPort` directly (its bytes are the kernel's counters there).
 */
export interface PlannedLink {
  readonly name: string;
  readonly fromRank: number;
  readonly toRank: number;
  readonly listenPort?: number;
  readonly targetPort: number;
}

/**
 * A loopback-only server on another node (ggml-rpc-server has no authentication, so it never binds a LAN address):
 * on `fromNode`, 127.0.0.1:listenPort reaches 127.0.0.1:targetPort on `toNode`, through ssh.
 */
export interface PlannedTunnel {
  readonly name: string;
  readonly fromNode: number;
  readonly toNode: number;
  readonly listenPort: number;
  readonly targetPort: number;
}

export interface LaunchPlan {
  readonly httpPort: number;
  /** In start order: downstream processes first, the head (HTTP) last. */
  readonly processes: readonly PlannedProcess[];
  readonly links: readonly PlannedLink[];
  /** Up before the process that dials them (the RPC head) starts. */
  readonly tunnels?: readonly PlannedTunnel[];
}

export interface LaunchInput {
  readonly model: string;
  readonly bins: Binaries;
  readonly runtime: BenchRuntime;
  readonly nodes: readonly BenchNode[];
  /** At least portsNeeded(config) free loopback ports. */
  readonly ports: readonly number[];
  /** The chain's shared secret file (chains with more than one rank). */
  readonly secretFile: string;
  /**
   * Per rank, where it runs when the links are real (remote nodes): no relays, every process binds its node's
   * address and dials the others' directly. Without it, everything is on this machine's loopback.
   */
  readonly sites?: readonly RankSite[];
  /**
   * The one-way latency relays emulate on local links (ms). At 0 there are no relays: the processes dial each other's
   * loopback ports directly, as in a deployment, and the links are listed to be counted in the kernel.
   */
  readonly linkLatencyMs: number;
  /** The --stage-poll window of chain ranks with a core to themselves (0: none polls); default LINK_POLL_US. */
  readonly linkPollUs?: number;
}

/** No relay in any link's path: real links (remote nodes), or local ones with no latency to emulate. */
export function directLinks(linkLatencyMs: number, remote: boolean): boolean {
  return remote || linkLatencyMs === 0;
}

/** One rank's node as its processes see it: the address it binds (and the others dial), and paths there. */
export interface RankSite {
  readonly host: string;
  /** The model (a chain rank: its slice) on that node. */
  readonly model: string;
  readonly bins: Binaries;
  /** The secret file on that node; without it the secret is passed in LLAMA_RELAY_SECRET. */
  readonly secretFile?: string;
}

/** The same flags for every server of a run, so stock, chain and RPC compute the same thing. */
export function serverRuntime(r: BenchRuntime): ChainRuntime {
  // Chains run without warmup and memory fitting; the others match, and the bench warms every config up itself.
  return { ctx: r.ctx, parallel: r.slots, threads: r.threads, threadsBatch: r.threads, batch: r.batch, ubatch: r.ubatch, noWarmup: true, fit: 'off' };
}

/** HTTP port, plus per remote rank a listen port and a relay port (chains: one more pair for the head); no relays when direct. */
export function portsNeeded(c: BenchConfig, direct = false): number {
  return portNodes(c, direct).length;
}

/** Which node each of planLaunch's ports is taken on, in order (undefined: this machine, a relay). */
export function portNodes(c: BenchConfig, direct = false): (number | undefined)[] {
  const k = c.ranks.length;
  const nodes = c.ranks.map((r) => r.node);
  const relays = (n: number) => (direct ? [] : Array.from({ length: n }, () => undefined));
  if (c.kind === 'chain' && k > 1) return [nodes[0], ...nodes, ...relays(k)];
  // rpc direct: per server, its loopback port on its node and the tunnel's end on the head's node (unused on one machine).
  if (c.kind === 'rpc') return [nodes[0], ...nodes.slice(1), ...(direct ? nodes.slice(1).map(() => nodes[0]) : relays(k - 1))];
  return [nodes[0]];
}

export function processLabel(c: BenchConfig, rank: number, node: BenchNode | undefined): string {
  const role = c.kind === 'rpc' ? (rank === 0 ? 'rpc head' : `ggml-rpc-server ${rank}`) : c.ranks.length > 1 ? `rank ${rank}` : 'server';
  return `${c.id} ${role}${node ? ` on ${node.name}` : ''}`;
}

/** The machine a bench node is: this one, or an ssh node by name (addresses can coincide otherwise). */
const machineKey = (n: BenchNode): string => (n.kind === 'local' ? 'local' : `ssh ${n.name}`);

/** Both this machine, or the same ssh node: a loopback port of one is the other's. */
function sameMachine(a: BenchNode | undefined, b: BenchNode | undefined): boolean {
  return !!a && !!b && machineKey(a) === machineKey(b);
}

export function planConfigLaunch(c: BenchConfig, input: LaunchInput): LaunchPlan {
  const sites = input.sites;
  if (sites && sites.length !== c.ranks.length) throw new BugError(`${c.id} has ${c.ranks.length} ranks but ${sites.length} sites`);
  const direct = directLinks(input.linkLatencyMs, !!sites);
  const need = portsNeeded(c, direct);
  if (input.ports.length < need) throw new BugError(`${c.id} needs ${need} ports, got ${input.ports.length}`);
  const ports = [...input.ports];
  const take = () => ports.shift()!;
  const httpPort = take();
  const http = { host: LOOPBACK, port: httpPort };
  const runtime = serverRuntime(input.runtime);
  const k = c.ranks.length;
  const rank = (i: number) => c.ranks[i]!;
  const binsOf = (i: number) => sites?.[i]!.bins ?? input.bins;
  const modelOf = (i: number) => sites?.[i]!.model ?? input.model;
  const spec = (i: number, argv: readonly string[]): ProcessSpec =>
    pinToCore({ label: processLabel(c, i, input.nodes[rank(i).node]), command: argv[0]!, args: argv.slice(1) }, rank(i).core);
  const proc = (i: number, role: ProcessRole, argv: readonly string[], ready: Readiness): PlannedProcess => ({
    rank: i,
    node: rank(i).node,
    role,
    layers: rank(i).layers,
    spec: spec(i, argv),
    ready,
  });

  if (c.kind === 'stock' || (c.kind === 'chain' && k === 1)) {
    const binary = c.kind === 'stock' ? binsOf(0).stockServer : binsOf(0).patchedServer;
    return {
      httpPort,
      processes: [proc(0, 'server', singleServerArgv({ binary, model: modelOf(0), runtime, http }), { kind: 'http-health', ...http })],
      links: [],
    };
  }

  if (c.kind === 'chain') {
    // Direct (real links, or local ones without latency): rank i dials rank i+1's listen address. Emulated: every link
    // goes through a relay on this machine's loopback; link i carries rank i's activations to rank i+1, the last one
    // back to the head.
    const listen = c.ranks.map(() => take());
    const relay = direct ? undefined : c.ranks.map(() => take());
    const node = (i: number): LaunchNode => ({
      name: input.nodes[rank(i).node]?.name ?? `node ${rank(i).node}`,
      stageHost: sites?.[i]!.host ?? LOOPBACK,
      binary: binsOf(i).patchedServer,
      model: modelOf(i),
      secretFile: sites ? sites[i]!.secretFile : input.secretFile,
    });
    // A rank spins only on a core of its own: alone on its machine, or pinned to a core no other rank has.
    const seats = c.ranks.map((r) => {
      const n = input.nodes[r.node];
      return { machine: n ? machineKey(n) : `node ${r.node}`, core: r.core };
    });
    const polls = linkPollWindows(seats, c.poll === false ? 0 : input.linkPollUs);
    const launches = planLaunch({
      ranks: c.ranks.map((r, i) => ({ node: node(i), layerStart: r.layers[0], layerEnd: r.layers[1], pollUs: polls[i] })),
      stagePorts: listen,
      api: http,
      runtime,
      runName: c.id,
      links: relay?.map((p) => hostPort(LOOPBACK, p)),
      pipeline: c.pipeline,
      encrypt: c.encrypt,
      microbatch: c.microbatch,
      ...(c.groups !== undefined ? { groups: c.groups } : {}),
      batchGroupsFrom: c.batchGroupsFrom,
    });
    const processes = launches.map((l): PlannedProcess => {
      const p = proc(l.rank, l.role, l.argv, l.readiness);
      return l.node.secretFile ? p : { ...p, secretInEnv: true };
    });
    // Links between remote nodes are not measured; local ones are, through their relay or in the kernel.
    const links: PlannedLink[] = sites
      ? []
      : c.ranks.map((_, i) => ({
          name: `${i}->${(i + 1) % k}`,
          fromRank: i,
          toRank: (i + 1) % k,
          ...(relay ? { listenPort: relay[i]! } : {}),
          targetPort: listen[(i + 1) % k]!,
        }));
    return { httpPort, processes, links };
  }

  // rpc: ggml-rpc-servers first, then the stock head whose --rpc list points at the relays (remote: at ssh tunnels;
  // direct local: at the servers).
  // The servers bind loopback on their nodes: anyone who reaches one can read and write its memory.
  const serverPorts = c.ranks.slice(1).map(() => take());
  const relayPorts = c.ranks.slice(1).map(() => take());
  const split = rpcSplit(c.ranks.map((r) => r.layers), c.ranks.at(-1)!.layers[1]);
  const servers = serverPorts.map((port, j) => {
    const elsewhere = !!sites && !sameMachine(input.nodes[rank(0).node], input.nodes[rank(j + 1).node]);
    const ready: Readiness = sites ? { kind: 'node-listening', port } : { kind: 'tcp', port };
    return { proc: proc(j + 1, 'rpc-server', rpcServerArgv({ binary: binsOf(j + 1).rpcServer, port, threads: input.runtime.threads }), ready), elsewhere };
  });
  // On the same machine as the head the server is dialled directly; otherwise through a tunnel ending on the head's node.
  const endpoints = serverPorts.map((p, j) => `${LOOPBACK}:${direct && !servers[j]!.elsewhere ? p : relayPorts[j]}`);
  const headArgv = rpcHeadArgv({ binary: binsOf(0).stockServer, model: modelOf(0), runtime, http, endpoints, split });
  const processes = [...servers.map((s) => s.proc), proc(0, 'rpc-head', headArgv, { kind: 'http-health', ...http })];
  if (sites) {
    const tunnels: PlannedTunnel[] = serverPorts.flatMap((p, j) =>
      servers[j]!.elsewhere
        ? [{ name: `0->${j + 1}`, fromNode: rank(0).node, toNode: rank(j + 1).node, listenPort: relayPorts[j]!, targetPort: p }]
        : [],
    );
    return { httpPort, processes, links: [], tunnels };
  }
  const links: PlannedLink[] = serverPorts.map((p, j) => ({
    name: `0->${j + 1}`,
    fromRank: 0,
    toRank: j + 1,
    ...(direct ? {} : { listenPort: relayPorts[j]! }),
    targetPort: p,
  }));
  return { httpPort, processes, links };
}
