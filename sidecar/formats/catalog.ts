// The bridge catalog (docs/protocol.md §11): the list of a bridge's active bundles and which authors
// each holds, as one torrent whose infohash the bridge item names (`c`). Everything here is a pure
// function of the catalog's entries, so the same index gives the same bytes and the same infohash
// on any machine. Encoding, the torrent, and a strict decoder for what comes off the network (a
// line that is not exactly what the encoder would write is refused) live here; building it from
// the index is sidecar/bundles/catalog.ts, reading it is scripts/reader/catalog-read.ts.
import { createHash } from 'node:crypto';
import { encodeBundleInfo } from './bundle-info.js';

export const CATALOG_VERSION = 1;

/** One active bundle as the catalog lists it. */
export interface CatalogBundle {
  /** Infohash, 40 lowercase hex. */
  ih: string;
  /** 0 window … 4 year (§6). */
  level: number;
  /** The UTC period whose arrivals it holds, unix seconds: [start, end). */
  start: number;
  end: number;
  /** Events in it (the last number of its torrent name). */
  events: number;
  /** Its files' bytes in all. */
  bytes: number;
  /** The authors it has a file for, ascending (its torrent's file list). */
  authors: string[];
}

export interface Catalog {
  /** The bridge's public key, 64 lowercase hex. */
  bridge: string;
  /** Ascending infohash. */
  bundles: CatalogBundle[];
}

export interface CatalogHeader {
  v: number;
  bridge: string;
  bundles: number;
  authors: number;
  events: number;
  bytes: number;
}

export class BadCatalog extends Error {}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX40 = /^[0-9a-f]{40}$/;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function headerOf(c: Catalog): CatalogHeader {
  const authors = new Set<string>();
  let events = 0;
  let bytes = 0;
  for (const b of c.bundles) {
    for (const a of b.authors) authors.add(a);
    events += b.events;
    bytes += b.bytes;
  }
  return { v: CATALOG_VERSION, bridge: c.bridge, bundles: c.bundles.length, authors: authors.size, events, bytes };
}

function headerLine(h: CatalogHeader): string {
  return `{"v":${h.v},"bridge":"${h.bridge}","bundles":${h.bundles},"authors":${h.authors},"events":${h.events},"bytes":${h.bytes}}`;
}

function bundleLine(b: CatalogBundle): string {
  const authors = b.authors.length === 0 ? '' : `"${b.authors.join('","')}"`;
  return `{"ih":"${b.ih}","level":${b.level},"start":${b.start},"end":${b.end},"events":${b.events},"bytes":${b.bytes},"authors":[${authors}]}`;
}

function checkBundle(b: CatalogBundle): void {
  if (!HEX40.test(b.ih)) throw new BadCatalog(`bundle infohash ${JSON.stringify(b.ih)} is not 40 lowercase hex`);
  if (!Number.isInteger(b.level) || b.level < 0 || b.level > 4) throw new BadCatalog(`bundle ${b.ih}: level ${b.level} is not 0…4`);
  if (!isCount(b.start) || !isCount(b.end) || b.end <= b.start) throw new BadCatalog(`bundle ${b.ih}: bad period`);
  if (!isCount(b.events) || !isCount(b.bytes) || b.events < 1 || b.bytes < 1) throw new BadCatalog(`bundle ${b.ih}: bad counts`);
  if (b.authors.length === 0) throw new BadCatalog(`bundle ${b.ih}: no authors`);
  for (let i = 0; i < b.authors.length; i++) {
    if (!HEX64.test(b.authors[i]!))
      throw new BadCatalog(`bundle ${b.ih}: author ${JSON.stringify(b.authors[i]).slice(0, 80)} is not 64 lowercase hex`);
    if (i > 0 && b.authors[i - 1]! >= b.authors[i]!) throw new BadCatalog(`bundle ${b.ih}: authors not ascending`);
  }
}

/** The catalog file's bytes: a header line, then one line per bundle (ascending infohash). */
export function encodeCatalog(c: Catalog): Buffer {
  if (!HEX64.test(c.bridge)) throw new BadCatalog('bridge key is not 64 lowercase hex');
  const bundles = [...c.bundles].sort((a, b) => (a.ih < b.ih ? -1 : a.ih > b.ih ? 1 : 0));
  const parts: string[] = [headerLine(headerOf({ bridge: c.bridge, bundles })), '\n'];
  for (let i = 0; i < bundles.length; i++) {
    const b = bundles[i]!;
    checkBundle(b);
    if (i > 0 && bundles[i - 1]!.ih === b.ih) throw new BadCatalog(`bundle ${b.ih} listed twice`);
    parts.push(bundleLine(b), '\n');
  }
  return Buffer.from(parts.join(''), 'utf8');
}

export interface DecodeLimits {
  /** Bundles accepted at most (a hostile catalog may list millions). */
  maxBundles: number;
  /** Author entries accepted at most, over all bundles. */
  maxAuthorEntries: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxBundles: 100_000, maxAuthorEntries: 50_000_000 };

/**
 * Decodes a catalog file for bridge `bridge` (hex). Throws BadCatalog unless every line is
 * exactly what encodeCatalog writes, the header's counts match the lines, and it is within limits.
 */
export function decodeCatalog(bytes: Uint8Array, bridge: string, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Catalog {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0 || buf[buf.length - 1] !== 0x0a) throw new BadCatalog('catalog does not end with a newline');
  let at = buf.indexOf(0x0a);
  const head = parseLine(buf.subarray(0, at), 'header');
  const h = head as Partial<CatalogHeader>;
  if (h.v !== CATALOG_VERSION) throw new BadCatalog(`unknown catalog version ${String(h.v)}`);
  if (h.bridge !== bridge) throw new BadCatalog(`catalog is for bridge ${String(h.bridge).slice(0, 64)}, not ${bridge}`);
  if (!isCount(h.bundles) || !isCount(h.authors) || !isCount(h.events) || !isCount(h.bytes)) throw new BadCatalog('bad header counts');
  if (h.bundles > limits.maxBundles) throw new BadCatalog(`catalog lists ${h.bundles} bundles (limit ${limits.maxBundles})`);
  const bundles: CatalogBundle[] = [];
  let entries = 0;
  at++;
  while (at < buf.length) {
    const end = buf.indexOf(0x0a, at);
    if (bundles.length >= h.bundles) throw new BadCatalog('more bundle lines than the header says');
    const v = parseLine(buf.subarray(at, end), `line ${bundles.length + 2}`) as Record<string, unknown>;
    if (!Array.isArray(v.authors) || !v.authors.every((a) => typeof a === 'string'))
      throw new BadCatalog(`line ${bundles.length + 2}: authors is not a list of strings`);
    entries += v.authors.length;
    if (entries > limits.maxAuthorEntries) throw new BadCatalog(`catalog lists more than ${limits.maxAuthorEntries} author entries`);
    const b: CatalogBundle = {
      ih: v.ih as string,
      level: v.level as number,
      start: v.start as number,
      end: v.end as number,
      events: v.events as number,
      bytes: v.bytes as number,
      authors: v.authors as string[],
    };
    try {
      checkBundle(b);
    } catch (err) {
      throw new BadCatalog(`line ${bundles.length + 2}: ${(err as Error).message}`);
    }
    if (bundleLine(b) !== buf.toString('utf8', at, end)) throw new BadCatalog(`line ${bundles.length + 2} is not in canonical form`);
    const prev = bundles[bundles.length - 1];
    if (prev && prev.ih >= b.ih) throw new BadCatalog(`line ${bundles.length + 2}: bundles not in ascending infohash order`);
    bundles.push(b);
    at = end + 1;
  }
  const c: Catalog = { bridge, bundles };
  if (headerLine(headerOf(c)) !== buf.toString('utf8', 0, buf.indexOf(0x0a)))
    throw new BadCatalog('header does not match the bundles listed (or is not in canonical form)');
  return c;
}

function parseLine(line: Buffer, what: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    throw new BadCatalog(`${what} is not JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new BadCatalog(`${what} is not an object`);
  return v;
}

/** Its header's counts (what the CLI prints). */
export function catalogHeader(c: Catalog): CatalogHeader {
  return headerOf(c);
}

export const CATALOG_MIN_PIECE = 16 * 1024;
const CATALOG_MAX_PIECE = 4 * 1024 * 1024;

/** The catalog torrent's name: `nostr-bt-catalog-<bundles>-<authors>`. */
export function catalogName(c: Catalog): string {
  const h = headerOf(c);
  return `nostr-bt-catalog-${h.bundles}-${h.authors}`;
}

/**
 * The catalog as a torrent: the info dict of §6 (files, name, piece length, pieces) with one file,
 * `<bridge key hex>.jsonl`, holding the catalog's bytes. Readers fetch it as they fetch an author's
 * file, with the same metadata checks.
 */
export function catalogTorrent(c: Catalog): {
  data: Buffer;
  info: Buffer;
  torrent: Buffer;
  infoHash: string;
  name: string;
  pieceLength: number;
} {
  const data = encodeCatalog(c);
  let pieceLength = CATALOG_MIN_PIECE;
  while (pieceLength < CATALOG_MAX_PIECE && pieceLength * 2048 < data.length) pieceLength *= 2;
  const pieces = Buffer.alloc(Math.ceil(data.length / pieceLength) * 20);
  for (let i = 0, p = 0; i < data.length; i += pieceLength, p += 20)
    createHash('sha1')
      .update(data.subarray(i, i + pieceLength))
      .digest()
      .copy(pieces, p);
  const name = catalogName(c);
  const info = encodeBundleInfo({ files: [{ pubkey: c.bridge, length: data.length }], name, pieceLength, pieces });
  const torrent = Buffer.concat([Buffer.from('d4:info'), info, Buffer.from('e')]);
  return { data, info, torrent, infoHash: createHash('sha1').update(info).digest('hex'), name, pieceLength };
}

/** What a bundle's torrent says of itself, to check a catalog entry against. */
export interface BundleMetadata {
  name: string;
  files: { name: string; length: number }[];
}

/** Why a catalog entry does not match its bundle's metadata, or null when it does. */
export function catalogMismatch(b: CatalogBundle, meta: BundleMetadata): string | null {
  const names = meta.files.map((f) => f.name);
  if (names.length !== b.authors.length) return `the bundle has ${names.length} files, the catalog lists ${b.authors.length} authors`;
  for (let i = 0; i < names.length; i++)
    if (names[i] !== `${b.authors[i]}.jsonl`)
      return `file ${i} is ${JSON.stringify(names[i]).slice(0, 80)}, the catalog says ${b.authors[i]}.jsonl`;
  const bytes = meta.files.reduce((s, f) => s + f.length, 0);
  if (bytes !== b.bytes) return `the bundle holds ${bytes} bytes, the catalog says ${b.bytes}`;
  const m = /^nostr-bt-\d+-\d+-(\d+)$/.exec(meta.name);
  if (!m || Number(m[1]) !== b.events)
    return `the bundle's name ${JSON.stringify(meta.name).slice(0, 80)} does not end in the catalog's ${b.events} events`;
  return null;
}
