// A raw stage-link client for robustness tests: speaks the engine's handshake and framing.
import { connect, type Socket } from 'node:net';
import { MAGIC, encodeFrame, helloBytes, proof, sessionKeys, verifyProof, type SessionKeys } from '../../src/engine/stage-protocol.js';

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  seq = 0n;
  keys?: SessionKeys;

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
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
    this.sock.write(b);
  }

  /** Client side of the handshake with this secret; true when the server accepted our proof. */
  async handshake(secret: string): Promise<boolean> {
    const mine = helloBytes();
    this.write(mine.bytes);
    const theirs = await this.read(40);
    if (!theirs || !theirs.subarray(0, 8).equals(MAGIC)) return false;
    const serverNonce = theirs.subarray(8, 40);
    this.write(proof(secret, 'client', mine.nonce, serverNonce));
    const got = await this.read(32);
    if (!got || !verifyProof(got, proof(secret, 'server', mine.nonce, serverNonce))) return false;
    this.keys = sessionKeys(secret, true, mine.nonce, serverNonce);
    // the server closes right after a failed proof; give it a moment to show
    return !(await this.closedWithin(200));
  }

  sendFrame(type: number, payload: Buffer, lengthOverride?: bigint) {
    if (!this.keys) throw new Error('no session');
    this.write(encodeFrame(this.keys.send, this.seq++, type, payload, lengthOverride));
  }

  close() {
    this.sock.destroy();
  }
}
