// An author's pointer as the gateway serves it (GET /pointer/<author>?page=p, docs/protocol.md §7
// and §9), checked in the browser so the gateway is trusted for nothing: the item's key is the
// bridge's, its salt the one asked for, its ed25519 signature verifies over (salt, seq, v) as
// BEP-44 signs them, and v decodes as an author page. WebCrypto's Ed25519 where the browser has it,
// @noble/curves otherwise.
import bencode from 'bencode';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

export const MAX_V_BYTES = 1000;
export const MAX_PAGES = 16;

/** Why a pointer is not believed; shown to the user as is. */
export class PointerError extends Error {
  override name = 'PointerError';
}

export interface ServedItem {
  k: string;
  salt: string;
  seq: number;
  v: string;
  sig: string;
}

export interface AuthorPointer {
  seq: number;
  /** Infohashes (40 hex), newest first, over all pages. */
  infoHashes: string[];
  /** Bundles the pointer says hold the author's events (v.n). */
  n: number;
  pages: number;
  /** Which implementation checked the signature. */
  verifier: 'WebCrypto Ed25519' | '@noble/curves ed25519';
  /** The pointer lists fewer infohashes than n (pages missing or short). */
  incomplete: boolean;
}

const enc = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** BEP-44's signed bytes: `4:salt<len>:<salt>3:seqi<seq>e1:v<v>` (salt omitted when empty). */
export function signedBytes(salt: Uint8Array, seq: number, v: Uint8Array): Uint8Array {
  const head = salt.length ? [enc.encode(`4:salt${salt.length}:`), salt] : [];
  return concat([...head, enc.encode(`3:seqi${seq}e1:v`), v]);
}

let webCryptoEd25519: boolean | null = null;

/** Verifies with WebCrypto when it knows Ed25519 (Chromium 137+, Firefox 129+, Safari 17+). */
export async function verifyEd25519(
  key: Uint8Array,
  msg: Uint8Array,
  sig: Uint8Array,
): Promise<{ ok: boolean; verifier: AuthorPointer['verifier'] }> {
  if (webCryptoEd25519 !== false && globalThis.crypto?.subtle) {
    try {
      const k = await crypto.subtle.importKey('raw', key as BufferSource, { name: 'Ed25519' }, false, ['verify']);
      webCryptoEd25519 = true;
      return {
        ok: await crypto.subtle.verify({ name: 'Ed25519' }, k, sig as BufferSource, msg as BufferSource),
        verifier: 'WebCrypto Ed25519',
      };
    } catch (err) {
      // A browser without Ed25519 throws NotSupportedError; a bad key throws DataError.
      if ((err as Error).name !== 'NotSupportedError') return { ok: false, verifier: 'WebCrypto Ed25519' };
      webCryptoEd25519 = false;
    }
  }
  let ok = false;
  try {
    ok = ed25519.verify(sig, msg, key);
  } catch {
    ok = false;
  }
  return { ok, verifier: '@noble/curves ed25519' };
}

function hex(s: unknown, bytes: number, what: string): Uint8Array {
  if (typeof s !== 'string' || s.length !== bytes * 2 || !/^[0-9a-f]+$/.test(s))
    throw new PointerError(`${what} is not ${bytes * 2} lowercase hex characters`);
  return hexToBytes(s);
}

export function authorSalt(author: string, page: number): Uint8Array {
  const pk = hexToBytes(author);
  return page === 0 ? pk : concat([pk, Uint8Array.of(page)]);
}

interface Page {
  ih?: Uint8Array;
  b: Uint8Array;
  n: number;
  pg: number;
}

/** Checks one served item against the bridge key and the salt asked for; returns its page. */
export async function checkItem(
  body: unknown,
  bridgeKey: string,
  salt: Uint8Array,
): Promise<{ page: Page; seq: number; verifier: AuthorPointer['verifier'] }> {
  if (!body || typeof body !== 'object') throw new PointerError('the pointer is not a JSON object');
  const item = body as Partial<ServedItem>;
  const k = hex(item.k, 32, 'k');
  if (item.k !== bridgeKey)
    throw new PointerError(`the pointer is signed by key ${item.k!.slice(0, 16)}…, not by this bridge (${bridgeKey.slice(0, 16)}…)`);
  const servedSalt = typeof item.salt === 'string' && /^[0-9a-f]*$/.test(item.salt) ? item.salt : null;
  if (servedSalt !== bytesToHex(salt)) throw new PointerError('the pointer is for another salt than the author asked for');
  if (!Number.isSafeInteger(item.seq) || item.seq! < 0) throw new PointerError('seq is not a non-negative integer');
  const sig = hex(item.sig, 64, 'sig');
  if (typeof item.v !== 'string') throw new PointerError('v is missing');
  const v = fromBase64(item.v);
  if (v.length > MAX_V_BYTES) throw new PointerError(`v is ${v.length} bytes bencoded, over the ${MAX_V_BYTES} BEP-44 allows`);
  const { ok, verifier } = await verifyEd25519(k, signedBytes(salt, item.seq!, v), sig);
  if (!ok)
    throw new PointerError(
      `the pointer's ed25519 signature does not verify (${verifier}): the gateway or the DHT served a forged or altered item`,
    );
  let d: Record<string, unknown>;
  try {
    d = bencode.decode(v) as Record<string, unknown>;
  } catch {
    throw new PointerError('v is not bencoded');
  }
  const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;
  if (!d || typeof d !== 'object' || d.v !== 1) throw new PointerError('v is not an author page of format 1');
  if (!isBytes(d.b) || d.b.length % 20 !== 0) throw new PointerError('v.b is not a list of 20-byte infohashes');
  if (d.ih !== undefined && !(isBytes(d.ih) && d.ih.length === 20)) throw new PointerError('v.ih is not a 20-byte infohash');
  if (!Number.isSafeInteger(d.n) || (d.n as number) < 0) throw new PointerError('v.n is not a count');
  if (!Number.isSafeInteger(d.pg) || (d.pg as number) < 1 || (d.pg as number) > MAX_PAGES)
    throw new PointerError(`v.pg is not 1 to ${MAX_PAGES}`);
  return { page: { ih: d.ih as Uint8Array | undefined, b: d.b, n: d.n as number, pg: d.pg as number }, seq: item.seq!, verifier };
}

function pageHashes(p: Page): string[] {
  const out: string[] = [];
  if (p.ih) out.push(bytesToHex(p.ih));
  for (let i = 0; i < p.b.length; i += 20) out.push(bytesToHex(p.b.subarray(i, i + 20)));
  return out;
}

/** Fetches and checks page 0 and the further pages it announces. */
export async function fetchPointer(base: string, bridgeKey: string, author: string, signal?: AbortSignal): Promise<AuthorPointer> {
  const get = async (page: number) => {
    const res = await fetch(`${base}/pointer/${author}${page ? `?page=${page}` : ''}`, { signal });
    if (res.status === 404)
      throw new PointerError(
        page ? `page ${page} of the pointer is missing` : 'this bridge has no pointer for that author (nothing archived)',
      );
    if (!res.ok) throw new PointerError(`the gateway answered ${res.status} for the pointer: ${(await res.text()).slice(0, 200)}`);
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new PointerError('the pointer is not JSON');
    }
    return checkItem(body, bridgeKey, authorSalt(author, page));
  };
  const first = await get(0);
  const infoHashes = pageHashes(first.page);
  let incomplete = false;
  for (let p = 1; p < first.page.pg; p++) {
    try {
      const more = await get(p);
      if (more.page.n !== first.page.n || more.page.pg !== first.page.pg) incomplete = true;
      infoHashes.push(...pageHashes(more.page));
    } catch (err) {
      if (!(err instanceof PointerError)) throw err;
      incomplete = true;
    }
  }
  const unique = [...new Set(infoHashes)];
  if (unique.length < first.page.n) incomplete = true;
  return { seq: first.seq, infoHashes: unique, n: first.page.n, pages: first.page.pg, verifier: first.verifier, incomplete };
}
