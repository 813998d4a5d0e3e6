// Fetching one media blob by its sha256 (docs/reader.md "Media"): from the swarm first (the blob
// torrent's infohash, from a bridge's gateway, the author's media list or a magnet), then over
// HTTP from the web seeds and origin URLs, in order. Whatever the source, the bytes go to a temp
// file beside the destination and are hashed; only bytes whose sha256 is the one asked for are
// renamed into place, so a wrong, short or endless answer never leaves anything at `out`.
//
// The swarm part runs on the reader's torrent client (its own DHT node, no trackers, no web
// seeds: HTTP comes after, under this module's own limits), with a deadline and a stall timeout
// (no new verified piece for that long ends it early). HTTP answers are bounded: http(s) only,
// at most 3 redirects, the size cap enforced while streaming, a deadline per URL.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import bencode from 'bencode';
import type DHT from 'bittorrent-dht';
import type { Torrent, Wire } from '../../sidecar/common/webtorrent.js';
import type WebTorrent from '../../sidecar/common/webtorrent.js';
import { InputError } from './keys.js';
import { cancelStaleRequests, evenWireSpeed } from './stale-requests.js';
import type { MediaAttempt, MediaFetchOptions, MediaFetchResult } from './media-types.js';
import { anySignal, gatewayBlobTorrent, isHttpUrl, parseMagnet } from './media-links.js';

export { gatewayBlobTorrent, isHttpUrl, parseMagnet };

export type { MediaAttempt, MediaFetchOptions, MediaFetchResult };

export const MEDIA_DEFAULTS = { maxBytes: 1024 ** 3, swarmTimeoutMs: 120_000, stallTimeoutMs: 20_000, httpTimeoutMs: 120_000 } as const;

const HEX64 = /^[0-9a-f]{64}$/;
const MAX_REDIRECTS = 3;
const LOOKUP_BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

class Refused extends Error {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** A blob torrent's infohash, length and web seeds, checked: one file, named by the sha256 asked for. */
export function readBlobTorrent(torrent: Buffer, sha256: string): { infoHash: string; length: number; webSeeds: string[]; bare: Buffer } {
  let t: {
    info?: { name?: Uint8Array; length?: unknown; files?: unknown; 'piece length'?: unknown; pieces?: Uint8Array };
    'url-list'?: unknown;
  };
  try {
    t = bencode.decode(torrent) as typeof t;
  } catch {
    throw new Refused('bad-metadata', 'not a bencoded torrent');
  }
  const info = t?.info;
  if (!info || typeof info !== 'object') throw new Refused('bad-metadata', 'the torrent has no info dict');
  if (info.files !== undefined || typeof info.length !== 'number' || !(info.pieces instanceof Uint8Array))
    throw new Refused('bad-metadata', 'not a single-file torrent');
  if (!(info.name instanceof Uint8Array) || Buffer.from(info.name).toString() !== sha256)
    throw new Refused('bad-metadata', `the torrent is not named ${sha256}`);
  const infoBytes = Buffer.from(bencode.encode(info));
  const list = t['url-list'];
  const raw = list === undefined ? [] : Array.isArray(list) ? list : [list];
  const webSeeds = raw
    .filter((x): x is Uint8Array => x instanceof Uint8Array)
    .map((x) => Buffer.from(x).toString())
    .filter(isHttpUrl);
  return {
    infoHash: createHash('sha1').update(infoBytes).digest('hex'),
    length: info.length,
    webSeeds,
    bare: Buffer.concat([Buffer.from('d4:info'), infoBytes, Buffer.from('e')]),
  };
}

/**
 * Fetches a blob: the swarm (when an infohash is known and `client` is given), then each URL.
 * Never throws for what a source did; returns every attempt.
 */ export async function fetchMedia(client: WebTorrent | null, dht: DHT | null, o: MediaFetchOptions): Promise<MediaFetchResult> {
  const sha256 = o.sha256.toLowerCase();
  if (!HEX64.test(sha256)) throw new InputError(`not a sha256: ${JSON.stringify(o.sha256.slice(0, 100))} (expected 64 hex characters)`);
  const maxBytes = o.maxBytes ?? MEDIA_DEFAULTS.maxBytes;
  const attempts: MediaAttempt[] = [];
  let infoHash = o.infoHash?.toLowerCase();
  let bare: Buffer | undefined;
  if (o.torrent) {
    try {
      const t = readBlobTorrent(o.torrent, sha256);
      if (infoHash !== undefined && infoHash !== t.infoHash)
        throw new Refused('bad-metadata', `the torrent's infohash is ${t.infoHash}, not ${infoHash}`);
      infoHash = t.infoHash;
      bare = t.bare;
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      attempts.push({ source: 'swarm', ok: false, reason: err.reason, detail: err.message, bytes: 0, ms: 0 });
    }
  }
  const work = await mkdtemp(join(o.out === '-' ? tmpdir() : dirname(o.out), '.nostr-bt-media-'));
  try {
    if (client && infoHash !== undefined && !o.signal?.aborted) {
      const a = await fromSwarm(client, dht, { infoHash, bare, sha256, dir: join(work, 'swarm'), maxBytes, o });
      attempts.push(a.attempt);
      if (a.path) {
        await rename(a.path, o.out === '-' ? join(work, 'blob') : o.out);
        if (o.out === '-') await toStdout(join(work, 'blob'));
        return { ok: true, sha256, bytes: a.attempt.bytes, source: 'swarm', infoHash, attempts };
      }
    }
    const seen = new Set<string>();
    for (const url of o.urls ?? []) {
      if (seen.has(url) || o.signal?.aborted) continue;
      seen.add(url);
      const tmp = join(work, `http-${seen.size}`);
      const a = await fromHttp(url, tmp, sha256, maxBytes, o);
      attempts.push(a);
      if (a.ok) {
        await rename(tmp, o.out === '-' ? join(work, 'blob') : o.out);
        if (o.out === '-') await toStdout(join(work, 'blob'));
        return { ok: true, sha256, bytes: a.bytes, source: 'http', url, ...(infoHash ? { infoHash } : {}), attempts };
      }
      await rm(tmp, { force: true });
    }
    return { ok: false, sha256, attempts };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function toStdout(path: string): Promise<void> {
  const { pipeline } = await import('node:stream/promises');
  await pipeline(createReadStream(path), process.stdout, { end: false });
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface SwarmJob {
  infoHash: string;
  bare: Buffer | undefined;
  sha256: string;
  dir: string;
  maxBytes: number;
  o: MediaFetchOptions;
}

async function fromSwarm(client: WebTorrent, dht: DHT | null, j: SwarmJob): Promise<{ attempt: MediaAttempt; path?: string }> {
  const t0 = Date.now();
  const swarmMs = j.o.swarmTimeoutMs ?? MEDIA_DEFAULTS.swarmTimeoutMs;
  const stallMs = j.o.stallTimeoutMs ?? MEDIA_DEFAULTS.stallTimeoutMs;
  const existing = client.torrents.find((t) => t.infoHash === j.infoHash);
  if (existing) await new Promise<void>((r) => existing.destroy({ destroyStore: true }, () => r()));
  const torrent: Torrent = client.add(j.bare ?? `magnet:?xt=urn:btih:${j.infoHash}`, {
    path: j.dir,
    announce: [],
    strategy: 'rarest',
    uploads: 64,
  } as never);
  const timers: NodeJS.Timeout[] = [];
  const stale = cancelStaleRequests(torrent);
  let onAbort: (() => void) | undefined;
  const attempt = (ok: boolean, reason?: string, detail?: string): MediaAttempt => ({
    source: 'swarm',
    ok,
    ...(reason ? { reason } : {}),
    ...(detail ? { detail } : {}),
    bytes: ok ? torrent.length : 0,
    ms: Date.now() - t0,
    peers: torrent.numPeers ?? 0,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (reason: string, detail: string) => reject(new Refused(reason, detail));
      onAbort = () => fail('aborted', 'aborted');
      if (j.o.signal?.aborted) onAbort();
      j.o.signal?.addEventListener('abort', onAbort, { once: true });
      timers.push(
        setTimeout(
          () =>
            fail(
              torrent.files?.length ? 'timeout' : (torrent.numPeers ?? 0) === 0 ? 'no-peers' : 'timeout',
              `not downloaded within ${swarmMs} ms`,
            ),
          swarmMs,
        ),
      );
      let lastProgress = Date.now();
      let lastDownloaded = 0;
      const stallTimer = setInterval(() => {
        const d = torrent.downloaded ?? 0;
        if (d !== lastDownloaded) {
          lastDownloaded = d;
          lastProgress = Date.now();
        } else if (torrent.files?.length && Date.now() - lastProgress > stallMs)
          fail('stalled', `no piece for ${stallMs} ms (${d} of ${torrent.length} bytes, ${torrent.numPeers} peers)`);
      }, 500);
      timers.push(stallTimer);
      torrent.once('error', (err: Error) => fail('error', err.message));
      torrent.on('wire', (wire: Wire) => {
        // As in bundle-fetch.ts: every peer equally fast (stale-requests.ts evenWireSpeed).
        evenWireSpeed(wire);
        wire.on('extended', (ext: string, hs: { metadata_size?: unknown }) => {
          if (ext === 'handshake' && !torrent.files?.length && typeof hs?.metadata_size === 'number' && hs.metadata_size > 8 * 1024 * 1024)
            (wire as unknown as { destroy(): void }).destroy();
        });
      });
      const checkMetadata = () => {
        const files = torrent.files ?? [];
        if (files.length !== 1 || files[0]!.path.includes('/')) return fail('bad-metadata', 'not a single-file torrent');
        if (torrent.length > j.maxBytes) return fail('too-large', `${torrent.length} bytes > ${j.maxBytes}`);
        lastProgress = Date.now();
      };
      if (torrent.files?.length) checkMetadata();
      else torrent.once('metadata', checkMetadata);
      torrent.once('done', () => resolve());
      // torrent-discovery looks the infohash up once; look again while few peers are connected.
      if (dht) {
        let n = 0;
        const again = () => {
          const t = setTimeout(
            () => {
              if ((torrent.numPeers ?? 0) < 8 && !dht.destroyed && !(torrent as unknown as { destroyed: boolean }).destroyed)
                dht.lookup(j.infoHash);
              n++;
              again();
            },
            LOOKUP_BACKOFF_MS[Math.min(n, LOOKUP_BACKOFF_MS.length - 1)],
          );
          timers.push(t);
        };
        again();
      }
    });
    const file = join(j.dir, torrent.files[0]!.path);
    await closeTorrent(torrent, false);
    const got = await sha256Of(file);
    if (got !== j.sha256) return { attempt: attempt(false, 'hash-mismatch', `the swarm's bytes hash to ${got}`) };
    return { attempt: attempt(true), path: file };
  } catch (err) {
    const e = err instanceof Refused ? err : new Refused('error', (err as Error)?.message ?? String(err));
    return { attempt: attempt(false, e.reason, e.message) };
  } finally {
    for (const t of timers) clearTimeout(t);
    stale.stop();
    if (onAbort) j.o.signal?.removeEventListener('abort', onAbort);
    await closeTorrent(torrent, false);
  }
}

function closeTorrent(t: Torrent, destroyStore: boolean): Promise<void> {
  return new Promise((resolve) => {
    if ((t as unknown as { destroyed: boolean }).destroyed) return resolve();
    t.destroy({ destroyStore }, () => resolve());
  });
}

async function fromHttp(first: string, tmp: string, sha256: string, maxBytes: number, o: MediaFetchOptions): Promise<MediaAttempt> {
  const t0 = Date.now();
  const timeoutMs = o.httpTimeoutMs ?? MEDIA_DEFAULTS.httpTimeoutMs;
  const signal = anySignal(AbortSignal.timeout(timeoutMs), o.signal);
  let bytes = 0;
  const fail = (reason: string, detail: string): MediaAttempt => ({ source: first, ok: false, reason, detail, bytes, ms: Date.now() - t0 });
  let url = first;
  try {
    let res: Response | null = null;
    for (let hop = 0; ; hop++) {
      if (!isHttpUrl(url)) return fail('scheme', `not http(s): ${url.slice(0, 200)}`);
      res = await fetch(url, {
        redirect: 'manual',
        signal,
        headers: { 'accept-encoding': 'identity', 'user-agent': 'nostr-bt media reader' },
      });
      if (![301, 302, 303, 307, 308].includes(res.status)) break;
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) return fail('redirects', `more than ${MAX_REDIRECTS} redirects`);
      const loc = res.headers.get('location');
      if (!loc) return fail('http-' + res.status, 'a redirect without Location');
      url = new URL(loc, url).href;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      return fail(`http-${res.status}`, `HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body?.cancel();
      return fail('too-large', `Content-Length ${declared} > ${maxBytes}`);
    }
    if (!res.body) return fail('network', 'no body');
    const h = createHash('sha256');
    const fh = await open(tmp, 'wx', 0o600);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          return fail('too-large', `more than ${maxBytes} bytes`);
        }
        h.update(chunk);
        await fh.write(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const got = h.digest('hex');
    if (got !== sha256) return fail('hash-mismatch', `the bytes hash to ${got}`);
    if ((await stat(tmp)).size !== bytes) return fail('network', 'short write');
    return { source: first, ok: true, bytes, ms: Date.now() - t0 };
  } catch (err) {
    if (o.signal?.aborted) return fail('aborted', 'aborted');
    if ((err as Error)?.name === 'TimeoutError') return fail('timeout', `not downloaded within ${timeoutMs} ms`);
    return fail('network', (err as Error)?.message ?? String(err));
  }
}
