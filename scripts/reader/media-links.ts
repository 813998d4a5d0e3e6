// Where media can be had, without the swarm: a magnet's infohash and web seeds, http(s) URLs, and
// a gateway's blob torrent (docs/protocol.md §8). Apart from the fetcher so the library's
// declarations reach no module that needs the DHT's or WebTorrent's types.
import { InputError } from './keys.js';

/** The infohash a magnet link names, and its ws= web seeds. */
export function parseMagnet(uri: string): { infoHash: string; webSeeds: string[] } {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new InputError(`not a magnet link: ${JSON.stringify(uri.slice(0, 200))}`);
  }
  if (u.protocol !== 'magnet:') throw new InputError(`not a magnet link: ${JSON.stringify(uri.slice(0, 200))}`);
  const xt = u.searchParams
    .getAll('xt')
    .map((x) => /^urn:btih:([0-9a-fA-F]{40})$/.exec(x)?.[1])
    .find(Boolean);
  if (!xt) throw new InputError('the magnet link has no xt=urn:btih:<40 hex>');
  return { infoHash: xt.toLowerCase(), webSeeds: u.searchParams.getAll('ws').filter(isHttpUrl) };
}

export function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** GET <gateway>/media/<sha256>.torrent: the blob torrent a bridge seeds (null if it has none). */
export async function gatewayBlobTorrent(
  gateway: string,
  sha256: string,
  timeoutMs = 20_000,
  signal?: AbortSignal,
): Promise<Buffer | null> {
  if (!isHttpUrl(gateway)) throw new InputError(`--gateway: not an http(s) URL: ${JSON.stringify(gateway)}`);
  const url = `${gateway.replace(/\/+$/, '')}/media/${sha256}.torrent`;
  const res = await fetch(url, { signal: anySignal(AbortSignal.timeout(timeoutMs), signal), redirect: 'error' });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`${url}: HTTP ${res.status}`);
  }
  // A blob torrent of the largest blob is ~40 KB (2048 piece hashes); a gateway sending more is refused as it streams.
  const cap = 8 * 1024 * 1024;
  if (Number(res.headers.get('content-length') ?? 0) > cap) {
    await res.body?.cancel();
    throw new Error(`${url}: a torrent of more than ${cap} bytes`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    n += c.length;
    if (n > cap) throw new Error(`${url}: a torrent of more than ${cap} bytes`);
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

/** Aborts when either does. */
export function anySignal(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b ? AbortSignal.any([a, b]) : a;
}
