// nostr-bt as a library (`import { createReader } from 'nostr-bt'`): the reader of the CLI
// (`nostr-bt resolve`/`crawl`) behind a small API. One reader holds one DHT node and one torrent
// client; every call on it is bounded in time and bytes (ResolveLimits, CrawlBudget) and ends by
// itself, and close() ends whatever is still running. Declarations are part of the package; the
// format codecs are in 'nostr-bt/formats'.
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { crawl as runCrawl } from './crawl.js';
import { NoBridgeFoundError, ReaderClosedError } from './errors.js';
import { BridgeCache, defaultBridgeCachePath } from './bridge-cache.js';
import { checkDiscoverLimits, discoverBridges as runDiscovery } from './discover.js';
import type { DiscoverLimits, DiscoveredBridge, DiscoveryReport, DiscoverySummary } from './discover-types.js';
import { chooseBridges, learnFromResolve, streamBridges } from './find-bridges.js';
import type { EventFilter } from './event-merge.js';
import { ItemStream } from './item-stream.js';
import { InputError, parseAuthorKey, parseBridgeKey } from './keys.js';
import { lookupAuthorPointer } from './pointer-lookup.js';
import type { PointerLookup } from './pointer-verify.js';
import { ReaderContext } from './reader-context.js';
import { parseBootstrap } from './reader-dht.js';
import {
  DEFAULT_CRAWL_BUDGET,
  DEFAULT_LIMITS,
  type CrawlBudget,
  type CrawlSummary,
  type EventOrigin,
  type FetchFailure,
  type RelayMode,
  type ResolveLimits,
  type ResolveResult,
  type ResolveSummary,
} from './reader-types.js';
import { isRelayUrl } from './relay-source.js';
import { resolveAuthor } from './resolve.js';
import { Rejections, verifyJsonl, type RejectReason } from './verify-events.js';
import { fetchMedia } from './media-fetch.js';
import { gatewayBlobTorrent, isHttpUrl, parseMagnet } from './media-links.js';
import type { MediaAttempt, MediaFetchOptions, MediaFetchResult, MediaListEntry, MediaListResult } from './media-types.js';
import { fetchMediaList } from './media-list.js';
import { readCatalog as runReadCatalog } from './catalog-read.js';
import { DEFAULT_CATALOG_LIMITS, type CatalogLimits, type CatalogReadResult, type BundleCheck } from './catalog-types.js';

export { gatewayBlobTorrent, parseMagnet };
export type { MediaAttempt, MediaFetchOptions, MediaFetchResult, MediaListEntry, MediaListResult };

export { ReaderError, ReaderClosedError, DhtUnreachable, NoBridgeFoundError, type ReaderErrorCode } from './errors.js';
export { DEFAULT_DISCOVER_LIMITS } from './discover-types.js';
export type { DiscoverLimits, DiscoveredBridge, DiscoveryReport, DiscoverySummary };
export { InputError, parseAuthorKey, parseBridgeKey } from './keys.js';
export { DEFAULT_LIMITS, DEFAULT_CRAWL_BUDGET, DEFAULT_CATALOG_LIMITS };
export type { CatalogLimits, CatalogReadResult, BundleCheck };
export type { Catalog, CatalogBundle } from '../../sidecar/formats/catalog.js';
export type {
  NostrEvent,
  EventFilter,
  EventOrigin,
  RelayMode,
  ResolveLimits,
  ResolveResult,
  ResolveSummary,
  CrawlBudget,
  CrawlSummary,
  FetchFailure,
  RejectReason,
  PointerLookup,
};
export type { BridgeReport, BundleReport, RelayReport, CrawlProgress } from './reader-types.js';
export type { MergeCounts } from './event-merge.js';
export type { AuthorPointer } from './pointer-verify.js';

export interface ReaderOptions {
  /** DHT nodes to join ("host:port"); a reader never picks any by itself. */
  bootstrap: string[] | string;
  /** Address the reader's DHT node binds (default 0.0.0.0). */
  bind?: string;
  /** Parent of the temp directory the reader works in (default the OS temp dir); removed by close(). */
  tmpDir?: string;
  /** Connect to peers over uTP first (default TCP). */
  utp?: boolean;
  /** DHT packets per second to any one node (default 5: libtorrent nodes ban more). */
  dhtNodeRate?: number;
  /** How long one DHT query waits for its answer (default 2000). */
  dhtQueryTimeoutMs?: number;
  /** How long createReader waits for a bootstrap node to answer (default 15000). */
  dhtReadyTimeoutMs?: number;
  /** Upload limit (bytes/s) while serving downloaded pieces to other readers (default none). */
  uploadLimit?: number;
  /** Defaults for every call on this reader; each call may override them. */
  limits?: Partial<ResolveLimits>;
  /**
   * Where discovery keeps the bridges it saw: a file path, true for the CLI's file
   * ($XDG_CACHE_HOME/nostr-bt/bridges.json or ~/.cache/…), false (default) for memory only.
   */
  bridgeCache?: string | boolean;
}

/** A bridge's key: 64 hex or 52 z-base-32 characters, or the 32 bytes. */
export type BridgeKey = string | Uint8Array;

export interface ResolveOptions {
  /** Bridges to ask; may be empty (or left out) with `discover`. */
  bridges?: BridgeKey[];
  /**
   * Find bridges through the DHT when `bridges` is empty: true for the default limits, or the
   * limits. Bridges that had pointers before (the reader's bridge cache) come first.
   */
  discover?: boolean | Partial<DiscoverLimits>;
  /** Relays asked after the swarm (ws:// or wss://). */
  relays?: string[];
  relayMode?: RelayMode;
  /** Applied to the merged result. */
  filter?: EventFilter;
  limits?: Partial<ResolveLimits>;
  signal?: AbortSignal;
}

/** An event whose id, author and signature were checked, and where it came from. */
export interface VerifiedEvent {
  event: NostrEvent;
  origin: EventOrigin;
}

/**
 * A resolve under way. Iterating it gives every verified event as it arrives, once per id,
 * before merging (superseded and deleted versions too). `result` is the merged outcome: only the
 * newest version of replaceable and addressable events, the author's deletions honoured, the
 * filter applied, newest first, with the summary of which source answered and what was rejected.
 */
export interface Resolution extends AsyncIterable<VerifiedEvent> {
  /** The author, 64 lowercase hex. */
  readonly author: string;
  readonly result: Promise<ResolveResult>;
  /** Stops the resolve; `result` then holds what was found so far. Leaving the loop early does the same. */
  abort(): void;
}

export interface CrawlOptions extends ResolveOptions {
  /** Hops from the root along contact lists (default 2). */
  depth?: number;
  budget?: Partial<CrawlBudget>;
}

export interface CrawledAuthor {
  author: string;
  depth: number;
  /** The author's merged events (filter applied). */
  events: NostrEvent[];
  summary: ResolveSummary;
}

/** A crawl under way: one item per author resolved; the crawl waits while the loop body runs. */
export interface Crawl extends AsyncIterable<CrawledAuthor> {
  readonly root: string;
  readonly result: Promise<CrawlSummary>;
  abort(): void;
}

export interface FetchFileOptions {
  /** Defaults: the reader's bundleTimeoutMs, maxMetadataBytes, maxFileBytes and maxEventBytes. */
  timeoutMs?: number;
  maxMetadataBytes?: number;
  maxFileBytes?: number;
  maxEventBytes?: number;
  signal?: AbortSignal;
}

export type AuthorFile =
  | {
      ok: true;
      infoHash: string;
      /** The file as stored in the bundle (one event per line). */
      bytes: Buffer;
      /** Its verified events, in file order. */
      events: NostrEvent[];
      rejected: Partial<Record<RejectReason, number>>;
      /** Peers ("host:port") that sent pieces of it. */
      peers: string[];
    }
  | { ok: false; infoHash: string; reason: FetchFailure; detail: string };

export interface Reader {
  resolve(author: string, opts: ResolveOptions): Resolution;
  crawl(root: string, opts: CrawlOptions): Crawl;
  /** A bridge's pointer for an author from the DHT, every page's key, salt and signature checked. */
  lookupPointer(bridge: BridgeKey, author: string, opts?: { timeoutMs?: number }): Promise<PointerLookup>;
  /** One author's file out of one bundle, only the pieces that hold it, every event verified. */
  fetchAuthorFile(infoHash: string, author: string, opts?: FetchFileOptions): Promise<AuthorFile>;
  /** The blobs a bridge holds for an author's events, from the media list their pointer names (docs/reader.md "Media"). */
  mediaList(
    bridge: BridgeKey,
    author: string,
    opts?: { timeoutMs?: number; maxListBytes?: number; signal?: AbortSignal },
  ): Promise<MediaListResult>;
  /**
   * One media blob by sha256: the swarm first (opts.infoHash, or the blob torrent a gateway
   * gave), then opts.urls in order; written to opts.out only once its sha256 is verified.
   */
  fetchMedia(opts: MediaFetchOptions): Promise<MediaFetchResult>;
  /**
   * Bridges found through the DHT alone (docs/protocol.md §10): announced peers of the discovery
   * infohash, each proving its bridge key over a fresh nonce. Bounded by `limits`; never throws
   * for what peers do (counted in the report).
   */
  discoverBridges(opts?: {
    limits?: Partial<DiscoverLimits>;
    signal?: AbortSignal;
  }): Promise<{ bridges: DiscoveredBridge[]; report: DiscoveryReport }>;
  /** A bridge's catalog (docs/protocol.md §11); with `verify`, each bundle checked against its metadata. */
  readCatalog(
    bridge: BridgeKey,
    opts?: { verify?: boolean; limits?: Partial<CatalogLimits>; signal?: AbortSignal },
  ): Promise<CatalogReadResult>;
  /** The UDP port of the reader's DHT node. */
  readonly dhtPort: number;
  /** Ends every call still running, then the DHT node and the torrent client. */
  close(): Promise<void>;
}

const INFOHASH = /^[0-9a-fA-F]{40}$/;

function bridgeKey(k: BridgeKey): Buffer {
  if (typeof k === 'string') return parseBridgeKey(k);
  if (k instanceof Uint8Array && k.length === 32) return Buffer.from(k);
  throw new InputError('a bridge key is 64 hex or 52 z-base-32 characters, or 32 bytes');
}

function checkResolveOptions(opts: ResolveOptions): { bridges: Buffer[]; relays: string[]; discover: Partial<DiscoverLimits> | null } {
  if (!opts || typeof opts !== 'object') throw new InputError('give the resolve options ({ bridges } or { discover: true })');
  const discover = opts.discover === true ? {} : opts.discover && typeof opts.discover === 'object' ? opts.discover : null;
  if (opts.bridges !== undefined && !Array.isArray(opts.bridges)) throw new InputError('opts.bridges: an array of bridge keys');
  if (!discover && (opts.bridges?.length ?? 0) === 0)
    throw new InputError('give at least one bridge key (opts.bridges), or discover: true');
  if (discover) checkDiscoverLimits(discover);
  const relays = opts.relays ?? [];
  for (const r of relays) if (!isRelayUrl(r)) throw new InputError(`not a ws:// or wss:// URL: ${JSON.stringify(r)}`);
  if (opts.relayMode !== undefined && opts.relayMode !== 'fallback' && opts.relayMode !== 'full')
    throw new InputError(`relayMode: fallback or full, not ${JSON.stringify(opts.relayMode)}`);
  return { bridges: (opts.bridges ?? []).map(bridgeKey), relays, discover };
}

function noBridgeFound(discovery: DiscoverySummary): NoBridgeFoundError {
  return new NoBridgeFoundError(
    `no bridge found through the DHT: ${discovery.peersSeen} peers announced, ${discovery.probed} probed, none proved a bridge key`,
    discovery,
  );
}

/** Aborts `controller` when `outer` does; returns the cleanup. */
function follow(outer: AbortSignal | undefined, controller: AbortController): () => void {
  if (!outer) return () => {};
  const onAbort = () => controller.abort();
  if (outer.aborted) controller.abort();
  else outer.addEventListener('abort', onAbort, { once: true });
  return () => outer.removeEventListener('abort', onAbort);
}

class ReaderImpl implements Reader {
  private closed = false;
  /** Calls under way: close() aborts them and waits for them. */
  private readonly running = new Set<{ abort: () => void; done: Promise<unknown> }>();

  constructor(
    private readonly ctx: ReaderContext,
    private readonly limits: Partial<ResolveLimits>,
    private readonly cache: BridgeCache,
  ) {}

  /** The given bridges, or (none given, discover on) the ones discovery chooses. */
  private async bridgesFor(
    given: Buffer[],
    discover: Partial<DiscoverLimits> | null,
    relays: string[],
    signal: AbortSignal,
  ): Promise<{ bridges: Buffer[]; discovery?: DiscoverySummary }> {
    if (given.length > 0 || !discover) return { bridges: given };
    const { bridges, discovery } = await chooseBridges(this.ctx.dht, this.cache, discover, signal);
    // With relays to ask, no bridge is an answer (the relays may have the events), not an error.
    if (bridges.length === 0 && relays.length === 0 && !signal.aborted) throw noBridgeFound(discovery);
    return { bridges, discovery };
  }

  async discoverBridges(
    opts: { limits?: Partial<DiscoverLimits>; signal?: AbortSignal } = {},
  ): Promise<{ bridges: DiscoveredBridge[]; report: DiscoveryReport }> {
    this.open();
    const controller = new AbortController();
    const unfollow = follow(opts.signal, controller);
    const out = await this.track(
      controller,
      runDiscovery(this.ctx.dht, { limits: opts.limits, signal: controller.signal }).finally(unfollow),
    );
    for (const b of out.bridges) this.cache.saw(b.key, b.addresses[0], b.gateway);
    this.cache.save();
    return out;
  }

  get dhtPort(): number {
    return (this.ctx.dht.address() as { port: number }).port;
  }

  private track<T>(controller: AbortController, work: Promise<T>): Promise<T> {
    const entry = { abort: () => controller.abort(), done: work.catch(() => {}) };
    this.running.add(entry);
    void entry.done.then(() => this.running.delete(entry));
    return work;
  }

  /**
   * One call that yields items as it goes: aborted by the caller's signal, by abort(), by leaving
   * the loop early or by close(); the stream ends (or fails) with the call's result.
   */
  private streamed<T, R>(
    outer: AbortSignal | undefined,
    run: (signal: AbortSignal, push: (item: T) => Promise<void>) => Promise<R>,
  ): { result: Promise<R>; abort: () => void; iterate: () => AsyncIterator<T> } {
    const controller = new AbortController();
    const unfollow = follow(outer, controller);
    const stream = new ItemStream<T>(() => controller.abort());
    const result = this.track(controller, run(controller.signal, (item) => stream.push(item)).finally(unfollow));
    result.then(
      () => stream.end(),
      (err: unknown) => stream.fail(err),
    );
    return { result, abort: () => controller.abort(), iterate: () => stream[Symbol.asyncIterator]() };
  }

  private open(): void {
    if (this.closed) throw new ReaderClosedError();
  }

  resolve(author: string, opts: ResolveOptions): Resolution {
    this.open();
    const key = parseAuthorKey(author);
    const { bridges: given, relays, discover } = checkResolveOptions(opts);
    const { result, abort, iterate } = this.streamed<VerifiedEvent, ResolveResult>(opts.signal, async (signal, push) => {
      // With discovery, each bridge is resolved as soon as it is found, not after discovery ends.
      const feed = given.length > 0 || !discover ? null : streamBridges(this.ctx.dht, this.cache, discover, signal);
      const out = await resolveAuthor(this.ctx, {
        author: key,
        bridges: feed ? feed.bridges : given,
        relays,
        relayMode: opts.relayMode,
        filter: opts.filter,
        limits: { ...this.limits, ...opts.limits },
        signal,
        onEvent: (event, _source, origin) => void push({ event, origin }),
      });
      if (feed) {
        const { discovery } = await feed.done;
        if (discovery.chosen.length === 0 && relays.length === 0 && !signal.aborted) throw noBridgeFound(discovery);
        learnFromResolve(this.cache, out.summary);
        this.cache.save();
        out.summary.discovery = discovery;
      }
      return out;
    });
    return { author: key, result, abort, [Symbol.asyncIterator]: iterate };
  }

  crawl(root: string, opts: CrawlOptions): Crawl {
    this.open();
    const key = parseAuthorKey(root);
    const { bridges: given, relays, discover } = checkResolveOptions(opts);
    const depth = opts.depth ?? 2;
    if (!Number.isInteger(depth) || depth < 0 || depth > 16) throw new InputError(`depth: 0 to 16, not ${JSON.stringify(opts.depth)}`);
    const { result, abort, iterate } = this.streamed<CrawledAuthor, CrawlSummary>(opts.signal, async (signal, push) => {
      const { bridges, discovery } = await this.bridgesFor(given, discover, relays, signal);
      const out = await runCrawl(this.ctx, {
        root: key,
        depth,
        bridges,
        relays,
        relayMode: opts.relayMode,
        filter: opts.filter,
        limits: { ...this.limits, ...opts.limits },
        budget: opts.budget,
        signal,
        onAuthor: (a) => {
          if (discovery) learnFromResolve(this.cache, a.summary);
          return push(a);
        },
      });
      if (discovery) {
        this.cache.save();
        out.discovery = discovery;
      }
      return out;
    });
    return { root: key, result, abort, [Symbol.asyncIterator]: iterate };
  }

  async lookupPointer(bridge: BridgeKey, author: string, opts: { timeoutMs?: number } = {}): Promise<PointerLookup> {
    this.open();
    const k = bridgeKey(bridge);
    const a = parseAuthorKey(author);
    const timeoutMs = opts.timeoutMs ?? this.limits.pointerTimeoutMs ?? DEFAULT_LIMITS.pointerTimeoutMs;
    return this.track(new AbortController(), lookupAuthorPointer(this.ctx.dht, k, a, timeoutMs));
  }

  async fetchAuthorFile(infoHash: string, author: string, opts: FetchFileOptions = {}): Promise<AuthorFile> {
    this.open();
    if (typeof infoHash !== 'string' || !INFOHASH.test(infoHash))
      throw new InputError(`not an infohash: ${JSON.stringify(String(infoHash).slice(0, 80))} (expected 40 hex characters)`);
    const ih = infoHash.toLowerCase();
    const a = parseAuthorKey(author);
    const limits = { ...DEFAULT_LIMITS, ...this.limits };
    const controller = new AbortController();
    const unfollow = follow(opts.signal, controller);
    const chunks: Buffer[] = [];
    const peers = new Set<string>();
    const out = await this.track(
      controller,
      this.ctx.fetcher
        .fetchAuthorFile(
          ih,
          a,
          {
            maxMetadataBytes: opts.maxMetadataBytes ?? limits.maxMetadataBytes,
            maxFileBytes: opts.maxFileBytes ?? limits.maxFileBytes,
            timeoutMs: opts.timeoutMs ?? limits.bundleTimeoutMs,
          },
          {
            signal: controller.signal,
            onPiece: (index, _count, data, from) => {
              // Pieces come in any order; the store may reuse its buffers.
              chunks[index] = Buffer.from(data);
              for (const p of from) peers.add(p);
            },
          },
        )
        .finally(unfollow),
    );
    if (!out.ok) return { ok: false, infoHash: ih, reason: out.reason, detail: out.detail };
    const bytes = Buffer.concat(chunks);
    const rejections = new Rejections();
    const events = verifyJsonl(bytes, a, rejections, { maxEventBytes: opts.maxEventBytes ?? limits.maxEventBytes });
    return { ok: true, infoHash: ih, bytes, events, rejected: rejections.counts, peers: [...peers] };
  }

  async mediaList(
    bridge: BridgeKey,
    author: string,
    opts: { timeoutMs?: number; maxListBytes?: number; signal?: AbortSignal } = {},
  ): Promise<MediaListResult> {
    if (this.closed) throw new ReaderClosedError();
    const k = bridgeKey(bridge);
    const a = parseAuthorKey(author);
    const controller = new AbortController();
    const unfollow = follow(opts.signal, controller);
    try {
      return await this.track(
        controller,
        fetchMediaList(
          this.ctx,
          k,
          a,
          {
            timeoutMs: opts.timeoutMs ?? this.limits.bundleTimeoutMs ?? DEFAULT_LIMITS.bundleTimeoutMs,
            maxListBytes: opts.maxListBytes ?? 16 * 1024 * 1024,
          },
          controller.signal,
        ),
      );
    } finally {
      unfollow();
    }
  }

  async fetchMedia(opts: MediaFetchOptions): Promise<MediaFetchResult> {
    if (this.closed) throw new ReaderClosedError();
    if (!opts || typeof opts.out !== 'string' || opts.out === '' || opts.out === '-')
      throw new InputError('fetchMedia: give opts.out, the file to write');
    if (opts.infoHash !== undefined && !INFOHASH.test(opts.infoHash))
      throw new InputError('fetchMedia: opts.infoHash is 40 hex characters');
    for (const u of opts.urls ?? [])
      if (!isHttpUrl(u)) throw new InputError(`fetchMedia: not an http(s) URL: ${JSON.stringify(String(u).slice(0, 200))}`);
    const controller = new AbortController();
    const unfollow = follow(opts.signal, controller);
    try {
      return await this.track(controller, fetchMedia(this.ctx.fetcher.client, this.ctx.dht, { ...opts, signal: controller.signal }));
    } finally {
      unfollow();
    }
  }

  async readCatalog(
    bridge: BridgeKey,
    opts: { verify?: boolean; limits?: Partial<CatalogLimits>; signal?: AbortSignal } = {},
  ): Promise<CatalogReadResult> {
    this.open();
    const k = bridgeKey(bridge);
    const controller = new AbortController();
    const unfollow = follow(opts.signal, controller);
    return this.track(
      controller,
      runReadCatalog(this.ctx, k, { verify: opts.verify, limits: opts.limits, signal: controller.signal }).finally(unfollow),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = [...this.running];
    for (const r of running) r.abort();
    await Promise.all(running.map((r) => r.done));
    await this.ctx.close();
  }
}

/**
 * Starts a reader: its DHT node joins through `bootstrap` (rejects with DhtUnreachable when no
 * node answers within dhtReadyTimeoutMs) and its torrent client listens for peers.
 */
export async function createReader(opts: ReaderOptions): Promise<Reader> {
  if (!opts || opts.bootstrap === undefined) throw new InputError('give the DHT nodes to join (opts.bootstrap: ["host:port", ...])');
  const bootstrap = parseBootstrap(Array.isArray(opts.bootstrap) ? opts.bootstrap.join(',') : opts.bootstrap);
  if (opts.dhtNodeRate !== undefined && !(Number.isFinite(opts.dhtNodeRate) && opts.dhtNodeRate >= 1))
    throw new InputError('dhtNodeRate: at least 1 packet per second');
  const ctx = await ReaderContext.open({
    bootstrap,
    bindHost: opts.bind,
    tmpDir: opts.tmpDir,
    utp: opts.utp === true,
    dhtReadyTimeoutMs: opts.dhtReadyTimeoutMs,
    maxPacketsPerSecondPerNode: opts.dhtNodeRate,
    dhtQueryTimeoutMs: opts.dhtQueryTimeoutMs,
    uploadLimit: opts.uploadLimit,
  });
  const cachePath = typeof opts.bridgeCache === 'string' ? opts.bridgeCache : opts.bridgeCache === true ? defaultBridgeCachePath() : null;
  return new ReaderImpl(ctx, opts.limits ?? {}, BridgeCache.load(cachePath));
}
