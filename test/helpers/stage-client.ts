// A raw stage-link peer for robustness tests: speaks the engine's handshake (either side) and framing.
import { connect, type Socket } from 'node:net';
import {
  MAC_LEN,
  SERVER_HELLO_LEN,
  decodeClientHello,
  decodeFrame,
  decodeServerHello,
  encodeClientHello,
  encodeFrame,
  encodeServerHello,
  newClientHello,
  proof,
  sessionKeys,
  transcript,
  verifyProof,
  FLAG_ENCRYPT,
  type ClientHello,
  type SessionKeys,
} from './stage-protocol.js';
import { randomBytes } from 'node:crypto';

export interface ClientOptions {
  encrypt?: boolean;
  /** The rank we claim to mean to reach (default 1). */
  rank?: number;
  session?: Buffer;
  addr?: string;
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  seq = 0n;
  recvSeq = 0n;
  keys?: SessionKeys;
  /** The client hello this link was opened with (server side: the one received). */
  hello?: ClientHello;
  /** Every byte received, as it came off the socket. */
  readonly raw: Buffer[] = [];

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.raw.push(d);
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async open(hostport: string): Promise<RawClient> {
    const [host, port] = hostport.split(':');
    const sock = connect(Number(port), host);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    return new RawClient(sock);
  }

  /** Wraps an accepted socket (the server side of a link). */
  static wrap(sock: Socket): RawClient {
    return new RawClient(sock);
  }

  /** n bytes, or undefined if the peer closed first (or the time ran out). */
  async read(n: number, timeoutMs = 5000): Promise<Buffer | undefined> {
    const t0 = Date.now();
    while (this.buf.length < n) {
      if (this.closed || Date.now() - t0 > timeoutMs) return undefined;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Resolves true when the peer closes the connection within timeoutMs. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const t0 = Date.now();
    while (!this.closed && Date.now() - t0 < timeoutMs) {
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.closed;
  }

  write(b: Buffer) {
    if (!this.closed) this.sock.write(b);
  }

  /** Client side of the handshake with this secret; true when the server accepted our proof. */
  async handshake(secret: string, o: ClientOptions = {}): Promise<boolean> {
    const encrypt = o.encrypt ?? true;
    const hello = newClientHello({ encrypt, rank: o.rank ?? 1, session: o.session ?? randomBytes(16), addr: o.addr ?? `${this.sock.remoteAddress}:${this.sock.remotePort}` });
    const ch = encodeClientHello(hello);
    this.write(ch);
    const sh = await this.read(SERVER_HELLO_LEN);
    if (!sh) return false;
    const server = decodeServerHello(sh);
    if (server.flags !== hello.flags) return false;
    const tr = transcript(ch, sh);
    this.write(proof(secret, 'client', tr));
    const got = await this.read(32);
    if (!got || !verifyProof(got, proof(secret, 'server', tr))) return false;
    this.keys = sessionKeys(secret, true, tr, encrypt);
    this.hello = hello;
    return true;
  }

  /** Server side of the handshake: checks the client's proof first, then answers with ours. */
  async acceptHandshake(secret: string, encrypt = true): Promise<boolean> {
    let parsed: ReturnType<typeof decodeClientHello>;
    const t0 = Date.now();
    while (!(parsed = decodeClientHello(this.buf))) {
      if (this.closed || Date.now() - t0 > 10_000) return false;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    const ch = Buffer.from(this.buf.subarray(0, parsed.size));
    this.buf = this.buf.subarray(parsed.size);
    const sh = encodeServerHello({ nonce: randomBytes(32), flags: encrypt ? FLAG_ENCRYPT : 0 });
    this.write(sh);
    if (parsed.hello.flags !== (encrypt ? FLAG_ENCRYPT : 0)) return false;
    const tr = transcript(ch, sh);
    const got = await this.read(32, 10_000);
    if (!got || !verifyProof(got, proof(secret, 'client', tr))) return false;
    this.write(proof(secret, 'server', tr));
    this.keys = sessionKeys(secret, false, tr, encrypt);
    this.hello = parsed.hello;
    return true;
  }

  /** The encoded frame (for tests that alter bytes before sending); advances the sequence number. */
  frame(type: number, payload: Buffer, lengthOverride?: bigint): Buffer {
    if (!this.keys) throw new Error('no session');
    return encodeFrame(this.keys, this.seq++, type, payload, lengthOverride);
  }

  sendFrame(type: number, payload: Buffer, lengthOverride?: bigint) {
    this.write(this.frame(type, payload, lengthOverride));
  }

  /** The next frame, or undefined when the link closed. Throws when it fails its integrity check. */
  async readFrame(timeoutMs = 24 * 3600_000): Promise<{ type: number; payload: Buffer } | undefined> {
    if (!this.keys) throw new Error('no session');
    const hdr = await this.read(12, timeoutMs);
    if (!hdr) return undefined;
    const len = Number(hdr.readBigUInt64LE(4));
    const rest = await this.read(len + MAC_LEN, timeoutMs);
    if (!rest) return undefined;
    const f = decodeFrame(this.keys, this.recvSeq++, Buffer.concat([hdr, rest]));
    return f && { type: f.type, payload: f.payload };
  }

  close() {
    this.sock.destroy();
  }
}
