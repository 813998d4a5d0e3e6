// Bridge discovery on the wire (docs/protocol.md §10): the well-known infohash bridges announce
// with BEP-5, and the beacon exchange a reader has with each announced peer: a BEP-3 handshake
// for that infohash, then BEP-10 extended handshakes. The reader's carries a fresh nonce; the
// bridge's carries its ed25519 key and a signature over that nonce, so an answer cannot be
// replayed from another connection. Shared by the sidecar's beacon and the reader.
import { createHash } from 'node:crypto';
import bencode from 'bencode';
import { verifyEd25519 } from './ed25519.js';

/** sha1("nostr-bt:bridges:v1"): the infohash every bridge announces. */
export const DISCOVERY_INFOHASH: Buffer = createHash('sha1').update('nostr-bt:bridges:v1').digest();
/** The BEP-10 extension name both sides list in `m`. */
export const BEACON_EXTENSION = 'nostr_bt';
export const BEACON_NONCE_BYTES = 32;
/** Domain separation for the signed statement. */
export const BEACON_SIGN_PREFIX = Buffer.from('nostr-bt:beacon:v1', 'ascii');
/** Largest message either side accepts (length prefix included): a beacon answer is ~250 bytes. */
export const BEACON_MAX_MESSAGE_BYTES = 2048;
/** Longest gateway URL a beacon may carry. */
export const BEACON_MAX_URL_BYTES = 512;

const PSTR = Buffer.from('BitTorrent protocol', 'ascii');
export const HANDSHAKE_BYTES = 68;
const MSG_EXTENDED = 20;

export function encodeHandshake(infoHash: Uint8Array, peerId: Uint8Array): Buffer {
  if (infoHash.length !== 20 || peerId.length !== 20) throw new Error('infohash and peer id are 20 bytes');
  const reserved = Buffer.alloc(8);
  reserved[5] = 0x10; // BEP-10: extension protocol
  return Buffer.concat([Buffer.from([19]), PSTR, reserved, infoHash, peerId]);
}

export interface Handshake {
  infoHash: Buffer;
  peerId: Buffer;
  extended: boolean;
}

/** The 68 bytes of a BEP-3 handshake, or null when they are not one. */
export function parseHandshake(b: Buffer): Handshake | null {
  if (b.length < HANDSHAKE_BYTES || b[0] !== 19 || !b.subarray(1, 20).equals(PSTR)) return null;
  return { infoHash: Buffer.from(b.subarray(28, 48)), peerId: Buffer.from(b.subarray(48, 68)), extended: (b[25]! & 0x10) !== 0 };
}

/** A BEP-10 extended handshake message (length prefix, id 20, extended id 0, bencoded dict). */
export function encodeExtendedHandshake(dict: Record<string, unknown>): Buffer {
  const body = Buffer.from(bencode.encode(dict));
  const head = Buffer.alloc(6);
  head.writeUInt32BE(body.length + 2, 0);
  head[4] = MSG_EXTENDED;
  head[5] = 0;
  return Buffer.concat([head, body]);
}

export class BeaconFrameError extends Error {
  override name = 'BeaconFrameError';
}

/**
 * Splits a peer's bytes into the handshake and then length-prefixed messages, refusing more
 * than BEACON_MAX_MESSAGE_BYTES for any one of them. `next()` gives the next complete item.
 */
export class BeaconFrames {
  private buf: Buffer = Buffer.alloc(0);
  private gotHandshake = false;

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length > BEACON_MAX_MESSAGE_BYTES + HANDSHAKE_BYTES) throw new BeaconFrameError('more bytes than a beacon exchange needs');
  }

  next(): { handshake: Handshake } | { extended: { id: number; payload: Buffer } } | { other: number } | null {
    if (!this.gotHandshake) {
      if (this.buf.length < 1) return null;
      if (this.buf[0] !== 19) throw new BeaconFrameError('not a BitTorrent handshake');
      if (this.buf.length < HANDSHAKE_BYTES) return null;
      const hs = parseHandshake(this.buf);
      if (!hs) throw new BeaconFrameError('not a BitTorrent handshake');
      this.buf = this.buf.subarray(HANDSHAKE_BYTES);
      this.gotHandshake = true;
      return { handshake: hs };
    }
    if (this.buf.length < 4) return null;
    const len = this.buf.readUInt32BE(0);
    if (len + 4 > BEACON_MAX_MESSAGE_BYTES) throw new BeaconFrameError(`a ${len}-byte message (at most ${BEACON_MAX_MESSAGE_BYTES - 4})`);
    if (this.buf.length < 4 + len) return null;
    const msg = this.buf.subarray(4, 4 + len);
    this.buf = this.buf.subarray(4 + len);
    if (len === 0) return { other: -1 }; // keep-alive
    if (msg[0] === MSG_EXTENDED && len >= 2) return { extended: { id: msg[1]!, payload: Buffer.from(msg.subarray(2)) } };
    return { other: msg[0]! };
  }
}

function decodeDict(payload: Buffer): Record<string, unknown> | null {
  try {
    const d = bencode.decode(payload) as unknown;
    return d && typeof d === 'object' && !Array.isArray(d) && !(d instanceof Uint8Array) ? (d as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The reader's extended handshake: its nonce. */
export function readerHello(nonce: Uint8Array): Record<string, unknown> {
  return { m: { [BEACON_EXTENSION]: 1 }, v: 'nostr-bt reader', nbt_nonce: Buffer.from(nonce) };
}

/** The nonce out of a reader's extended handshake payload, or null. */
export function parseReaderHello(payload: Buffer): Buffer | null {
  const d = decodeDict(payload);
  const n = d?.['nbt_nonce'];
  return n instanceof Uint8Array && n.length === BEACON_NONCE_BYTES ? Buffer.from(n) : null;
}

/** What the bridge signs: prefix ‖ infohash D ‖ nonce ‖ bencode({"g": gateway} or {}). */
export function beaconStatement(nonce: Uint8Array, gateway: string | undefined): Buffer {
  return Buffer.concat([BEACON_SIGN_PREFIX, DISCOVERY_INFOHASH, nonce, Buffer.from(bencode.encode(gateway ? { g: gateway } : {}))]);
}

/** The bridge's extended handshake in answer to `nonce`. */
export function beaconAnswer(
  publicKey: Uint8Array,
  sign: (m: Uint8Array) => Uint8Array,
  nonce: Uint8Array,
  gateway?: string,
): Record<string, unknown> {
  const nbt: Record<string, unknown> = { k: Buffer.from(publicKey), sig: Buffer.from(sign(beaconStatement(nonce, gateway))) };
  if (gateway) nbt['g'] = gateway;
  return { m: { [BEACON_EXTENSION]: 1 }, v: 'nostr-bt bridge', nbt };
}

export type BeaconRejection = 'not-a-dict' | 'no-beacon' | 'bad-key' | 'bad-gateway' | 'bad-signature';

/** Checks a bridge's extended handshake against the nonce this reader sent. */
export function verifyBeaconAnswer(
  payload: Buffer,
  nonce: Uint8Array,
): { ok: true; key: Buffer; gateway?: string } | { ok: false; reason: BeaconRejection } {
  const d = decodeDict(payload);
  if (!d) return { ok: false, reason: 'not-a-dict' };
  const nbt = d['nbt'];
  if (!nbt || typeof nbt !== 'object' || Array.isArray(nbt) || nbt instanceof Uint8Array) return { ok: false, reason: 'no-beacon' };
  const { k, sig, g } = nbt as Record<string, unknown>;
  if (!(k instanceof Uint8Array) || k.length !== 32) return { ok: false, reason: 'bad-key' };
  let gateway: string | undefined;
  if (g !== undefined) {
    if (!(g instanceof Uint8Array) || g.length > BEACON_MAX_URL_BYTES) return { ok: false, reason: 'bad-gateway' };
    gateway = Buffer.from(g).toString('utf8');
    if (!isHttpUrl(gateway)) return { ok: false, reason: 'bad-gateway' };
  }
  if (!verifyEd25519(sig, beaconStatement(nonce, gateway), k)) return { ok: false, reason: 'bad-signature' };
  return { ok: true, key: Buffer.from(k), ...(gateway ? { gateway } : {}) };
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
