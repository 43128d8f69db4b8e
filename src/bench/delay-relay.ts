// A TCP relay on loopback that emulates a link: each chunk is delayed by a fixed one-way latency, order is
// kept, and bytes are counted both ways. At delay 0 local links go direct (kernel-link-counter.ts counts them).
import net from 'node:net';
import { UserError } from '../errors.js';
import { DelayedPipe } from './delayed-pipe.js';
import type { LinkCounter, LinkCounts } from './link-counter.js';
import { PreciseClock } from './precise-clock.js';

export interface RelayOptions {
  readonly name: string;
  readonly target: { readonly host: string; readonly port: number };
  readonly delayMs: number;
  /** 0 (or absent) picks a free port. */
  readonly listenPort?: number;
  /** Aborting closes the relay and every connection through it. */
  readonly signal?: AbortSignal;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class DelayRelay implements LinkCounter {
  private readonly sockets = new Set<net.Socket>();
  private readonly pipes = new Set<DelayedPipe>();
  private counts = { forwardBytes: 0, backwardBytes: 0, connections: 0, heldChunks: 0, heldMsSum: 0 };
  private closed = false;
  private listenPort = 0;
  private readonly clock: PreciseClock | undefined;
  private detach = (): void => undefined;

  private constructor(
    readonly options: RelayOptions,
    private readonly server: net.Server,
  ) {
    this.clock = options.delayMs > 0 ? new PreciseClock() : undefined;
  }

  static async start(o: RelayOptions): Promise<DelayRelay> {
    if (!isLoopback(o.target.host)) throw new UserError(`the link relay only forwards to loopback addresses, not ${o.target.host}`);
    if (!(o.delayMs >= 0) || !Number.isFinite(o.delayMs)) throw new UserError(`link latency must be a non-negative number of ms, not ${o.delayMs}`);
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    const relay = new DelayRelay(o, server);
    server.on('connection', (c) => relay.accept(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => {
        void relay.close();
        reject(err);
      });
      server.listen({ host: '127.0.0.1', port: o.listenPort ?? 0 }, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    relay.listenPort = (server.address() as net.AddressInfo).port;
    // Never the reason the process stays alive; aborting the run closes it.
    server.unref();
    if (o.signal) {
      const onAbort = () => void relay.close();
      if (o.signal.aborted) onAbort();
      else {
        o.signal.addEventListener('abort', onAbort, { once: true });
        relay.detach = () => o.signal?.removeEventListener('abort', onAbort);
      }
    }
    return relay;
  }

  get port(): number {
    return this.listenPort;
  }

  snapshot(): LinkCounts {
    return { ...this.counts };
  }

  /** Stops listening and destroys every connection; idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.detach();
    for (const p of this.pipes) p.stop();
    for (const s of this.sockets) s.destroy();
    this.clock?.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    this.counts.connections++;
    const upstream = net.connect({ host: this.options.target.host, port: this.options.target.port, allowHalfOpen: true, noDelay: true });
    client.setNoDelay(true);
    const pair = [client, upstream];
    const observer = (dir: 'forwardBytes' | 'backwardBytes') => ({
      onBytes: (n: number) => (this.counts[dir] += n),
      onHeld: (ms: number) => {
        this.counts.heldChunks++;
        this.counts.heldMsSum += ms;
      },
    });
    const pipes = [
      new DelayedPipe(client, upstream, this.options.delayMs, this.clock, observer('forwardBytes')),
      new DelayedPipe(upstream, client, this.options.delayMs, this.clock, observer('backwardBytes')),
    ];
    const teardown = () => {
      for (const p of pipes) {
        p.stop();
        this.pipes.delete(p);
      }
      for (const s of pair) {
        s.destroy();
        this.sockets.delete(s);
      }
    };
    for (const s of pair) {
      this.sockets.add(s);
      // A reset or a refused upstream ends the whole connection, as it would on a real link.
      s.on('error', teardown);
      s.on('close', (hadError) => {
        this.sockets.delete(s);
        if (hadError || pair.every((x) => x.destroyed)) teardown();
      });
    }
    for (const p of pipes) this.pipes.add(p);
  }
}
