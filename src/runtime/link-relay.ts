// The head's downstream link when spares stand by: the head cannot be restarted without losing the requests it
// holds, so it dials this relay (on the launcher), and a move of rank 1 to a spare points the relay at the spare.
// Bytes pass through unchanged (the link's own encryption and authentication are end to end, head to rank 1).
import net from 'node:net';
import { splitHostPort } from './host-port.js';

export interface LinkRelay {
  /** Where the relay listens on this machine ("127.0.0.1:PORT"). */
  readonly address: string;
  readonly port: number;
  /** Sends new connections to `hostPort` and drops the current ones, so the head reconnects through the new target (no-op when it is the same). */
  retarget(hostPort: string): void;
  close(): Promise<void>;
}

export async function startLinkRelay(target: string): Promise<LinkRelay> {
  let to = splitHostPort(target);
  const open = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  };
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ ...to, noDelay: true });
    track(client);
    track(upstream);
    // Either side failing ends both: the head sees a lost link and reconnects, as it would without the relay.
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    retarget(hp) {
      const next = splitHostPort(hp);
      if (next.host === to.host && next.port === to.port) return; // the head's link stays as it is
      to = next;
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
