// A configuration turned into processes to start (in order, each with its readiness probe) and links to relay.
// Pure: ports and paths come in, data goes out; the runner starts exactly this.
import { hostPort } from '../cluster/launch-plan.js';
import { BugError } from '../errors.js';
import type { ProcessSpec } from '../process/process-spec.js';
import type { BenchConfig, BenchNode, BenchRuntime } from './bench-config.js';
import { rpcSplit } from './rpc-split.js';
import { chainRankArgs, LOOPBACK, pinToCore, rpcHeadArgs, rpcServerArgs, singleServerArgs } from './server-argv.js';

export interface Binaries {
  readonly patchedServer: string;
  readonly stockServer: string;
  readonly rpcServer: string;
}

/** How the runner knows a process finished loading. */
export type ReadyProbe =
  | { readonly kind: 'http-health'; readonly port: number }
  | { readonly kind: 'stderr-line'; readonly pattern: RegExp }
  /** host: where the port is, when not this machine's loopback. */
  | { readonly kind: 'tcp'; readonly port: number; readonly host?: string }
  /** A port on its node's loopback, which this machine cannot dial when the node is remote: asked on the node. */
  | { readonly kind: 'node-listening'; readonly port: number };

export type ProcessRole = 'server' | 'head' | 'worker' | 'rpc-head' | 'rpc-server';

export interface PlannedProcess {
  readonly rank: number;
  readonly node: number;
  readonly role: ProcessRole;
  readonly layers: readonly [number, number];
  readonly spec: ProcessSpec;
  readonly ready: ReadyProbe;
  /** The chain secret goes to it in LLAMA_RELAY_SECRET (through the remote wrapper's stdin), not as a file. */
  readonly secretInEnv?: boolean;
}

/** An inter-node connection: the client dials `listenPort` (a relay), which forwards to `targetPort`. */
export interface PlannedLink {
  readonly name: string;
  readonly fromRank: number;
  readonly toRank: number;
  readonly listenPort: number;
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
   * address and dials the others' directly. Without it, everything is on this machine's loopback, through relays.
   */
  readonly sites?: readonly RankSite[];
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

export const WORKER_READY = /^llama-relay: stage ready layers=(\d+):(\d+) listen=(\S+)/;

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
  // rpc direct: per server, its loopback port on its node and the tunnel's end on the head's node.
  if (c.kind === 'rpc') return [nodes[0], ...nodes.slice(1), ...(direct ? nodes.slice(1).map(() => nodes[0]) : relays(k - 1))];
  return [nodes[0]];
}

export function processLabel(c: BenchConfig, rank: number, node: BenchNode | undefined): string {
  const role = c.kind === 'rpc' ? (rank === 0 ? 'rpc head' : `ggml-rpc-server ${rank}`) : c.ranks.length > 1 ? `rank ${rank}` : 'server';
  return `${c.id} ${role}${node ? ` on ${node.name}` : ''}`;
}

/** Both this machine, or the same ssh node: a loopback port of one is the other's (addresses can coincide otherwise). */
function sameMachine(a: BenchNode | undefined, b: BenchNode | undefined): boolean {
  if (!a || !b) return false;
  return a.kind === 'local' ? b.kind === 'local' : b.kind === 'ssh' && a.name === b.name;
}

export function planLaunch(c: BenchConfig, input: LaunchInput): LaunchPlan {
  const sites = input.sites;
  if (sites && sites.length !== c.ranks.length) throw new BugError(`${c.id} has ${c.ranks.length} ranks but ${sites.length} sites`);
  const need = portsNeeded(c, !!sites);
  if (input.ports.length < need) throw new BugError(`${c.id} needs ${need} ports, got ${input.ports.length}`);
  const ports = [...input.ports];
  const take = () => ports.shift()!;
  const httpPort = take();
  const { runtime } = input;
  const k = c.ranks.length;
  const rank = (i: number) => c.ranks[i]!;
  const binsOf = (i: number) => sites?.[i]!.bins ?? input.bins;
  const modelOf = (i: number) => sites?.[i]!.model ?? input.model;
  const hostOf = (i: number) => sites?.[i]!.host ?? LOOPBACK;
  const spec = (i: number, command: string, args: string[]): ProcessSpec =>
    pinToCore({ label: processLabel(c, i, input.nodes[rank(i).node]), command, args }, rank(i).core);
  const proc = (i: number, role: ProcessRole, s: ProcessSpec, ready: ReadyProbe): PlannedProcess => ({
    rank: i,
    node: rank(i).node,
    role,
    layers: rank(i).layers,
    spec: s,
    ready,
  });

  if (c.kind === 'stock' || (c.kind === 'chain' && k === 1)) {
    const bin = c.kind === 'stock' ? binsOf(0).stockServer : binsOf(0).patchedServer;
    return {
      httpPort,
      processes: [proc(0, 'server', spec(0, bin, singleServerArgs(modelOf(0), runtime, httpPort)), { kind: 'http-health', port: httpPort })],
      links: [],
    };
  }

  if (c.kind === 'chain' && sites) {
    // Real links: rank i dials rank i+1's listen address on its node; the last one closes the ring on the head.
    const listen = c.ranks.map((_, i) => hostPort(hostOf(i), take()));
    const rankProc = (i: number): PlannedProcess => {
      const secretFile = sites[i]!.secretFile;
      const args = chainRankArgs({
        model: modelOf(i),
        runtime,
        layers: rank(i).layers,
        listen: listen[i]!,
        next: listen[(i + 1) % k]!,
        ...(secretFile ? { secretFile } : {}),
        ...(i === 0 ? { httpPort, noPipeline: !c.pipeline } : {}),
        ...(c.encrypt === false ? { noEncrypt: true } : {}),
      });
      const p =
        i === 0
          ? proc(0, 'head', spec(0, binsOf(0).patchedServer, args), { kind: 'http-health', port: httpPort })
          : proc(i, 'worker', spec(i, binsOf(i).patchedServer, args), { kind: 'stderr-line', pattern: WORKER_READY });
      return secretFile ? p : { ...p, secretInEnv: true };
    };
    return { httpPort, processes: [...Array.from({ length: k - 1 }, (_, j) => k - 1 - j), 0].map(rankProc), links: [] };
  }

  if (c.kind === 'chain') {
    const listen = c.ranks.map(() => take());
    const relay = c.ranks.map(() => take());
    // Link i carries rank i's activations to rank i+1; the last one is the ring's return link to the head.
    const links: PlannedLink[] = c.ranks.map((_, i) => ({
      name: `${i}->${(i + 1) % k}`,
      fromRank: i,
      toRank: (i + 1) % k,
      listenPort: relay[i]!,
      targetPort: listen[(i + 1) % k]!,
    }));
    const rankProc = (i: number): PlannedProcess => {
      const args = chainRankArgs({
        model: input.model,
        runtime,
        layers: rank(i).layers,
        listen: `${LOOPBACK}:${listen[i]}`,
        next: `${LOOPBACK}:${relay[i]}`,
        secretFile: input.secretFile,
        ...(i === 0 ? { httpPort, noPipeline: !c.pipeline } : {}),
        ...(c.encrypt === false ? { noEncrypt: true } : {}),
      });
      return i === 0
        ? proc(0, 'head', spec(0, input.bins.patchedServer, args), { kind: 'http-health', port: httpPort })
        : proc(i, 'worker', spec(i, input.bins.patchedServer, args), { kind: 'stderr-line', pattern: WORKER_READY });
    };
    const order = [...Array.from({ length: k - 1 }, (_, j) => k - 1 - j), 0];
    return { httpPort, processes: order.map(rankProc), links };
  }

  // rpc: ggml-rpc-servers first, then the stock head whose --rpc list points at the relays (remote: at ssh tunnels).
  // The servers bind loopback on their nodes: anyone who reaches one can read and write its memory.
  const serverPorts = c.ranks.slice(1).map(() => take());
  const relayPorts = c.ranks.slice(1).map(() => take());
  const split = rpcSplit(c.ranks.map((r) => r.layers), c.ranks.at(-1)!.layers[1]);
  const servers = serverPorts.map((p, j) => {
    const elsewhere = !!sites && !sameMachine(input.nodes[rank(0).node], input.nodes[rank(j + 1).node]);
    const ready: ReadyProbe = sites ? { kind: 'node-listening', port: p } : { kind: 'tcp', port: p };
    return { proc: proc(j + 1, 'rpc-server', spec(j + 1, binsOf(j + 1).rpcServer, rpcServerArgs(p, runtime.threads)), ready), elsewhere };
  });
  // On the same machine as the head the server is dialled directly; otherwise through a tunnel ending on the head's node.
  const endpoints = serverPorts.map((p, j) => `${LOOPBACK}:${sites && !servers[j]!.elsewhere ? p : relayPorts[j]}`);
  const head = proc(0, 'rpc-head', spec(0, binsOf(0).stockServer, rpcHeadArgs(modelOf(0), runtime, httpPort, endpoints, split)), {
    kind: 'http-health',
    port: httpPort,
  });
  const processes = [...servers.map((s) => s.proc), head];
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
    listenPort: relayPorts[j]!,
    targetPort: p,
  }));
  return { httpPort, processes, links };
}
