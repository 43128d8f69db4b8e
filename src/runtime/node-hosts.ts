// The machines a run's processes start on, by index: a transport per node (this machine, or ssh with one ControlMaster
// each), the address each node's processes bind, free ports there, and processes started through the process module:
// remote ones under the remote wrapper, so nothing outlives the run, a Ctrl-C or a dropped connection.
import getPort from 'get-port';
import { BugError } from '../errors.js';
import type { NodeSpec } from '../plan/node-spec.js';
import { startProcess, type ManagedProcess } from '../process/managed-process.js';
import type { ProcessSpec } from '../process/process-spec.js';
import { startWrapped, type WrappedProcess } from '../process/wrapped-process.js';
import { LocalTransport } from '../ssh/local-transport.js';
import { makeControlDir } from '../ssh/ssh-transport.js';
import type { Transport } from '../ssh/transport.js';
import { connectNodes, nodeTransports, sshSettings } from './node-transports.js';
import { parseVmHwm, readPeakRss } from './proc-status.js';
import { tcpAccepting } from './readiness.js';
import { listeningPortsArgv, parseListeningPorts, pickPorts } from './remote-ports.js';
import { LOOPBACK } from './server-argv.js';

/** A machine that runs processes: this one, or a node reached over ssh (the same `[user@]host[:port]` as `up`). */
export type RunNode =
  | { readonly name: string; readonly kind: 'local' }
  | { readonly name: string; readonly kind: 'ssh'; readonly spec: NodeSpec };

export interface HostsOptions {
  sshConfig?: string;
  acceptNewHostKeys?: boolean;
  connectTimeoutSeconds?: number;
  /** Pidfile directory for the remote wrapper on the nodes (default: $TMPDIR/llama-relay-$UID there). */
  runDir?: string;
  signal?: AbortSignal;
}

/** A process of a configuration, on its node. */
export interface NodeProcess {
  readonly proc: ManagedProcess;
  /** VmHWM of the process on its node, read just before it is stopped. */
  peakRss(): Promise<number | undefined>;
}

export interface StartOnNode {
  signal?: AbortSignal;
  onLine: (line: string) => void;
  /** The chain secret, for a process that reads it from LLAMA_RELAY_SECRET. */
  secret?: string;
  /** Names the wrapper's pidfile on the node. */
  wrapperName: string;
}

/** Starts a process on this machine (the secret, if any, in LLAMA_RELAY_SECRET); its peak RSS from /proc. */
export function startHere(spec: ProcessSpec, o: Omit<StartOnNode, 'wrapperName'>): NodeProcess {
  const proc = startProcess(
    o.secret === undefined ? spec : { ...spec, env: { ...spec.env, LLAMA_RELAY_SECRET: o.secret } },
    { signal: o.signal, forceKillAfterMs: 3000, tailLines: 60, onLine: o.onLine },
  );
  return { proc, peakRss: () => readPeakRss(proc.pid) };
}

export class NodeHosts {
  private readonly given = new Map<string, Set<number>>();

  private constructor(
    readonly nodes: readonly RunNode[],
    private readonly transports: readonly Transport[],
    /** Per node: the address its processes bind and the others dial. */
    private readonly addresses: readonly string[],
    private readonly runDir: string | undefined,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /** Connects to every remote node (in parallel) and learns the addresses the nodes and this machine see each other at. */
  static async open(nodes: readonly RunNode[], o: HostsOptions = {}): Promise<NodeHosts> {
    const control = nodes.some((n) => n.kind === 'ssh') ? makeControlDir() : undefined;
    const remote = nodeTransports(nodes.flatMap((n) => (n.kind === 'ssh' ? [n.spec] : [])), sshSettings(control?.dir, o));
    const here = new LocalTransport();
    const transports = nodes.map((n): Transport => (n.kind === 'ssh' ? remote.get(n.name)! : here));
    const close = async () => {
      await Promise.all([...remote.values()].map((t) => t.close().catch(() => undefined)));
      control?.remove();
    };
    try {
      // Local processes bind where the remote nodes see this machine; an all-local run stays on loopback.
      const addresses = await connectNodes([here, ...remote.values()], { signal: o.signal });
      return new NodeHosts(nodes, transports, transports.map((t) => addresses.get(t.name)!), o.runDir, close);
    } catch (err) {
      await close();
      throw err;
    }
  }

  get anyRemote(): boolean {
    return this.transports.some((t) => !t.isLocal);
  }

  isLocal(node: number): boolean {
    return this.transport(node).isLocal;
  }

  transport(node: number): Transport {
    const t = this.transports[node];
    if (!t) throw new BugError(`no node ${node}`);
    return t;
  }

  address(node: number): string {
    return this.addresses[node] ?? LOOPBACK;
  }

  /** One free port per entry, on that node (undefined: this machine's loopback). Ports are not handed out twice in a run. */
  async ports(owners: readonly (number | undefined)[]): Promise<number[]> {
    const out: number[] = [];
    const listening = new Map<string, Set<number>>();
    for (const owner of owners) {
      const t = owner === undefined ? undefined : this.transport(owner);
      if (!t || t.isLocal) {
        out.push(await getPort({ host: LOOPBACK }));
        continue;
      }
      if (!listening.has(t.name)) listening.set(t.name, parseListeningPorts((await t.exec(listeningPortsArgv())).stdout));
      const given = this.given.get(t.name) ?? new Set<number>();
      this.given.set(t.name, given);
      const [port] = pickPorts(1, new Set([...listening.get(t.name)!, ...given]));
      given.add(port!);
      out.push(port!);
    }
    return out;
  }

  /** Starts a process on node `node`: here directly, remotely under the wrapper (secret on stdin, heartbeat). */
  start(node: number, spec: ProcessSpec, o: StartOnNode): NodeProcess {
    const t = this.transport(node);
    if (t.isLocal) return startHere(spec, o);
    const proc: WrappedProcess = startWrapped(
      t,
      {
        label: spec.label,
        argv: [spec.command, ...spec.args],
        secret: o.secret,
        wrapper: {
          name: o.wrapperName,
          graceSeconds: 3,
          heartbeatSeconds: 3,
          secretEnv: o.secret !== undefined ? 'LLAMA_RELAY_SECRET' : undefined,
          runDir: this.runDir,
        },
      },
      { signal: o.signal, tailLines: 60, onLine: o.onLine },
    );
    return {
      proc,
      // The wrapper's child runs the command through setsid's exec: its pgid is the server's pid.
      peakRss: async () => {
        const pid = proc.childPgid();
        if (pid === undefined) return undefined;
        try {
          return parseVmHwm((await t.exec(['cat', `/proc/${pid}/status`], { timeoutMs: 10_000 })).stdout);
        } catch {
          return undefined;
        }
      },
    };
  }

  /** Where this machine reaches `port` on the node's loopback: itself, or an ssh forward. */
  async reach(node: number, port: number): Promise<{ port: number; stop: () => Promise<void> }> {
    const t = this.transport(node);
    if (t.isLocal) return { port, stop: async () => {} };
    const f = await t.forward(LOOPBACK, port);
    return { port: Number(f.address.slice(f.address.lastIndexOf(':') + 1)), stop: f.stop };
  }

  /** Whether something listens on `port` on the node (there: asked through ssh, since its loopback is out of reach). */
  async listening(node: number, port: number): Promise<boolean> {
    const t = this.transport(node);
    if (t.isLocal) return tcpAccepting(port);
    try {
      return parseListeningPorts((await t.exec(listeningPortsArgv(), { timeoutMs: 10_000 })).stdout).has(port);
    } catch {
      return false;
    }
  }

  /**
   * Makes 127.0.0.1:`targetPort` on node `to` reachable at 127.0.0.1:`listenPort` on node `from`, through ssh: a forward
   * from this machine, a reverse forward to it, or both chained through this machine when both nodes are remote.
   */
  async tunnel(from: number, listenPort: number, to: number, targetPort: number): Promise<{ stop: () => Promise<void> }> {
    const [src, dst] = [this.transport(from), this.transport(to)];
    if (src.isLocal && dst.isLocal) throw new BugError(`tunnel between two local nodes (${from} -> ${to})`);
    if (src.isLocal) return dst.forward(LOOPBACK, targetPort, listenPort);
    if (dst.isLocal) return src.reverseForward(listenPort, LOOPBACK, targetPort);
    const f = await dst.forward(LOOPBACK, targetPort);
    try {
      const r = await src.reverseForward(listenPort, LOOPBACK, Number(f.address.slice(f.address.lastIndexOf(':') + 1)));
      return { stop: async () => void (await Promise.all([r.stop(), f.stop()])) };
    } catch (err) {
      await f.stop();
      throw err;
    }
  }

  /** Closes the ssh connections; idempotent. */
  close(): Promise<void> {
    return this.cleanup();
  }
}
