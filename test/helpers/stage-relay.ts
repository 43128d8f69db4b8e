// A man in the middle of one stage link, for tests. It holds the secret: it authenticates to both ends,
// decodes every frame with the TypeScript codec, and re-encodes it for the other side (so a chain that
// still computes exact results through it proves the codec matches the engine). It records the raw
// bytes that arrived (what an eavesdropper on the wire would see) and the decoded frames, and can
// inject frames, rewrite them, or flip a byte of the next ciphertext.
import { createServer, type Server } from 'node:net';
import { RawClient } from './stage-client.js';

export type Direction = 'down' | 'up'; // down: from the dialling rank to the listening one

export interface RelayedFrame {
  dir: Direction;
  type: number;
  payload: Buffer;
}

export class StageRelay {
  readonly frames: RelayedFrame[] = [];
  /** Rewrite (or drop: return []) frames on their way. */
  rewrite?: (f: RelayedFrame) => RelayedFrame[];
  private flip: Set<Direction> = new Set();
  private sessions: { from: RawClient; to: RawClient }[] = [];
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly listen: string,
  ) {}

  /** Listens on loopback; each connection is relayed to target after both handshakes. */
  static async start(target: string, secret: string, encrypt = true): Promise<StageRelay> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('no relay address');
    const relay = new StageRelay(server, `127.0.0.1:${addr.port}`);
    server.on('connection', (sock) => {
      relay.connections++;
      void relay.serve(RawClient.wrap(sock), target, secret, encrypt).catch(() => sock.destroy());
    });
    return relay;
  }

  private async serve(from: RawClient, target: string, secret: string, encrypt: boolean) {
    if (!(await from.acceptHandshake(secret, encrypt))) return from.close();
    const to = await RawClient.open(target);
    // the same intent and chain session id as the dialling rank: the relay is invisible to both ends
    if (!(await to.handshake(secret, { encrypt, rank: from.hello!.rank, session: from.hello!.session, addr: target }))) {
      from.close();
      return to.close();
    }
    const s = { from, to };
    this.sessions.push(s);
    const pump = async (a: RawClient, b: RawClient, dir: Direction) => {
      for (;;) {
        let f;
        try {
          f = await a.readFrame();
        } catch {
          break; // a frame that failed its check: drop the link as the engine would
        }
        if (!f) break;
        const rf = { dir, ...f };
        this.frames.push(rf);
        for (const out of this.rewrite ? this.rewrite(rf) : [rf]) {
          const bytes = b.frame(out.type, out.payload);
          if (this.flip.delete(dir)) bytes[12 + Math.floor(out.payload.length / 2)]! ^= 0x01;
          b.write(bytes);
        }
      }
      a.close();
      b.close();
    };
    void pump(from, to, 'down');
    void pump(to, from, 'up');
  }

  /** Injects a frame into the newest session, towards the listening rank (down) or the dialling one (up). */
  inject(dir: Direction, type: number, payload: Buffer) {
    const s = this.sessions.at(-1);
    if (!s) throw new Error('no relayed session yet');
    (dir === 'down' ? s.to : s.from).sendFrame(type, payload);
  }

  /** Flips one ciphertext byte of the next frame relayed in this direction. */
  flipNext(dir: Direction) {
    this.flip.add(dir);
  }

  /** Everything an eavesdropper captured, both directions. */
  captured(): Buffer {
    return Buffer.concat(this.sessions.flatMap((s) => [...s.from.raw, ...s.to.raw]));
  }

  async stop() {
    for (const s of this.sessions) {
      s.from.close();
      s.to.close();
    }
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
