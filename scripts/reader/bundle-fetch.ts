// Fetching one author's file (`<pubkey>.jsonl`) out of a bundle (docs/protocol.md §6) with
// WebTorrent: peers come from the reader's own DHT node and from peer exchange (no trackers, LSD,
// UPnP, NAT-PMP or web seeds), the torrent is added with every file deselected and only the author's file is
// selected once the metadata is in, so only the pieces that hold it are downloaded.
//
// Hostile bridges and peers are bounded: a peer announcing metadata above the limit is dropped,
// metadata that is not a flat list of `<64 hex>.jsonl` files is refused, a file above the limit is
// not downloaded, and every fetch has a deadline (a download that never finishes times out).
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type DHT from 'bittorrent-dht';
import WebTorrent, { type Torrent, type TorrentFile, type Wire } from '../../sidecar/common/webtorrent.js';
import { installNoDelay } from '../../sidecar/common/tcp-no-delay.js';
import { useFairThrottles } from '../../sidecar/common/fair-throttle.js';
import MemoryChunkStore from 'memory-chunk-store';
import type { FetchFailure } from './reader-types.js';
import { evenWireSpeed } from './stale-requests.js';

export type { FetchFailure };

export interface BundleLimits {
  /** Largest info dict accepted (bytes); larger announcements are dropped. */
  maxMetadataBytes: number;
  /** Largest author file downloaded (bytes). */
  maxFileBytes: number;
  /** Deadline for this fetch, metadata included. */
  timeoutMs: number;
}

export interface FetchStats {
  /** Raw bytes of piece data received for this torrent so far (all its fetches). */
  receivedBytes: number;
  metadataBytes: number;
  peers: number;
  ms: number;
  /** From the start of this fetch: metadata in (0 if it was already), first byte of the file. */
  metadataMs: number | null;
  firstByteMs: number | null;
}

/** ok: every byte of the file was handed to `onPiece`. */
export type FetchOutcome = ({ ok: true; fileBytes: number } | { ok: false; reason: FetchFailure; detail: string }) & {
  infoHash: string;
  stats: FetchStats;
};

export interface FetcherOptions {
  /** Working directory (one subdirectory per bundle, for WebTorrent's paths); removed by close(). */
  dir: string;
  /** uTP first (default off: WebTorrent tries uTP then falls back to TCP only after several retries). */
  utp?: boolean;
  maxConns?: number;
  /** Upload rate limit while serving other readers (bytes/s; default unlimited). */
  uploadLimit?: number;
  /**
   * Pieces are kept in memory (a fresh fs store costs ~1 s of misses per bundle before the first
   * request); bundles nobody is reading are dropped, least recently used first, once the pieces
   * held pass this many bytes (default 64 MiB).
   */
  keepBytes?: number;
}

const FILE_NAME = /^[0-9a-f]{64}\.jsonl$/;

interface Entry {
  torrent: Torrent;
  /** Resolves once the metadata is in and checked; rejects with the reason it never will be. */
  ready: Promise<void>;
  /** Rejects if the torrent errors at any time (a piece store failure...). */
  broken: Promise<never>;
  oversizedPeers: number;
  failed: { reason: FetchFailure; detail: string } | null;
  waiters: number;
  lookupTimer: NodeJS.Timeout | null;
  lastUsed: number;
  /** Torrent piece index → the peers ("host:port") that sent blocks of it. */
  piecePeers: Map<number, string[]>;
}

/**
 * Re-lookups for peers while a fetch waits with few peers: torrent-discovery looks up once when
 * the torrent is added (and re-announces every 15 min), so readers arriving together would
 * otherwise only ever find the bridge, never each other.
 */
const LOOKUP_BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const ENOUGH_PEERS = 8;

class FetchError extends Error {
  constructor(
    readonly reason: FetchFailure,
    detail: string,
  ) {
    super(detail);
  }
}

export class BundleFetcher {
  private readonly entries = new Map<string, Entry>();
  private uploadedGone = 0;
  private receivedGone = 0;
  private closed = false;

  private constructor(
    readonly client: WebTorrent,
    private readonly dht: DHT | null,
    private readonly opts: FetcherOptions,
  ) {}

  static async start(dht: DHT | null, opts: FetcherOptions): Promise<BundleFetcher> {
    installNoDelay();
    await mkdir(opts.dir, { recursive: true });
    const client = new WebTorrent({
      dht: false,
      tracker: false,
      lsd: false,
      // Peer exchange (BEP 11) between readers: those arriving together learn of each other from
      // each other, faster than from DHT lookups.
      utPex: true,
      natUpnp: false,
      natPmp: false,
      webSeeds: false,
      utp: opts.utp ?? false,
      torrentPort: 0,
      maxConns: opts.maxConns ?? 55,
      // No MSE/PE handshake: its Diffie-Hellman per connection was the reader's largest CPU cost
      // after rarest-first in a 20-reader swarm. Bridges accept plaintext peers.
      secure: 0,
      ...(opts.uploadLimit ? { uploadLimit: opts.uploadLimit } : {}),
    } as ConstructorParameters<typeof WebTorrent>[0]);
    // Under an upload limit every asking peer gets served in turn (fair-throttle.ts).
    useFairThrottles(client);
    // WebTorrent treats a `dht` option as constructor options; give it our node afterwards.
    if (dht) client.dht = dht;
    client.on('error', () => {});
    await new Promise<void>((resolve) => (client.listening ? resolve() : client.once('listening', () => resolve())));
    return new BundleFetcher(client, dht, opts);
  }

  get port(): number {
    return this.client.address()?.port ?? 0;
  }

  /** Bytes uploaded to other peers by this reader (it serves what it downloaded while it runs). */
  uploaded(): number {
    let n = this.uploadedGone;
    for (const t of this.client.torrents) n += t.uploaded;
    return n;
  }

  received(): number {
    let n = this.receivedGone;
    for (const t of this.client.torrents) n += (t as unknown as { received: number }).received;
    return n;
  }

  /**
   * Downloads `<author>.jsonl` from bundle `infoHash`; never throws. The file's bytes are handed
   * to `onPiece` piece by piece as each piece is verified, in whatever order they come (chunk
   * `index` of `count`, numbered in file order).
   */
  async fetchAuthorFile(
    infoHash: string,
    author: string,
    limits: BundleLimits,
    opts: { signal?: AbortSignal; onPiece: (index: number, count: number, data: Buffer, peers: readonly string[]) => void },
  ): Promise<FetchOutcome> {
    const t0 = Date.now();
    const entry = this.entry(infoHash, limits);
    entry.waiters++;
    let file: TorrentFile | null = null;
    let stopDelivery = () => {};
    let timer: NodeJS.Timeout | undefined;
    let metadataMs: number | null = null;
    let firstByteMs: number | null = null;
    const stats = (): FetchStats => ({
      metadataMs,
      firstByteMs,
      receivedBytes: (entry.torrent as unknown as { received: number }).received ?? 0,
      metadataBytes: metadataLength(entry.torrent),
      peers: entry.torrent.numPeers ?? 0,
      ms: Date.now() - t0,
    });
    let onAbort: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(entry)), limits.timeoutMs);
      onAbort = () => reject(new FetchError('aborted', 'aborted'));
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    deadline.catch(() => {});
    try {
      await Promise.race([entry.ready, deadline]);
      metadataMs = Date.now() - t0;
      const f = entry.torrent.files.find((x) => x.name === `${author}.jsonl`);
      if (!f) throw new FetchError('not-in-bundle', `the bundle has no file for ${author}`);
      if (f.length > limits.maxFileBytes) throw new FetchError('file-too-large', `${f.length} bytes > ${limits.maxFileBytes}`);
      file = f;
      f.select();
      const delivery = deliverPieces(entry.torrent, f, entry.piecePeers, opts.onPiece, () => (firstByteMs ??= Date.now() - t0));
      stopDelivery = delivery.stop;
      const got = await Promise.race([delivery.done, deadline, entry.broken]);
      if (got !== f.length) throw new FetchError('error', `read ${got} of ${f.length} bytes`);
      return { ok: true, fileBytes: got, infoHash, stats: stats() };
    } catch (err) {
      if (file && !file.done) file.deselect();
      const e = err instanceof FetchError ? err : new FetchError('error', (err as Error)?.message ?? String(err));
      return { ok: false, reason: e.reason, detail: e.message, infoHash, stats: stats() };
    } finally {
      // Nothing reaches onPiece after the fetch has answered (timed out, aborted, failed).
      stopDelivery();
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
      entry.waiters--;
      entry.lastUsed = Date.now();
      // A torrent that never got its metadata is dropped, so a later fetch starts afresh.
      if (entry.waiters === 0 && (!entry.torrent.files?.length || entry.failed)) void this.drop(infoHash);
      else this.trim();
    }
  }

  /** A bundle's file list and name from its metadata alone (no file is downloaded); never throws. */
  async fetchMetadata(
    infoHash: string,
    limits: Pick<BundleLimits, 'maxMetadataBytes' | 'timeoutMs'>,
    signal?: AbortSignal,
  ): Promise<{ ok: true; name: string; files: { name: string; length: number }[] } | { ok: false; reason: FetchFailure; detail: string }> {
    const entry = this.entry(infoHash, { ...limits, maxFileBytes: 0 });
    entry.waiters++;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(entry)), limits.timeoutMs);
      onAbort = () => reject(new FetchError('aborted', 'aborted'));
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    deadline.catch(() => {});
    try {
      await Promise.race([entry.ready, deadline]);
      return { ok: true, name: entry.torrent.name, files: entry.torrent.files.map((f) => ({ name: f.name, length: f.length })) };
    } catch (err) {
      const e = err instanceof FetchError ? err : new FetchError('error', (err as Error)?.message ?? String(err));
      return { ok: false, reason: e.reason, detail: e.message };
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      entry.waiters--;
      entry.lastUsed = Date.now();
      if (entry.waiters === 0 && (!entry.torrent.files?.length || entry.failed)) void this.drop(infoHash);
      else this.trim();
    }
  }

  private timeoutError(entry: Entry): FetchError {
    if (entry.torrent.files?.length)
      return new FetchError('timeout', `the download did not finish in time (${entry.torrent.numPeers} peers)`);
    if (entry.oversizedPeers > 0)
      return new FetchError('metadata-too-large', `${entry.oversizedPeers} peer(s) announced metadata above the limit`);
    if ((entry.torrent.numPeers ?? 0) === 0) return new FetchError('no-peers', 'no peer found for the bundle in time');
    return new FetchError('timeout', 'no metadata in time');
  }

  private entry(infoHash: string, limits: BundleLimits): Entry {
    const have = this.entries.get(infoHash);
    if (have && !have.failed) return have;
    const torrent = this.client.add(`magnet:?xt=urn:btih:${infoHash}`, {
      path: join(this.opts.dir, infoHash),
      deselect: true,
      announce: [],
      // Rarest first: readers fetching the same file at once get different pieces and trade them.
      strategy: 'rarest',
      // Unchoke every reader that asks (WebTorrent's default is 10 slots, re-chosen every 10 s):
      // readers arriving together then trade pieces at once instead of waiting on the bridge.
      uploads: 64,
      store: MemoryChunkStore,
    } as never);
    torrent.setMaxListeners(0); // one 'verified' listener per file being fetched (a restore asks for many at once)
    let fail: (reason: FetchFailure, detail: string) => void = () => {};
    let resolveReady: () => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      fail = (reason, detail) => {
        entry.failed ??= { reason, detail };
        reject(new FetchError(reason, detail));
      };
    });
    const broken = new Promise<never>((_, reject) =>
      torrent.once('error', (err: Error) => {
        fail('error', err.message);
        reject(new FetchError('error', err.message));
      }),
    );
    ready.catch(() => {});
    broken.catch(() => {});
    const entry: Entry = {
      torrent,
      ready,
      broken,
      oversizedPeers: 0,
      failed: null,
      waiters: 0,
      lookupTimer: null,
      lastUsed: Date.now(),
      piecePeers: new Map(),
    };
    this.scheduleLookup(infoHash, entry, 0);
    torrent.on('wire', (wire: Wire) => {
      // WebTorrent leaves a piece to a faster peer rather than asking a slower one, even when
      // that peer has since choked us: in a swarm of readers this stalled downloads for seconds
      // and sent them back to the bridge. With every peer equally fast it asks whoever has the
      // piece, with a pipeline deep enough for a lagging peer (stale-requests.ts evenWireSpeed).
      evenWireSpeed(wire);
      // Where each piece came from, for the library's per-event origin.
      wire.on('piece', (index: number) => {
        const w = wire as unknown as { remoteAddress?: string; remotePort?: number };
        const addr = `${w.remoteAddress ?? '?'}:${w.remotePort ?? '?'}`;
        const peers = entry.piecePeers.get(index);
        if (!peers) entry.piecePeers.set(index, [addr]);
        else if (!peers.includes(addr)) peers.push(addr);
      });
      wire.on('extended', (ext: string, hs: { metadata_size?: unknown }) => {
        if (ext !== 'handshake' || torrent.files?.length) return;
        if (typeof hs?.metadata_size === 'number' && hs.metadata_size > limits.maxMetadataBytes) {
          entry.oversizedPeers++;
          (wire as unknown as { destroy(): void }).destroy();
        }
      });
    });
    torrent.once('metadata', () => {
      const problem = checkMetadata(torrent, limits.maxMetadataBytes);
      if (!problem) {
        cheapRarestFirst(torrent);
        return resolveReady();
      }
      fail('bad-metadata', problem);
      torrent.destroy();
    });
    this.entries.set(infoHash, entry);
    return entry;
  }

  /** While someone waits with few peers connected, look the infohash up again (with backoff). */
  private scheduleLookup(infoHash: string, entry: Entry, attempt: number): void {
    if (!this.dht) return;
    const delay = LOOKUP_BACKOFF_MS[Math.min(attempt, LOOKUP_BACKOFF_MS.length - 1)]!;
    entry.lookupTimer = setTimeout(() => {
      entry.lookupTimer = null;
      if (this.closed || this.entries.get(infoHash) !== entry || entry.failed) return;
      const t = entry.torrent as unknown as { destroyed?: boolean; done?: boolean; numPeers: number };
      if (t.destroyed) return;
      if (entry.waiters > 0 && t.numPeers < ENOUGH_PEERS && this.dht && !this.dht.destroyed) this.dht.lookup(infoHash);
      this.scheduleLookup(infoHash, entry, attempt + 1);
    }, delay);
    entry.lookupTimer.unref();
  }

  /** Drops idle bundles, least recently used first, while the pieces held exceed keepBytes. */
  private trim(): void {
    const keep = this.opts.keepBytes ?? 64 * 1024 * 1024;
    let held = 0;
    for (const e of this.entries.values()) held += e.torrent.downloaded ?? 0;
    if (held <= keep) return;
    const idle = [...this.entries.entries()].filter(([, e]) => e.waiters === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [ih, e] of idle) {
      if (held <= keep) break;
      held -= e.torrent.downloaded ?? 0;
      void this.drop(ih);
    }
  }

  private async drop(infoHash: string): Promise<void> {
    const entry = this.entries.get(infoHash);
    if (!entry) return;
    if (entry.lookupTimer) clearTimeout(entry.lookupTimer);
    this.entries.delete(infoHash);
    this.uploadedGone += entry.torrent.uploaded ?? 0;
    this.receivedGone += (entry.torrent as unknown as { received: number }).received ?? 0;
    await new Promise<void>((resolve) => {
      if ((entry.torrent as unknown as { destroyed: boolean }).destroyed) return resolve();
      entry.torrent.destroy({ destroyStore: true }, () => resolve());
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.entries.keys()].map((ih) => this.drop(ih)));
    this.client.dht = null; // the DHT node belongs to the caller
    await new Promise<void>((resolve) => this.client.destroy(() => resolve()));
    await rm(this.opts.dir, { recursive: true, force: true });
  }
}

function metadataLength(t: Torrent): number {
  const m = (t as unknown as { metadata?: Uint8Array | null }).metadata;
  return m ? m.length : 0;
}

/** §6: a flat list of `<pubkey>.jsonl` files under the torrent's name. */
function checkMetadata(t: Torrent, maxMetadataBytes: number): string | null {
  const size = metadataLength(t);
  if (size > maxMetadataBytes) return `metadata is ${size} bytes (limit ${maxMetadataBytes})`;
  if (!t.name || t.name === '.' || t.name === '..' || /[/\\]/.test(t.name)) return `bad torrent name ${JSON.stringify(t.name)}`;
  for (const f of t.files) {
    if (!FILE_NAME.test(f.name) || f.path !== join(t.name, f.name)) return `unexpected file ${JSON.stringify(f.path)}`;
  }
  return null;
}

/**
 * Hands a file's bytes over piece by piece as each piece is verified (those already verified
 * first), in any order, while the file downloads rarest first. `done` resolves with the bytes
 * handed over once every piece of the file was; `stop` ends the delivery early.
 */
function deliverPieces(
  t: Torrent,
  f: TorrentFile,
  piecePeers: ReadonlyMap<number, readonly string[]>,
  onPiece: (index: number, count: number, data: Buffer, peers: readonly string[]) => void,
  onFirst: () => void,
): { done: Promise<number>; stop: () => void } {
  const tt = t as unknown as {
    pieceLength: number;
    length: number;
    bitfield: { get(i: number): boolean };
    store: { get(i: number, o: { offset: number; length: number }, cb: (err: Error | null, buf?: Uint8Array) => void): void };
  };
  const ff = f as unknown as { offset: number; length: number; _startPiece: number; _endPiece: number };
  const first = ff._startPiece;
  const count = ff.length === 0 ? 0 : ff._endPiece - first + 1;
  const delivered = new Set<number>();
  let handed = 0;
  let stopped = false;
  const onVerified = (piece: number) => read(piece);
  const stop = () => {
    stopped = true;
    t.removeListener('verified', onVerified);
  };
  let settle: { resolve: (n: number) => void; reject: (e: Error) => void } = { resolve: () => {}, reject: () => {} };
  const done = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
  const read = (piece: number) => {
    if (stopped || piece < first || piece > ff._endPiece || delivered.has(piece)) return;
    delivered.add(piece);
    const pieceStart = piece * tt.pieceLength;
    const from = Math.max(ff.offset, pieceStart);
    const to = Math.min(ff.offset + ff.length, pieceStart + tt.pieceLength, tt.length);
    tt.store.get(piece, { offset: from - pieceStart, length: to - from }, (err, buf) => {
      if (stopped) return;
      if (err || !buf) {
        stop();
        return settle.reject(new FetchError('error', `reading piece ${piece}: ${err?.message ?? 'no data'}`));
      }
      if (handed === 0) onFirst();
      handed += buf.length;
      onPiece(
        piece - first,
        count,
        Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength),
        piecePeers.get(piece) ?? [],
      );
      if (delivered.size === count && handed === ff.length) {
        stop();
        settle.resolve(handed);
      }
    });
  };
  if (count === 0) settle.resolve(0);
  else {
    t.on('verified', onVerified);
    for (let p = first; p <= ff._endPiece; p++) if (tt.bitfield.get(p)) read(p);
  }
  return { done, stop };
}

/**
 * WebTorrent's rarest-first asks its rarity map for "the rarest piece" over and over, each time a
 * full scan, and the candidates include pieces already held or already fully requested, which it
 * then skips one scan at a time: with 20 peers announcing pieces this dominated a reader's CPU.
 * Leaving those pieces out of the scan makes the first answer usable.
 */
function cheapRarestFirst(t: Torrent): void {
  type PieceState = { _cancellations: unknown[] | null; _reservations: number; _chunks: number } | null;
  const tt = t as unknown as {
    _rarityMap?: { getRarestPiece(filter?: (i: number) => boolean): number };
    bitfield: { get(i: number): boolean };
    pieces: PieceState[];
  };
  const map = tt._rarityMap;
  if (!map) return;
  const original = map.getRarestPiece.bind(map);
  const requestable = (i: number) => {
    if (tt.bitfield.get(i)) return false;
    const p = tt.pieces[i];
    return !p || !(p._cancellations?.length === 0 && p._reservations >= p._chunks);
  };
  map.getRarestPiece = (filter) => original((i) => requestable(i) && (!filter || filter(i)));
}
