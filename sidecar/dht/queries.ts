// How the node answers incoming queries, where bittorrent-dht 11 falls short of BEP-5 / BEP-44
// (found with a hostile KRPC client and compared with libtorrent, test/dht-node-hardening.test.ts):
// - a query whose `id`, `target` or `info_hash` is not 20 bytes was answered as if it were
//   (a 5-byte get target got nodes and a token): now error 203, as libtorrent does; an unknown
//   method gets 204 (BEP-5) instead of silence, or, when it carries a 20-byte `target` or
//   `info_hash`, the closest nodes as for find_node (libtorrent's forward compatibility: BEP-51's
//   sample_infohashes and later extensions still find their way);
// - a put with a bad signature got silence: now 206 "invalid signature"; salt over 64 bytes:
//   207; a mutable put missing k, sig or seq, or with k/sig of the wrong length: 203;
// - BEP-44 seq: a put older than the stored item gets 302, one with the stored seq but another
//   value too; the same item again refreshes it (libtorrent answers it the same way); a get
//   naming a seq the stored item does not exceed gets the seq without the value (was ignored);
// - the node's own items: a replay of the bridge's older signed item was stored and then served
//   instead of the current one (nothing else on this node knew the current one). With
//   `ownItems`, the items the bridge signed count as held here: a put of the bridge's key older
//   than what the bridge published gets 302 (or 301 on a CAS against it), and a get never
//   returns an item of the bridge's key older than the one it published.
import bencode from 'bencode';
import type DHT from 'bittorrent-dht';
import { patchable, patchableObject } from './patch.js';
import { MAX_SALT_BYTES, MAX_V_BYTES } from '../formats/pointer-item.js';

// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).

export interface OwnItem {
  seq: number;
  v: unknown;
  sig: Uint8Array;
}

/** The items this node's owner (the bridge) has signed, by salt. */
export interface OwnItems {
  publicKey: Uint8Array;
  /** The newest item the bridge signed under this salt, or null. */
  current(salt: Buffer): OwnItem | null;
}

const KNOWN = new Set(['ping', 'find_node', 'get_peers', 'announce_peer', 'get', 'put']);
const TARGET_FIELD: Record<string, string> = { find_node: 'target', get_peers: 'info_hash', announce_peer: 'info_hash', get: 'target' };

const isBytes = (x: unknown): x is Buffer => Buffer.isBuffer(x);
const is20 = (x: unknown): x is Buffer => isBytes(x) && x.length === 20;
const isDict = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x) && !isBytes(x);
const isSeq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Buffers all the way down: k-rpc-socket's bencode 2 encodes a bare Uint8Array as a dict. */
function toBuffers(x: unknown): unknown {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  if (Array.isArray(x)) return x.map(toBuffers);
  if (isDict(x)) return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toBuffers(v)]));
  return x;
}

function encodedSize(v: unknown): number {
  try {
    return bencode.encode(v as never).length;
  } catch {
    return Infinity;
  }
}

/** BEP-44 signature payload; an empty salt counts as none (as libtorrent has it). */
function sigData(salt: Buffer | undefined, seq: number, v: unknown): Buffer {
  const ref: Record<string, unknown> = { seq, v };
  if (salt && salt.length > 0) ref['salt'] = salt;
  const enc = bencode.encode(ref as never);
  return Buffer.from(enc.subarray(1, enc.length - 1));
}

type Stored = { v: unknown; id: Buffer; k?: Buffer; salt?: Buffer; sig?: Buffer; seq?: number };
type OwnStored = Stored & { seq: number };

export function answerQueriesStrictly(dht: DHT, ownItems?: OwnItems): void {
  const d = dht as any;
  const onquery = patchable(d, '_onquery', 'bittorrent-dht DHT');
  const onfindnode = patchable(d, '_onfindnode', 'bittorrent-dht DHT');
  patchable(d, '_onput', 'bittorrent-dht DHT');
  patchable(d, '_onget', 'bittorrent-dht DHT');
  const validateToken = patchable(d, '_validateToken', 'bittorrent-dht DHT');
  const generateToken = patchable(d, '_generateToken', 'bittorrent-dht DHT');
  const hash = patchable(d, '_hash', 'bittorrent-dht DHT');
  const emit = patchable(d, 'emit', 'bittorrent-dht DHT');
  const values = patchableObject(d, '_values', 'bittorrent-dht DHT');
  patchable(values, 'get', 'bittorrent-dht DHT._values (lru)');
  patchable(values, 'set', 'bittorrent-dht DHT._values (lru)');
  const rpc = patchableObject(d, '_rpc', 'bittorrent-dht DHT');
  patchable(rpc, 'error', 'k-rpc RPC');
  patchable(rpc, 'response', 'k-rpc RPC');
  const kb = patchableObject(rpc, 'nodes', 'k-rpc RPC');
  patchable(kb, 'closest', 'k-bucket KBucket');
  const ownKey = ownItems ? Buffer.from(ownItems.publicKey) : null;

  const fail = (peer: any, query: any, code: number, message: string) => rpc.error(peer, query, [code, message]);

  /** The bridge's own current item for this key + salt (null: not the bridge's key, or none). */
  const ownCurrent = (k: Buffer | undefined, salt: Buffer | undefined): OwnStored | null => {
    if (!ownItems || !ownKey || !k || !ownKey.equals(k)) return null;
    const cur = ownItems.current(salt ?? Buffer.alloc(0));
    if (!cur) return null;
    return {
      v: toBuffers(cur.v),
      id: rpc.id,
      k,
      salt: salt && salt.length > 0 ? salt : undefined,
      sig: Buffer.from(cur.sig),
      seq: cur.seq,
    };
  };

  /** What this node holds for a target: the stored item, or the bridge's own newer one. */
  const held = (keyHex: string, k?: Buffer, salt?: Buffer): Stored | null => {
    const stored = (values.get(keyHex) as Stored | undefined) ?? null;
    const own = ownCurrent(k ?? stored?.k, salt ?? stored?.salt);
    if (own && (!stored || typeof stored.seq !== 'number' || stored.seq < own.seq)) return own;
    return stored;
  };

  d._onquery = function (query: any, peer: any) {
    const q = isBytes(query?.q) ? query.q.toString() : null;
    if (q === null) return; // not a query bittorrent-dht would answer either
    const a = query.a;
    if (!KNOWN.has(q)) {
      const target = isDict(a) ? (is20(a['target']) ? a['target'] : is20(a['info_hash']) ? a['info_hash'] : null) : null;
      if (!target || !is20(a['id'])) return fail(peer, query, 204, 'method unknown');
      return onfindnode.call(d, { ...query, a: { ...a, target } }, peer);
    }
    if (!isDict(a)) return fail(peer, query, 203, 'missing or malformed "a"');
    if (!is20(a['id'])) return fail(peer, query, 203, 'missing or malformed "id" (20 bytes)');
    const field = TARGET_FIELD[q];
    if (field && !is20(a[field])) return fail(peer, query, 203, `missing or malformed "${field}" (20 bytes)`);
    return onquery.call(this, query, peer);
  };

  d._onget = (query: any, peer: any) => {
    const host = peer.address || peer.host;
    const target: Buffer = query.a.target;
    const token = generateToken.call(d, host);
    const value = held(target.toString('hex'));
    emit.call(d, 'get', target, value ?? undefined);
    if (!value) return rpc.response(peer, query, { id: rpc.id, token }, kb.closest(target));
    // BEP-44: a get naming a seq only wants the item if it is newer (libtorrent answers the same).
    const asked = query.a.seq;
    if (value.sig && typeof value.seq === 'number' && isSeq(asked) && value.seq <= asked) {
      return rpc.response(peer, query, { id: rpc.id, token, seq: value.seq }, kb.closest(target));
    }
    const r: Record<string, unknown> = { id: rpc.id, token, v: value.v };
    if (value.sig) {
      r['sig'] = value.sig;
      r['k'] = value.k;
      if (typeof value.seq === 'number') r['seq'] = value.seq;
    }
    return rpc.response(peer, query, r);
  };

  // In libtorrent's order: arguments (203), size (205), salt (207), token (203), signature (206),
  // then the stored item (301, 302).
  d._onput = (query: any, peer: any) => {
    const host = peer.address || peer.host;
    const a = query.a as Record<string, unknown>;
    const { v, k, sig, seq, cas, salt, token } = a;
    if (!isBytes(token)) return fail(peer, query, 203, 'missing or malformed "token"');
    if (v === undefined) return fail(peer, query, 203, 'missing "v"');
    const mutable = k !== undefined || sig !== undefined || seq !== undefined;
    if (mutable) {
      if (!isBytes(k) || k.length !== 32) return fail(peer, query, 203, 'missing or malformed "k" (32 bytes)');
      if (!isBytes(sig) || sig.length !== 64) return fail(peer, query, 203, 'missing or malformed "sig" (64 bytes)');
      if (!isSeq(seq)) return fail(peer, query, 203, 'missing or malformed "seq"');
      if (cas !== undefined && !isSeq(cas)) return fail(peer, query, 203, 'malformed "cas"');
      if (salt !== undefined && !isBytes(salt)) return fail(peer, query, 203, 'malformed "salt"');
    }
    if (encodedSize(v) > MAX_V_BYTES) return fail(peer, query, 205, 'message (v field) too big');
    if (mutable && isBytes(salt) && salt.length > MAX_SALT_BYTES) return fail(peer, query, 207, 'salt too big');
    if (!validateToken.call(d, host, token)) return fail(peer, query, 203, 'invalid token');

    if (!mutable) {
      const key: Buffer = hash.call(d, bencode.encode(v as never));
      emit.call(d, 'put', key, v);
      values.set(key.toString('hex'), { v, id: a['id'] });
      return rpc.response(peer, query, { id: rpc.id });
    }
    const kb32 = k as Buffer;
    const saltB = isBytes(salt) && salt.length > 0 ? salt : undefined;
    const key: Buffer = hash.call(d, saltB ? Buffer.concat([kb32, saltB]) : kb32);
    const keyHex = key.toString('hex');
    const verify = d._verify as ((sig: Buffer, msg: Buffer, k: Buffer) => boolean) | null;
    if (!verify) return fail(peer, query, 400, 'verification not supported');
    if (!verify(sig as Buffer, sigData(saltB, seq as number, v), kb32)) return fail(peer, query, 206, 'invalid signature');
    const prev = held(keyHex, kb32, saltB);
    if (prev && typeof prev.seq === 'number') {
      if (cas !== undefined && prev.seq !== cas) return fail(peer, query, 301, 'CAS mismatch, re-read and try again');
      if ((seq as number) < prev.seq) return fail(peer, query, 302, 'sequence number less than current');
      // Same seq, another value: not newer, so not stored (BEP-44); the same item again refreshes it.
      if (seq === prev.seq && !prev.sig?.equals(sig as Buffer)) return fail(peer, query, 302, 'sequence number not newer than current');
    }
    emit.call(d, 'put', key, v);
    values.set(keyHex, { v, k: kb32, salt: saltB, sig, seq, id: a['id'] });
    return rpc.response(peer, query, { id: rpc.id });
  };
}
