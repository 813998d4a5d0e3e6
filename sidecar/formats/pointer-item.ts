// The BEP-44 items the bridge publishes (docs/protocol.md §7): per-author pointers to the bundles
// holding the author's events, and one item describing the bridge. Encoding, size limits and
// hostile-safe decoding live here; signing and putting live in publishing/publisher.ts.
import { createHash } from 'node:crypto';
import bencode from 'bencode';

export const FORMAT_VERSION = 1;
export const MAX_V_BYTES = 1000;
/** BEP-44's bound on a mutable item's salt, which storage nodes enforce (error 207). */
export const MAX_SALT_BYTES = 64;
export const MAX_PAGES = 16;
export const BRIDGE_SALT = Buffer.from('nostr-bt:bridge', 'ascii');

export interface AuthorPage {
  v: number;
  /** This page's first (on page 0: the newest) bundle infohash, 20 bytes; absent when n = 0. */
  ih?: Buffer;
  /** The page's further infohashes, 20 bytes each, newest first. */
  b: Buffer;
  /** Bundles holding the author's events, over all pages. */
  n: number;
  /** Pages in all. */
  pg: number;
  /** Page 0 only: the infohash of the author's media list torrent (docs/protocol.md §8), when the bridge holds media of theirs. */
  m?: Buffer;
}

/** Page 0 uses the author's 32-byte public key as salt; page p ≥ 1 appends one byte p. */
export function authorSalt(pubkeyHex: string, page = 0): Buffer {
  const pk = Buffer.from(pubkeyHex, 'hex');
  if (pk.length !== 32) throw new Error('author pubkey must be 32 bytes');
  return page === 0 ? pk : Buffer.concat([pk, Buffer.from([page])]);
}

export function targetOf(k: Uint8Array, salt: Uint8Array): Buffer {
  return createHash('sha1').update(k).update(salt).digest();
}

/** BEP-44 signature payload: bencode({salt, seq, v}) without the outer d…e. */
export function signedBytes(salt: Uint8Array, seq: number, v: unknown): Buffer {
  const enc = bencode.encode({ salt: Buffer.from(salt), seq, v });
  return Buffer.from(enc.subarray(1, enc.length - 1));
}

export function vSize(v: unknown): number {
  return bencode.encode(v).length;
}

/** How many infohashes fit one page (bencoded v ≤ 1000 bytes) for these counters (every page as if it carried `m`, when there is one). */
function pageCapacity(n: number, pg: number, withMedia: boolean): number {
  let k = 1;
  const probe = (count: number) =>
    vSize({
      v: FORMAT_VERSION,
      ih: Buffer.alloc(20),
      b: Buffer.alloc(20 * (count - 1)),
      n,
      pg,
      ...(withMedia ? { m: Buffer.alloc(20) } : {}),
    });
  while (probe(k + 1) <= MAX_V_BYTES) k++;
  return k;
}

/** Splits the author's infohashes (newest first) into pages; `mediaList` (40 hex) goes on page 0 as `m`. */
export function authorPages(infoHashesNewestFirst: string[], mediaList?: string): AuthorPage[] {
  const n = infoHashesNewestFirst.length;
  const m = mediaList !== undefined ? Buffer.from(mediaList, 'hex') : undefined;
  if (m !== undefined && m.length !== 20) throw new Error('a media list infohash is 20 bytes');
  if (n === 0) return [{ v: FORMAT_VERSION, b: Buffer.alloc(0), n: 0, pg: 1, ...(m ? { m } : {}) }];
  let pg = 1;
  let cap = pageCapacity(n, pg, m !== undefined);
  while (Math.ceil(n / cap) > pg) {
    pg = Math.ceil(n / cap);
    cap = pageCapacity(n, pg, m !== undefined);
  }
  if (pg > MAX_PAGES) {
    throw new Error(`author is in ${n} bundles: more than ${MAX_PAGES} pointer pages (${MAX_PAGES * cap}) can list`);
  }
  const pages: AuthorPage[] = [];
  for (let p = 0; p < pg; p++) {
    const slice = infoHashesNewestFirst.slice(p * cap, (p + 1) * cap).map((h) => Buffer.from(h, 'hex'));
    pages.push({ v: FORMAT_VERSION, ih: slice[0], b: Buffer.concat(slice.slice(1)), n, pg, ...(p === 0 && m ? { m } : {}) });
  }
  return pages;
}

export class BadItem extends Error {}

const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** Decodes an author page from a DHT value (any shape: it comes off the network). `mediaList`: its `m`, if any. */
export function decodeAuthorPage(v: unknown): { infoHashes: string[]; n: number; pg: number; mediaList?: string } {
  if (!v || typeof v !== 'object' || Array.isArray(v) || isBytes(v)) throw new BadItem('value is not a dict');
  const d = v as Record<string, unknown>;
  if (d.v !== FORMAT_VERSION) throw new BadItem(`unknown format version ${String(d.v)}`);
  if (!isCount(d.n) || !isCount(d.pg) || d.pg < 1 || d.pg > MAX_PAGES) throw new BadItem('bad n/pg');
  const hashes: string[] = [];
  if (d.ih !== undefined) {
    if (!isBytes(d.ih) || d.ih.length !== 20) throw new BadItem('ih is not 20 bytes');
    hashes.push(Buffer.from(d.ih).toString('hex'));
  }
  if (d.b !== undefined) {
    if (!isBytes(d.b) || d.b.length % 20 !== 0) throw new BadItem('b is not a list of 20-byte infohashes');
    for (let i = 0; i < d.b.length; i += 20) hashes.push(Buffer.from(d.b.subarray(i, i + 20)).toString('hex'));
  }
  if (hashes.length > d.n) throw new BadItem('more infohashes than n');
  if (d.m !== undefined && (!isBytes(d.m) || d.m.length !== 20)) throw new BadItem('m is not 20 bytes');
  return {
    infoHashes: hashes,
    n: d.n,
    pg: d.pg,
    ...(d.m !== undefined ? { mediaList: Buffer.from(d.m as Uint8Array).toString('hex') } : {}),
  };
}

export interface BridgeInfo {
  relayUrl: string;
  authors: number;
  events: number;
  bundles: number;
  newest: string | null;
  /** Infohash of the bridge's catalog (§11), when it has one. */
  catalog?: string | null;
  /** The bridge's gateway (`gateway.publicUrl`), whose `/torrent/` and `/webseed/` routes serve its bundles and catalog. */
  gateway?: string | null;
}

/** Longest gateway URL a bridge item carries (with `r` ≤ 512 bytes, the value stays within BEP-44's 1000). */
export const MAX_GATEWAY_BYTES = 256;

export function bridgeValue(info: BridgeInfo): Record<string, unknown> {
  const v: Record<string, unknown> = { v: FORMAT_VERSION, a: info.authors, e: info.events, bn: info.bundles };
  if (info.relayUrl) v.r = Buffer.from(info.relayUrl.slice(0, 512));
  if (info.newest) v.ih = Buffer.from(info.newest, 'hex');
  if (info.catalog) v.c = Buffer.from(info.catalog, 'hex');
  // A longer URL is left out rather than refusing the item: the gateway is a hint for mirrors.
  if (info.gateway && Buffer.byteLength(info.gateway) <= MAX_GATEWAY_BYTES) v.g = Buffer.from(info.gateway);
  if (vSize(v) > MAX_V_BYTES) throw new Error('bridge item too large (relayUrl too long?)');
  return v;
}

export function decodeBridgeValue(v: unknown): BridgeInfo {
  if (!v || typeof v !== 'object' || Array.isArray(v) || isBytes(v)) throw new BadItem('value is not a dict');
  const d = v as Record<string, unknown>;
  if (d.v !== FORMAT_VERSION) throw new BadItem(`unknown format version ${String(d.v)}`);
  if (!isCount(d.a) || !isCount(d.e) || !isCount(d.bn)) throw new BadItem('bad counters');
  if (d.r !== undefined && !isBytes(d.r)) throw new BadItem('r is not a string');
  if (d.ih !== undefined && (!isBytes(d.ih) || d.ih.length !== 20)) throw new BadItem('ih is not 20 bytes');
  if (d.c !== undefined && (!isBytes(d.c) || d.c.length !== 20)) throw new BadItem('c is not 20 bytes');
  if (d.g !== undefined && !isBytes(d.g)) throw new BadItem('g is not a string');
  return {
    relayUrl: d.r ? Buffer.from(d.r).toString('utf8') : '',
    authors: d.a,
    events: d.e,
    bundles: d.bn,
    newest: d.ih ? Buffer.from(d.ih as Uint8Array).toString('hex') : null,
    catalog: d.c ? Buffer.from(d.c as Uint8Array).toString('hex') : null,
    gateway: d.g ? gatewayUrl(Buffer.from(d.g as Uint8Array)) : null,
  };
}

/** `g` as a base URL: http(s), no credentials, query or fragment, at most MAX_GATEWAY_BYTES; anything else is ignored (null). */
function gatewayUrl(raw: Buffer): string | null {
  if (raw.length > MAX_GATEWAY_BYTES) return null;
  const text = raw.toString('utf8');
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return null;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) return null;
  return text.replace(/\/+$/, '');
}
