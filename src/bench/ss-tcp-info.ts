// Reads `ss -tinH state established` (iproute2): per TCP connection its addresses and the kernel's tcp_info byte
// counters, and tallies them per listening port into a link's counts. Pure: the text comes in, data goes out.
import type { LinkCounts } from './link-counter.js';

export interface TcpConnection {
  /** "address:port" as ss prints it (IPv6 in brackets). */
  readonly local: string;
  readonly peer: string;
  readonly localPort: number;
  /** tcpi_bytes_received: payload this end has received. */
  readonly bytesReceived: number;
  /** tcpi_bytes_sent (kernels before 4.19 lack it: tcpi_bytes_acked); retransmissions aside, what this end wrote. */
  readonly bytesSent: number;
}

const ADDRESS = /^(?:\[[^\]]+\]|[^\s[\]]+):(\d+)$/;

/** ss omits a counter that is 0. */
const counter = (info: string, name: string): number | undefined => {
  const m = new RegExp(`(?:^|\\s)${name}:(\\d+)`).exec(info);
  return m ? Number(m[1]) : undefined;
};

/**
 * One entry per socket: a line at column 0 with the queues and the two addresses (a State column first when no state
 * filter was given), then its tcp_info on indented lines.
 */
export function parseSsTcpInfo(text: string): TcpConnection[] {
  const out: TcpConnection[] = [];
  let head: { local: string; peer: string; localPort: number } | undefined;
  let info = '';
  const flush = () => {
    if (head) {
      out.push({ ...head, bytesReceived: counter(info, 'bytes_received') ?? 0, bytesSent: counter(info, 'bytes_sent') ?? counter(info, 'bytes_acked') ?? 0 });
    }
    head = undefined;
    info = '';
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line)) {
      info += ` ${line.trim()}`;
      continue;
    }
    flush();
    const addresses = line.trim().split(/\s+/).filter((t) => ADDRESS.test(t));
    const [local, peer] = addresses;
    if (local === undefined || peer === undefined) continue;
    head = { local, peer, localPort: Number(ADDRESS.exec(local)![1]) };
  }
  flush();
  return out;
}

/**
 * A link's bytes summed over connections, kept across readings: a connection gone since the last reading (a rank
 * restarted) keeps what it was last seen to carry, so a link's counts never go back.
 */
export interface PortTally {
  /** Per connection ("local peer") its last reading. */
  readonly live: ReadonlyMap<string, TcpConnection>;
  /** Per listening port, the last readings of its connections that are gone. */
  readonly gone: ReadonlyMap<number, { readonly received: number; readonly sent: number; readonly connections: number }>;
}

export const EMPTY_TALLY: PortTally = { live: new Map(), gone: new Map() };

/** Folds one reading into the tally, for the connections whose local port is one of `ports` (the server ends). */
export function tallyReading(prev: PortTally, reading: readonly TcpConnection[], ports: ReadonlySet<number>): PortTally {
  const live = new Map<string, TcpConnection>();
  for (const c of reading) if (ports.has(c.localPort)) live.set(`${c.local} ${c.peer}`, c);
  const gone = new Map(prev.gone);
  const retire = (c: TcpConnection) => {
    const g = gone.get(c.localPort) ?? { received: 0, sent: 0, connections: 0 };
    gone.set(c.localPort, { received: g.received + c.bytesReceived, sent: g.sent + c.bytesSent, connections: g.connections + 1 });
  };
  for (const [key, old] of prev.live) {
    const now = live.get(key);
    // Gone, or the same addresses on a new connection (its counters started over).
    if (!now || now.bytesReceived < old.bytesReceived || now.bytesSent < old.bytesSent) retire(old);
  }
  return { live, gone };
}

/** The link whose server listens on `port`: forward is what the server received, backward what it sent. */
export function portCounts(t: PortTally, port: number): LinkCounts {
  const g = t.gone.get(port) ?? { received: 0, sent: 0, connections: 0 };
  let forwardBytes = g.received;
  let backwardBytes = g.sent;
  let connections = g.connections;
  for (const c of t.live.values()) {
    if (c.localPort !== port) continue;
    forwardBytes += c.bytesReceived;
    backwardBytes += c.bytesSent;
    connections++;
  }
  return { forwardBytes, backwardBytes, connections, heldChunks: 0, heldMsSum: 0 };
}
