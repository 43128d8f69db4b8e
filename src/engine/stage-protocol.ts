// The engine's stage-link wire protocol (src/llama-stage-net.cpp in the patches), as a pure codec:
// a handshake that proves the shared secret both ways, then frames [u32 type][u64 len][payload][mac16]
// with mac = HMAC-SHA256(session key, seq | type | len | payload) truncated to 16 bytes.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const MAGIC = Buffer.from('LRELAY01', 'latin1');
export const MAC_LEN = 16;

export const FrameType = {
  hello: 1,
  decode: 2,
  result: 3,
  memory: 4,
  error: 5,
  ping: 6,
} as const;

export interface SessionKeys {
  send: Buffer;
  recv: Buffer;
}

export function helloBytes(nonce: Buffer = randomBytes(32)): { bytes: Buffer; nonce: Buffer } {
  return { bytes: Buffer.concat([MAGIC, nonce]), nonce };
}

function hmac(key: Buffer | string, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** The 32-byte proof one side sends after both hellos; role is the sender's. */
export function proof(secret: string, role: 'client' | 'server', clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return hmac(secret, Buffer.from(role), clientNonce, serverNonce);
}

export function sessionKeys(secret: string, isClient: boolean, clientNonce: Buffer, serverNonce: Buffer): SessionKeys {
  const c2s = hmac(secret, Buffer.from('key-c2s'), clientNonce, serverNonce);
  const s2c = hmac(secret, Buffer.from('key-s2c'), clientNonce, serverNonce);
  return isClient ? { send: c2s, recv: s2c } : { send: s2c, recv: c2s };
}

export function verifyProof(got: Buffer, want: Buffer): boolean {
  return got.length === want.length && timingSafeEqual(got, want);
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

/** Encode one frame with sequence number seq under key. */
export function encodeFrame(key: Buffer, seq: bigint, type: number, payload: Buffer, lengthOverride?: bigint): Buffer {
  const hdr = Buffer.alloc(12);
  hdr.writeUInt32LE(type, 0);
  hdr.writeBigUInt64LE(lengthOverride ?? BigInt(payload.length), 4);
  const mac = hmac(key, u64(seq), hdr, payload).subarray(0, MAC_LEN);
  return Buffer.concat([hdr, payload, mac]);
}

/** Decode one frame from the front of buf; undefined when incomplete. Throws on a bad MAC. */
export function decodeFrame(
  key: Buffer,
  seq: bigint,
  buf: Buffer,
  maxLen = 1 << 20,
): { type: number; payload: Buffer; size: number } | undefined {
  if (buf.length < 12) return undefined;
  const type = buf.readUInt32LE(0);
  const len = buf.readBigUInt64LE(4);
  if (len > BigInt(maxLen)) throw new Error(`frame of ${len} bytes exceeds the limit of ${maxLen}`);
  const n = Number(len);
  if (buf.length < 12 + n + MAC_LEN) return undefined;
  const payload = buf.subarray(12, 12 + n);
  const mac = buf.subarray(12 + n, 12 + n + MAC_LEN);
  const want = hmac(key, u64(seq), buf.subarray(0, 12), payload).subarray(0, MAC_LEN);
  if (!timingSafeEqual(mac, want)) throw new Error('frame failed its integrity check');
  return { type, payload: Buffer.from(payload), size: 12 + n + MAC_LEN };
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
