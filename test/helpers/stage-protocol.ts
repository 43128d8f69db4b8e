// Test helper: the engine's stage-link wire protocol (llama-stage-net.cpp and llama-stage-wire.h in
// patches/0001), as a pure codec for tests that talk to real ranks or relay between them. Its constants
// are checked against the C++ in the patches by test/unit/engine-facts.test.ts.
// Handshake: the client sends its hello (magic, nonce, mode, the rank and address it means to reach,
// the chain's session id), the server answers with its hello (magic, nonce, mode); the client proves
// the secret over the transcript hash of both hellos, and the server answers with its proof only after
// checking the client's. Frames: [u32 type][u64 len][payload][tag16]; encrypted links seal the payload
// with ChaCha20-Poly1305 (aad = the 12 header bytes, nonce = 4 zero bytes | u64 seq), unencrypted
// ones (--stage-no-encrypt) append HMAC-SHA256(key, seq | header | payload)[0:16].
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const MAGIC = Buffer.from('LRELAY02', 'latin1');
export const MAC_LEN = 16;
export const SESSION_ID_LEN = 16;
export const FLAG_ENCRYPT = 1;
const CLIENT_HELLO_FIXED = 8 + 32 + 4 + 4 + SESSION_ID_LEN + 2;
export const SERVER_HELLO_LEN = 8 + 32 + 4;

export const FrameType = {
  hello: 1,
  decode: 2,
  result: 3,
  memory: 4,
  error: 5,
  ping: 6,
  state: 7,
} as const;

export interface SessionKeys {
  send: Buffer;
  recv: Buffer;
  encrypt: boolean;
}

export interface ClientHello {
  nonce: Buffer;
  flags: number;
  /** The rank the client means to reach (the head's return link: 0). */
  rank: number;
  session: Buffer;
  addr: string;
}

export interface ServerHello {
  nonce: Buffer;
  flags: number;
}

export function encodeClientHello(h: ClientHello): Buffer {
  const addr = Buffer.from(h.addr.slice(0, 255), 'latin1');
  const b = Buffer.alloc(CLIENT_HELLO_FIXED + addr.length);
  MAGIC.copy(b, 0);
  h.nonce.copy(b, 8);
  b.writeUInt32LE(h.flags, 40);
  b.writeInt32LE(h.rank, 44);
  h.session.copy(b, 48);
  b.writeUInt16LE(addr.length, 64);
  addr.copy(b, CLIENT_HELLO_FIXED);
  return b;
}

/** Parses a client hello from the front of buf; undefined when incomplete; throws on a foreign protocol. */
export function decodeClientHello(buf: Buffer): { hello: ClientHello; size: number } | undefined {
  if (buf.length >= 8 && !buf.subarray(0, 8).equals(MAGIC)) throw new Error('not the llama-relay stage protocol (version 2)');
  if (buf.length < CLIENT_HELLO_FIXED) return undefined;
  const al = buf.readUInt16LE(64);
  if (al > 255) throw new Error('malformed hello');
  if (buf.length < CLIENT_HELLO_FIXED + al) return undefined;
  return {
    hello: {
      nonce: Buffer.from(buf.subarray(8, 40)),
      flags: buf.readUInt32LE(40),
      rank: buf.readInt32LE(44),
      session: Buffer.from(buf.subarray(48, 64)),
      addr: buf.subarray(CLIENT_HELLO_FIXED, CLIENT_HELLO_FIXED + al).toString('latin1'),
    },
    size: CLIENT_HELLO_FIXED + al,
  };
}

export function encodeServerHello(h: ServerHello): Buffer {
  const b = Buffer.alloc(SERVER_HELLO_LEN);
  MAGIC.copy(b, 0);
  h.nonce.copy(b, 8);
  b.writeUInt32LE(h.flags, 40);
  return b;
}

export function decodeServerHello(b: Buffer): ServerHello {
  if (b.length !== SERVER_HELLO_LEN || !b.subarray(0, 8).equals(MAGIC)) throw new Error('not the llama-relay stage protocol (version 2)');
  return { nonce: Buffer.from(b.subarray(8, 40)), flags: b.readUInt32LE(40) };
}

export function newClientHello(o: { encrypt: boolean; rank: number; session?: Buffer; addr: string }): ClientHello {
  return { nonce: randomBytes(32), flags: o.encrypt ? FLAG_ENCRYPT : 0, rank: o.rank, session: o.session ?? randomBytes(SESSION_ID_LEN), addr: o.addr };
}

/** SHA-256 over a label and both hellos as sent. */
export function transcript(clientHelloBytes: Buffer, serverHelloBytes: Buffer): Buffer {
  return createHash('sha256').update(Buffer.from('llama-relay stage v2\0', 'latin1')).update(clientHelloBytes).update(serverHelloBytes).digest();
}

function hmac(key: Buffer | string, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** The 32-byte proof one side sends; role is the sender's. */
export function proof(secret: string, role: 'client' | 'server', tr: Buffer): Buffer {
  return hmac(secret, Buffer.from(role), tr);
}

export function sessionKeys(secret: string, isClient: boolean, tr: Buffer, encrypt: boolean): SessionKeys {
  const c2s = hmac(secret, Buffer.from('key-c2s'), tr);
  const s2c = hmac(secret, Buffer.from('key-s2c'), tr);
  return isClient ? { send: c2s, recv: s2c, encrypt } : { send: s2c, recv: c2s, encrypt };
}

export function verifyProof(got: Buffer, want: Buffer): boolean {
  return got.length === want.length && timingSafeEqual(got, want);
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

export function frameNonce(seq: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(seq, 4);
  return n;
}

/** ChaCha20-Poly1305 (RFC 8439) through node's OpenSSL: ciphertext and tag. */
export function aeadSeal(key: Buffer, nonce: Buffer, aad: Buffer, plain: Buffer): { ct: Buffer; tag: Buffer } {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: plain.length });
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { ct, tag: c.getAuthTag() };
}

/** The plaintext, or undefined when the tag does not match. */
export function aeadOpen(key: Buffer, nonce: Buffer, aad: Buffer, ct: Buffer, tag: Buffer): Buffer | undefined {
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: ct.length });
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(ct), d.final()]);
  } catch {
    return undefined;
  }
}

/** Encode one frame with sequence number seq under the sending key. */
export function encodeFrame(keys: Pick<SessionKeys, 'send' | 'encrypt'>, seq: bigint, type: number, payload: Buffer, lengthOverride?: bigint): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt32LE(type, 0);
  hdr.writeBigUInt64LE(lengthOverride ?? BigInt(payload.length), 4);
  if (keys.encrypt) {
    const { ct, tag } = aeadSeal(keys.send, frameNonce(seq), hdr, payload);
    return Buffer.concat([hdr, ct, tag]);
  }
  const mac = hmac(keys.send, u64(seq), hdr, payload).subarray(0, MAC_LEN);
  return Buffer.concat([hdr, payload, mac]);
}

/** Decode one frame from the front of buf; undefined when incomplete. Throws on a bad tag or oversize. */
export function decodeFrame(
  keys: Pick<SessionKeys, 'recv' | 'encrypt'>,
  seq: bigint,
  buf: Buffer,
  maxLen = 1 << 30,
): { type: number; payload: Buffer; size: number } | undefined {
  if (buf.length < 12) return undefined;
  const type = buf.readUInt32LE(0);
  const len = buf.readBigUInt64LE(4);
  if (len > BigInt(maxLen)) throw new Error(`frame of ${len} bytes exceeds the limit of ${maxLen}`);
  const n = Number(len);
  if (buf.length < 12 + n + MAC_LEN) return undefined;
  const hdr = buf.subarray(0, 12);
  const body = buf.subarray(12, 12 + n);
  const tag = buf.subarray(12 + n, 12 + n + MAC_LEN);
  let payload: Buffer | undefined;
  if (keys.encrypt) {
    payload = aeadOpen(keys.recv, frameNonce(seq), hdr, body, tag);
  } else {
    const want = hmac(keys.recv, u64(seq), hdr, body).subarray(0, MAC_LEN);
    payload = timingSafeEqual(tag, want) ? Buffer.from(body) : undefined;
  }
  if (!payload) throw new Error('frame failed its integrity check');
  return { type, payload, size: 12 + n + MAC_LEN };
}

/** A rank descriptor line of a HELLO frame: "k=v;k=v;". */
export function parseDescriptor(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of line.split(';')) {
    const eq = item.indexOf('=');
    if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** DECODE metadata: no token ids (workers start from the hidden state). */
export interface DecodeMeta {
  nEmbd: number;
  flags: number;
  pos: number[];
  /** Seq ids of each token. */
  seqIds: number[][];
  output: boolean[];
}

export const META_ACK = 1;
/** DECODE metadata header: u32 n_tokens, n_embd, n_outputs, n_seq_ids, flags. */
export const META_HDR = 20;

export function encodeDecodeMeta(m: DecodeMeta): Buffer {
  const n = m.pos.length;
  const nSeqIds = m.seqIds.reduce((a, s) => a + s.length, 0);
  const nOut = m.output.filter(Boolean).length;
  const size = (META_HDR + 4 * (2 * n + nSeqIds) + n + 3) & ~3;
  const b = Buffer.alloc(size);
  let o = 0;
  for (const v of [n, m.nEmbd, nOut, nSeqIds, m.flags]) o = b.writeUInt32LE(v, o);
  for (const p of m.pos) o = b.writeInt32LE(p, o);
  for (const s of m.seqIds) o = b.writeInt32LE(s.length, o);
  for (const s of m.seqIds) for (const id of s) o = b.writeInt32LE(id, o);
  for (const x of m.output) o = b.writeUInt8(x ? 1 : 0, o);
  return b;
}

/** Parses a DECODE payload: metadata, then n_tokens x n_embd f32 rows, then the timing trailer. */
export function decodeDecodeFrame(p: Buffer): { meta: DecodeMeta; metaBytes: number; hidden: Buffer; trailer: Buffer } {
  if (p.length < META_HDR) throw new Error('DECODE frame too short');
  const n = p.readUInt32LE(0);
  const nEmbd = p.readUInt32LE(4);
  const nSeqIds = p.readUInt32LE(12);
  const flags = p.readUInt32LE(16);
  const metaBytes = (META_HDR + 4 * (2 * n + nSeqIds) + n + 3) & ~3;
  if (p.length < metaBytes + n * nEmbd * 4) throw new Error('DECODE frame shorter than its sizes');
  let o = META_HDR;
  const pos: number[] = [];
  for (let i = 0; i < n; i++, o += 4) pos.push(p.readInt32LE(o));
  const counts: number[] = [];
  for (let i = 0; i < n; i++, o += 4) counts.push(p.readInt32LE(o));
  const seqIds = counts.map((c) => {
    const ids: number[] = [];
    for (let k = 0; k < c; k++, o += 4) ids.push(p.readInt32LE(o));
    return ids;
  });
  const output: boolean[] = [];
  for (let i = 0; i < n; i++) output.push(p.readUInt8(o++) !== 0);
  const hiddenEnd = metaBytes + n * nEmbd * 4;
  return { meta: { nEmbd, flags, pos, seqIds, output }, metaBytes, hidden: p.subarray(metaBytes, hiddenEnd), trailer: p.subarray(hiddenEnd) };
}

/** A timing trailer with no records (u32 count = 0). */
export const emptyTrailer = (): Buffer => Buffer.alloc(4);

/** RESULT: u32 rows, u32 n_embd, rows x n_embd f32, trailer. */
export function encodeResult(rows: number, nEmbd: number, data: Buffer, trailer = emptyTrailer()): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(rows, 0);
  h.writeUInt32LE(nEmbd, 4);
  return Buffer.concat([h, data, trailer]);
}

export function decodeResult(p: Buffer): { rows: number; nEmbd: number; data: Buffer; trailer: Buffer } {
  const rows = p.readUInt32LE(0);
  const nEmbd = p.readUInt32LE(4);
  const end = 8 + rows * nEmbd * 4;
  return { rows, nEmbd, data: p.subarray(8, end), trailer: p.subarray(end) };
}

export const MemoryOp = { clear: 0, seqRm: 1, seqCp: 2, seqKeep: 3, seqAdd: 4, seqDiv: 5 } as const;

/** MEMORY: i32 op, a, b, c, d. */
export function encodeMemory(op: number, a = 0, b = 0, c = 0, d = 0): Buffer {
  const buf = Buffer.alloc(20);
  [op, a, b, c, d].forEach((v, i) => buf.writeInt32LE(v, 4 * i));
  return buf;
}

export function decodeMemory(p: Buffer): number[] {
  if (p.length !== 20) throw new Error('MEMORY frame of a wrong size');
  return [0, 1, 2, 3, 4].map((i) => p.readInt32LE(4 * i));
}

export const StateOp = { save: 0, restore: 1 } as const;

/** STATE: i32 op, i32 seq, u32 flags, u64 key (the hash of the head's state blob). */
export function encodeState(op: number, seq: number, flags: number, key: bigint): Buffer {
  const b = Buffer.alloc(20);
  b.writeInt32LE(op, 0);
  b.writeInt32LE(seq, 4);
  b.writeUInt32LE(flags, 8);
  b.writeBigUInt64LE(key, 12);
  return b;
}

export function decodeState(p: Buffer): { op: number; seq: number; flags: number; key: bigint } {
  if (p.length !== 20) throw new Error('STATE frame of a wrong size');
  return { op: p.readInt32LE(0), seq: p.readInt32LE(4), flags: p.readUInt32LE(8), key: p.readBigUInt64LE(12) };
}
