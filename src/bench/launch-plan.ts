// A configuration turned into processes to start (in order, each with its readiness probe) and links to relay.
// Pure: ports and paths come in, data goes out; the runner starts exactly this.
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
  | { readonly kind: 'tcp'; readonly port: number };

export type ProcessRole = 'server' | 'head' | 'worker' | 'rpc-head' | 'rpc-server';

export interface PlannedProcess {
  readonly rank: number;
  readonly node: number;
  readonly role: ProcessRole;
  readonly layers: readonly [number, number];
  readonly spec: ProcessSpec;
  readonly ready: ReadyProbe;
}

/** An inter-node connection: the client dials `listenPort` (a relay), which forwards to `targetPort`. */
export interface PlannedLink {
  readonly name: string;
  readonly fromRank: number;
  readonly toRank: number;
  readonly listenPort: number;
  readonly targetPort: number;
}

export interface LaunchPlan {
  readonly httpPort: number;
  /** In start order: downstream processes first, the head (HTTP) last. */
  readonly processes: readonly PlannedProcess[];
  readonly links: readonly PlannedLink[];
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
}

export const WORKER_READY = /^llama-relay: stage ready layers=(\d+):(\d+) listen=(\S+)/;

/** HTTP port, plus per remote rank a listen port and a relay port (chains: one more pair for the head). */
export function portsNeeded(c: BenchConfig): number {
  const k = c.ranks.length;
  if (c.kind === 'chain' && k > 1) return 1 + 2 * k;
  if (c.kind === 'rpc') return 1 + 2 * (k - 1);
  return 1;
}

export function processLabel(c: BenchConfig, rank: number, node: BenchNode | undefined): string {
  const role = c.kind === 'rpc' ? (rank === 0 ? 'rpc head' : `ggml-rpc-server ${rank}`) : c.ranks.length > 1 ? `rank ${rank}` : 'server';
  return `${c.id} ${role}${node ? ` on ${node.name}` : ''}`;
}

export function planLaunch(c: BenchConfig, input: LaunchInput): LaunchPlan {
  const need = portsNeeded(c);
  if (input.ports.length < need) throw new BugError(`${c.id} needs ${need} ports, got ${input.ports.length}`);
  const ports = [...input.ports];
  const take = () => ports.shift()!;
  const httpPort = take();
  const { bins, runtime, model } = input;
  const k = c.ranks.length;
  const rank = (i: number) => c.ranks[i]!;
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
    const bin = c.kind === 'stock' ? bins.stockServer : bins.patchedServer;
    return {
      httpPort,
      processes: [proc(0, 'server', spec(0, bin, singleServerArgs(model, runtime, httpPort)), { kind: 'http-health', port: httpPort })],
      links: [],
    };
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
        model,
        runtime,
        layers: rank(i).layers,
        listen: `${LOOPBACK}:${listen[i]}`,
        next: `${LOOPBACK}:${relay[i]}`,
        secretFile: input.secretFile,
        ...(i === 0 ? { httpPort, noPipeline: !c.pipeline } : {}),
      });
      return i === 0
        ? proc(0, 'head', spec(0, bins.patchedServer, args), { kind: 'http-health', port: httpPort })
        : proc(i, 'worker', spec(i, bins.patchedServer, args), { kind: 'stderr-line', pattern: WORKER_READY });
    };
    const order = [...Array.from({ length: k - 1 }, (_, j) => k - 1 - j), 0];
    return { httpPort, processes: order.map(rankProc), links };
  }

  // rpc: ggml-rpc-servers first, then the stock head whose --rpc list points at the relays.
  const serverPorts = c.ranks.slice(1).map(() => take());
  const relayPorts = c.ranks.slice(1).map(() => take());
  const split = rpcSplit(c.ranks.map((r) => r.layers), c.ranks.at(-1)!.layers[1]);
  const servers = serverPorts.map((p, j) =>
    proc(j + 1, 'rpc-server', spec(j + 1, bins.rpcServer, rpcServerArgs(p, runtime.threads)), { kind: 'tcp', port: p }),
  );
  const endpoints = relayPorts.map((p) => `${LOOPBACK}:${p}`);
  const head = proc(0, 'rpc-head', spec(0, bins.stockServer, rpcHeadArgs(model, runtime, httpPort, endpoints, split)), {
    kind: 'http-health',
    port: httpPort,
  });
  const links: PlannedLink[] = serverPorts.map((p, j) => ({
    name: `0->${j + 1}`,
    fromRank: 0,
    toRank: j + 1,
    listenPort: relayPorts[j]!,
    targetPort: p,
  }));
  return { httpPort, processes: [...servers, head], links };
}
