// Mirroring other bridges (`[mirror] bridges`, docs/operations.md "Mirrors"): for each followed
// bridge, read its catalog (docs/protocol.md §11), download every bundle it names, verify every
// event as a reader does, seed the bundles and the catalog under their own infohashes, and keep
// the origin's signed BEP-44 items (the bridge item and every author's pointer pages) alive by
// re-putting them unchanged — a put of a stored signed item needs no secret key. Newer seqs the
// origin publishes replace the stored ones at each poll.
//
// Bounded per followed bridge: disk (`maxBytesPerBridge`), bundles (`maxBundlesPerBridge`, also
// the catalog decoder's limit), catalog size, one bundle's size (its catalog entry and then its
// metadata); for the whole mirror: download rate, bundles at once, puts per second.
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type DHT from 'bittorrent-dht';
import bencode from 'bencode';
import type { Logger } from 'pino';
import { BRIDGE_SALT, authorSalt, decodeAuthorPage, decodeBridgeValue } from '../formats/pointer-item.js';
import { BadCatalog, catalogMismatch, decodeCatalog, type Catalog, type CatalogBundle } from '../formats/catalog.js';
import { torrentLayout } from '../formats/torrent-layout.js';
import { checkItem } from '../formats/pointer-check.js';
import { readAndRepair } from './item-read.js';
import type { SignedItem } from '../dht/mutable-get.js';
import { ItemPutter } from '../dht/put.js';
import type { Seeder } from '../bundles/bundler.js';
import { WholeDownloader, type DownloadResult, type DownloadSources } from './whole-download.js';
import { verifyBundleParallel } from './verify-parallel.js';

export interface MirrorOptions {
  /** Followed bridges, 64 hex each. */
  bridges: string[];
  /** `<dataDir>/mirror`: one folder per followed bridge. */
  dir: string;
  maxBytesPerBridge: number;
  maxBundlesPerBridge: number;
  maxCatalogBytes: number;
  maxMetadataBytes: number;
  maxEventBytes: number;
  downloadBytesPerSecond: number;
  concurrency: number;
  pollIntervalMs: number;
  republishIntervalMs: number;
  putsPerSecond: number;
  bundleTimeoutMs: number;
  itemTimeoutMs: number;
  /** The seeder's torrent port, announced for mirrored bundles. */
  torrentPort: () => number;
  /** Whether the bridge itself seeds this infohash (the same events give the same bundle anywhere). */
  ownBundle?: (ih: string) => boolean;
  /** Use the gateway a bridge item names (`g`) for `.torrent` files and as a web seed (default true). */
  webSeeds?: boolean;
}

/** What status and metrics show of one followed bridge. */
export interface MirroredBridgeStatus {
  bridge: string;
  /** The catalog followed now, and the bridge item's seq it came from. */
  catalog: string | null;
  itemSeq: number | null;
  bundles: { listed: number; held: number; bytes: number; events: number; refused: Record<string, number> };
  items: { held: number; reput: number; failed: number; oldestPutAgeSec: number | null; stale: number; repaired: number };
  /** Seconds since the origin listed a bundle this mirror does not hold yet (0: caught up). */
  lagSec: number;
  caughtUp: boolean;
  lastPollAt: string | null;
  lastError: string | null;
}

export interface MirrorStatus {
  bridges: MirroredBridgeStatus[];
  downloadedBytes: number;
  /** DHT announces of mirrored bundles and catalogs that reached some node, since start. */
  announced: number;
}

interface StoredItem {
  salt: Buffer;
  seq: number;
  v: unknown;
  sig: Buffer;
  /** When it was last stored in the DHT by us (or read from it): the republish clock. */
  putAt: number;
  failures: number;
}

interface HeldBundle {
  bytes: number;
  events: number;
}

/** Reasons a bundle is never retried while the catalog lists it (the rest are retried at the next poll). */
const PERMANENT = new Set(['too-large', 'refused', 'forged', 'metadata-too-large']);
/** Author items read at once: each read is a few paced queries (mirror/item-read.ts), so many fit the DHT's budget. */
const AUTHOR_ITEM_CONCURRENCY = 32;
const ANNOUNCE_TIMEOUT_MS = 20_000;
const MAX_PEER_HINTS = 8;
const GATEWAY_RETRY_MS = 60_000;
/** Authors whose pointer disagrees with the catalog read again per poll at most. */
const STALE_REREADS_PER_POLL = 1000;

class Follower {
  readonly hex: string;
  readonly dir: string;
  readonly items = new Map<string, StoredItem>();
  readonly held = new Map<string, HeldBundle>();
  readonly refusedIhs = new Map<string, string>();
  readonly refused: Record<string, number> = {};
  catalog: Catalog | null = null;
  catalogIh: string | null = null;
  /** A catalog refused (and why): not downloaded again until the origin names another. */
  badCatalog: { ih: string; why: string } | null = null;
  /** Bytes of the bundles downloading now: the quota holds against them too. */
  reserved = 0;
  itemSeq: number | null = null;
  missingSince: number | null = null;
  lastPollAt: number | null = null;
  lastError: string | null = null;
  reput = 0;
  failed = 0;
  /** Older copies of the origin's items on DHT nodes replaced by the newest (read-repair). */
  repaired = 0;
  /** Authors whose stored pointer disagrees with the catalog (read again at each poll). */
  stale = 0;
  itemsDirty = false;
  /** The origin's gateway, from its bridge item (null: none, or web seeds off). */
  gateway: string | null = null;
  /** A gateway that did not answer is not asked again before this (each ask waits up to 10 s). */
  gatewayDownUntil = 0;
  /** Peers that served this origin's catalog or bundles (newest first): dialled for the next ones. */
  peers: string[] = [];
  /** Bundles refused for the disk quota now: checked again at every poll (the origin may retire bundles, the quota may grow). */
  readonly overQuota = new Set<string>();

  constructor(
    readonly key: Buffer,
    root: string,
  ) {
    this.hex = key.toString('hex');
    this.dir = join(root, this.hex);
  }

  get bundleDir(): string {
    return join(this.dir, 'bundles');
  }

  get catalogDir(): string {
    return join(this.dir, 'catalog');
  }

  get heldBytes(): number {
    let n = 0;
    for (const b of this.held.values()) n += b.bytes;
    return n;
  }

  refuse(ih: string, reason: string): void {
    if (reason === 'over-quota') {
      // Counted once per bundle, however many polls find it still does not fit.
      if (this.overQuota.has(ih)) return;
      this.overQuota.add(ih);
    }
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    if (PERMANENT.has(reason)) this.refusedIhs.set(ih, reason);
  }

  notePeers(found: readonly string[]): void {
    if (found.length === 0) return;
    this.peers = [...new Set([...found, ...this.peers])].slice(0, MAX_PEER_HINTS);
  }
}

export class Mirror {
  private readonly followers: Follower[];
  private readonly putter: ItemPutter;
  private downloader: WholeDownloader | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private putTimer: NodeJS.Timeout | null = null;
  private announceTimer: NodeJS.Timeout | null = null;
  private announcing: Promise<void> | null = null;
  announced = 0;
  private polling: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private tokens = 0;
  private lastTick = Date.now();
  private inFlightPuts = 0;
  private stopped = false;

  constructor(
    private readonly opts: MirrorOptions,
    private readonly dht: DHT,
    private readonly seeder: Seeder,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.followers = [...new Set(opts.bridges)].map((hex) => new Follower(Buffer.from(hex, 'hex'), opts.dir));
    this.putter = new ItemPutter(dht);
  }

  /** Seeds what earlier runs downloaded, loads the stored items, and starts polling and republishing. */
  async start(): Promise<void> {
    this.downloader = await WholeDownloader.start(this.dht, { downloadBytesPerSecond: this.opts.downloadBytesPerSecond, maxConns: 100 });
    for (const f of this.followers) {
      await mkdir(f.bundleDir, { recursive: true });
      await mkdir(f.catalogDir, { recursive: true });
      await this.loadItems(f);
      await this.seedFromDisk(f);
    }
    void this.pollAll();
    this.pollTimer = setInterval(() => void this.pollAll(), this.opts.pollIntervalMs);
    this.pollTimer.unref();
    this.putTimer = setInterval(() => this.tick(), 100);
    this.putTimer.unref();
    // The torrent client announces a torrent when it is added and then every 15 min; the DHT nodes
    // that held those announces may all be gone (the origin's too), so they are renewed with the items.
    this.announceTimer = setInterval(() => void this.announceAll(), this.opts.republishIntervalMs);
    this.announceTimer.unref();
  }

  /** Announces every mirrored bundle and catalog on the DHT (4 at a time). */
  announceAll(): Promise<void> {
    if (this.announcing) return this.announcing;
    const ihs = this.followers.flatMap((f) => [...f.held.keys(), ...(f.catalogIh ? [f.catalogIh] : [])]);
    let next = 0;
    const worker = async () => {
      while (next < ihs.length && !this.stopped && !this.dht.destroyed) {
        const ih = ihs[next++]!;
        await new Promise<void>((resolve) => {
          // bittorrent-dht's announce may never call back when its lookup finds nobody to ask.
          const timer = setTimeout(resolve, ANNOUNCE_TIMEOUT_MS);
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          // A fresh lookup first: bittorrent-dht announces to the nodes of its last lookup (kept
          // 5 min) with their write tokens, which nodes that restarted no longer accept.
          try {
            this.dht.lookup(ih, () => {
              if (this.dht.destroyed) return done();
              this.dht.announce(ih, this.opts.torrentPort(), (err?: Error | null) => {
                if (!err) this.announced++;
                done();
              });
            });
          } catch {
            done();
          }
        });
      }
    };
    this.announcing = Promise.all(Array.from({ length: Math.min(4, ihs.length) }, worker))
      .then(() => {})
      .finally(() => (this.announcing = null));
    return this.announcing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.putTimer) clearInterval(this.putTimer);
    if (this.announceTimer) clearInterval(this.announceTimer);
    await this.polling?.catch(() => {});
    await this.announcing?.catch(() => {});
    const deadline = Date.now() + 5000;
    while (this.inFlightPuts > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const f of this.followers) await this.saveItems(f).catch(() => {});
    await this.downloader?.close();
  }

  /** One poll of every followed bridge now (tests; the schedule does it every pollIntervalMs). */
  pollAll(): Promise<void> {
    if (this.polling) return this.polling;
    this.polling = (async () => {
      for (const f of this.followers) {
        if (this.stopped) break;
        try {
          await this.poll(f);
          f.lastError = null;
        } catch (err) {
          f.lastError = (err as Error)?.message ?? String(err);
          this.log.warn({ err, bridge: f.hex }, 'mirror poll failed');
        }
        f.lastPollAt = this.now();
        await this.saveItems(f).catch((err: unknown) => this.log.error({ err, bridge: f.hex }, 'saving mirrored items failed'));
      }
    })().finally(() => (this.polling = null));
    return this.polling;
  }

  /** Every stored item is due now (tests; after a long DHT outage). */
  republishAll(): void {
    for (const f of this.followers) for (const it of f.items.values()) it.putAt = 0;
  }

  status(): MirrorStatus {
    const now = this.now();
    return {
      downloadedBytes: this.downloader?.received ?? 0,
      announced: this.announced,
      bridges: this.followers.map((f) => {
        let oldest: number | null = null;
        for (const it of f.items.values()) if (oldest === null || it.putAt < oldest) oldest = it.putAt;
        let events = 0;
        for (const b of f.held.values()) events += b.events;
        const listed = f.catalog?.bundles.length ?? 0;
        const caughtUp = f.catalog !== null && f.stale === 0 && f.catalog.bundles.every((b) => f.held.has(b.ih));
        return {
          bridge: f.hex,
          catalog: f.catalogIh,
          itemSeq: f.itemSeq,
          bundles: { listed, held: f.held.size, bytes: f.heldBytes, events, refused: { ...f.refused } },
          items: {
            held: f.items.size,
            reput: f.reput,
            failed: f.failed,
            stale: f.stale,
            repaired: f.repaired,
            oldestPutAgeSec: oldest === null ? null : Math.round((now - oldest) / 1000),
          },
          lagSec: f.missingSince === null ? 0 : Math.round((now - f.missingSince) / 1000),
          caughtUp,
          lastPollAt: f.lastPollAt === null ? null : new Date(f.lastPollAt).toISOString(),
          lastError: f.lastError,
        };
      }),
    };
  }

  // --- reading the origin -------------------------------------------------------------------

  private async poll(f: Follower): Promise<void> {
    const got = await this.read(f, BRIDGE_SALT);
    if (typeof got === 'string') {
      // The origin may be gone: what is held stays seeded and its items stay re-put.
      if (got !== 'absent' && got !== 'timeout') throw new Error(`bridge item: ${got}`);
      if (!f.catalog) throw new Error(`no bridge item in the DHT (${got})`);
      return;
    }
    this.storeItem(f, BRIDGE_SALT, got.seq, got.v, got.sig);
    f.itemSeq = Math.max(f.itemSeq ?? 0, got.seq);
    const info = decodeBridgeValue(got.v);
    f.gateway = this.opts.webSeeds === false ? null : (info.gateway ?? null);
    if (!info.catalog) throw new Error('the bridge item names no catalog (an older bridge, or catalog.enabled = false)');
    const previous = f.catalog;
    if (info.catalog !== f.catalogIh) {
      if (f.badCatalog?.ih === info.catalog) throw new Error(f.badCatalog.why);
      let catalog: Catalog;
      try {
        catalog = await this.fetchCatalog(f, info.catalog);
      } catch (err) {
        const why = (err as Error).message;
        // Refused for what it is, not for a download that did not finish: not fetched again.
        if (!/: (timeout|no-peers|aborted|error):/.test(why)) f.badCatalog = { ih: info.catalog, why };
        throw err;
      }
      f.catalog = catalog;
      f.catalogIh = info.catalog;
      this.log.info({ bridge: f.hex, catalog: info.catalog, bundles: catalog.bundles.length }, 'mirror: new catalog');
    }
    const catalog = f.catalog!;
    // Authors whose bundles changed, any whose pointer could not be read before, and any whose
    // pointer disagrees with the catalog (a DHT node answered with an older version first).
    const due = new Set(changedAuthors(previous, catalog));
    for (const a of this.disagreeing(f, catalog)) {
      due.add(a);
      if (due.size >= STALE_REREADS_PER_POLL) break;
    }
    // Retired bundles go first (their bytes count against the quota of the new ones); the bundles
    // need nothing from the author items, so both are fetched at once.
    await this.dropUnlisted(f, catalog);
    await Promise.all([
      this.refreshAuthorItems(f, [...due].sort(), authorBundles(catalog)).then(() => {
        f.stale = this.disagreeing(f, catalog).length;
      }),
      this.fetchBundles(f, catalog),
    ]);
  }

  /** Authors whose stored page 0 is missing or lists another number of bundles than the catalog. */
  private disagreeing(f: Follower, catalog: Catalog): string[] {
    const counts = bundleCounts(catalog);
    const out: string[] = [];
    for (const [a, n] of counts) {
      const it = f.items.get(authorSalt(a, 0).toString('hex'));
      let listed = -1;
      try {
        if (it) listed = decodeAuthorPage(it.v).n;
      } catch {
        /* a bad value counts as disagreeing */
      }
      if (listed !== n) out.push(a);
    }
    return out;
  }

  private async fetchCatalog(f: Follower, ih: string): Promise<Catalog> {
    const r = await this.downloader!.download(
      ih,
      f.catalogDir,
      { maxMetadataBytes: 64 * 1024, maxBytes: this.opts.maxCatalogBytes, timeoutMs: this.opts.bundleTimeoutMs },
      (meta) =>
        meta.files.length === 1 && meta.files[0]!.name === `${f.hex}.jsonl`
          ? null
          : 'not a catalog of this bridge (one file named after the bridge key)',
      this.abort.signal,
      this.sources(f),
    );
    if (!r.ok) throw new Error(`catalog ${ih}: ${r.reason}: ${r.detail}`);
    f.notePeers(r.peers);
    let catalog: Catalog;
    try {
      catalog = decodeCatalog(await readFile(r.dataPath), f.hex, {
        maxBundles: this.opts.maxBundlesPerBridge,
        maxAuthorEntries: Math.floor(this.opts.maxCatalogBytes / 67) + 1,
      });
    } catch (err) {
      await this.removeFiles(f.catalogDir, ih);
      throw new Error(`catalog ${ih}: ${err instanceof BadCatalog ? err.message : String(err)}`);
    }
    // The mirror serves the catalog too, so readers and other mirrors find it with the origin gone.
    await this.seeder.seed({ infoHash: ih, torrent: r.torrent, dataPath: r.dataPath });
    if (f.catalogIh && f.catalogIh !== ih) {
      await this.seeder.unseed(f.catalogIh);
      await this.removeFiles(f.catalogDir, f.catalogIh);
    }
    return catalog;
  }

  /** Each author's pointer pages, as the origin signed them; an older seq never replaces a newer one. */
  private async refreshAuthorItems(f: Follower, authors: string[], listed: Map<string, Set<string>>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < authors.length && !this.stopped) {
        const author = authors[next++]!;
        // A page 0 that agrees with the catalog (as many bundles, each listed there for this author)
        // is the one expected: fewer nodes need to agree on it.
        const mine = listed.get(author);
        const first = await this.read(f, authorSalt(author, 0), (item) => {
          try {
            const page = decodeAuthorPage(item.v);
            return page.n === mine?.size && page.infoHashes.every((ih) => mine.has(ih));
          } catch {
            return false;
          }
        });
        if (typeof first === 'string') continue;
        this.storeItem(f, authorSalt(author, 0), first.seq, first.v, first.sig);
        let pages = 1;
        try {
          pages = decodeAuthorPage(first.v).pg;
        } catch {
          continue;
        }
        for (let p = 1; p < pages; p++) {
          const salt = authorSalt(author, p);
          const page = await this.read(f, salt);
          if (typeof page !== 'string') this.storeItem(f, salt, page.seq, page.v, page.sig);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(AUTHOR_ITEM_CONCURRENCY, authors.length) }, worker));
  }

  /** Where a download of this origin's may come from besides the DHT's peers. */
  private sources(f: Follower): DownloadSources {
    return {
      peers: f.peers,
      gateway: f.gateway && Date.now() >= f.gatewayDownUntil ? f.gateway : null,
      onGatewayDown: () => {
        f.gatewayDownUntil = Date.now() + GATEWAY_RETRY_MS;
      },
    };
  }

  /** One item of the origin's, the DHT's older copies met on the way replaced by the newest. */
  private async read(f: Follower, salt: Buffer, expected?: (item: SignedItem) => boolean) {
    const out = await readAndRepair(this.dht, f.key, salt, { timeoutMs: this.opts.itemTimeoutMs, expected });
    f.repaired += out.repaired;
    return out.item;
  }

  private storeItem(f: Follower, salt: Buffer, seq: number, v: unknown, sig: Buffer): void {
    const key = salt.toString('hex');
    const have = f.items.get(key);
    if (have && have.seq >= seq) return;
    // Just read from the DHT: it is stored there now; the republish clock starts here.
    f.items.set(key, { salt: Buffer.from(salt), seq, v, sig: Buffer.from(sig), putAt: this.now(), failures: 0 });
    f.itemsDirty = true;
  }

  // --- bundles ------------------------------------------------------------------------------

  private async fetchBundles(f: Follower, catalog: Catalog): Promise<void> {
    const wanted = catalog.bundles.filter((b) => !f.held.has(b.ih) && !f.refusedIhs.has(b.ih)).sort((a, b) => b.end - a.end);
    if (wanted.length === 0 && catalog.bundles.every((b) => f.held.has(b.ih))) f.missingSince = null;
    else f.missingSince ??= this.now();
    let next = 0;
    const worker = async () => {
      while (next < wanted.length && !this.stopped) {
        const b = wanted[next++]!;
        if (b.bytes > this.opts.maxBytesPerBridge) {
          f.refuse(b.ih, 'too-large');
          continue;
        }
        if (f.heldBytes + f.reserved + b.bytes > this.opts.maxBytesPerBridge) {
          f.refuse(b.ih, 'over-quota');
          continue;
        }
        f.overQuota.delete(b.ih);
        f.reserved += b.bytes;
        try {
          await this.fetchBundle(f, b);
        } finally {
          f.reserved -= b.bytes;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, wanted.length) }, worker));
    if (catalog.bundles.every((b) => f.held.has(b.ih))) f.missingSince = null;
  }

  private async fetchBundle(f: Follower, b: CatalogBundle): Promise<void> {
    // The disk quota holds against what is downloading too: a bundle's size is its catalog entry's, checked against its metadata.
    const r: DownloadResult = await this.downloader!.download(
      b.ih,
      f.bundleDir,
      {
        maxMetadataBytes: this.opts.maxMetadataBytes,
        maxBytes: Math.min(b.bytes, this.opts.maxBytesPerBridge),
        timeoutMs: this.opts.bundleTimeoutMs,
      },
      (meta) => catalogMismatch(b, meta),
      this.abort.signal,
      this.sources(f),
    );
    if (!r.ok) {
      f.refuse(b.ih, r.reason === 'too-large' ? 'refused' : r.reason);
      if (r.reason !== 'aborted')
        this.log.warn({ bridge: f.hex, bundle: b.ih, reason: r.reason, detail: r.detail }, 'mirror: bundle not fetched');
      return;
    }
    f.notePeers(r.peers);
    const verdict = await verifyBundleParallel(r.dataPath, r.meta.files, this.opts.maxEventBytes);
    if (!verdict.ok || verdict.events !== b.events) {
      f.refuse(b.ih, 'forged');
      this.log.warn(
        { bridge: f.hex, bundle: b.ih, problem: verdict.problem ?? `${verdict.events} events, the catalog says ${b.events}` },
        'mirror: bundle refused',
      );
      await this.removeFiles(f.bundleDir, b.ih);
      return;
    }
    await this.seeder.seed({ infoHash: b.ih, torrent: r.torrent, dataPath: r.dataPath });
    f.held.set(b.ih, { bytes: r.bytes, events: verdict.events });
  }

  /** Bundles the origin retired (a rewrite, a merge) are retired here too, once its catalog says so. */
  private async dropUnlisted(f: Follower, catalog: Catalog): Promise<void> {
    const listed = new Set(catalog.bundles.map((b) => b.ih));
    for (const ih of [...f.held.keys()]) {
      if (listed.has(ih)) continue;
      f.held.delete(ih);
      // One torrent client seeds each infohash once: not while this bridge or another followed one still has it.
      if (!this.opts.ownBundle?.(ih) && !this.followers.some((o) => o.held.has(ih))) await this.seeder.unseed(ih);
      await this.removeFiles(f.bundleDir, ih);
    }
    for (const ih of [...f.refusedIhs.keys()]) if (!listed.has(ih)) f.refusedIhs.delete(ih);
    for (const ih of [...f.overQuota]) if (!listed.has(ih)) f.overQuota.delete(ih);
  }

  private async removeFiles(dir: string, ih: string): Promise<void> {
    await rm(join(dir, `${ih}.data`), { force: true });
    await rm(join(dir, `${ih}.torrent`), { force: true });
  }

  /** Bundles downloaded by an earlier run, re-hashed as they are seeded (a crash may have cut a write). */
  private async seedFromDisk(f: Follower): Promise<void> {
    for (const name of await readdir(f.bundleDir)) {
      const m = /^([0-9a-f]{40})\.torrent$/.exec(name);
      if (!m) {
        if (name.endsWith('.part')) await rm(join(f.bundleDir, name), { force: true });
        continue;
      }
      const ih = m[1]!;
      const dataPath = join(f.bundleDir, `${ih}.data`);
      try {
        const torrent = await readFile(join(f.bundleDir, name));
        const layout = torrentLayout(torrent, ih);
        if ((await stat(dataPath)).size !== layout.length) throw new Error('data file of the wrong size');
        await this.seeder.seed({ infoHash: ih, torrent, dataPath, verify: true });
        const nameEvents = /-(\d+)$/.exec(layout.name);
        f.held.set(ih, { bytes: layout.length, events: nameEvents ? Number(nameEvents[1]) : 0 });
      } catch (err) {
        this.log.warn({ err, bridge: f.hex, bundle: ih }, 'mirror: a stored bundle is damaged; fetching it again');
        await this.removeFiles(f.bundleDir, ih);
      }
    }
  }

  // --- keeping the origin's items alive -----------------------------------------------------

  /** Items looked at per tick at most: with 100,000 authors a full scan every 100 ms would cost more than the puts. */
  private scanCursor: { f: number; it: Iterator<StoredItem> | null } = { f: 0, it: null };

  private tick(): void {
    if (this.stopped || this.dht.nodes.count() === 0 || this.followers.length === 0) return;
    const t = Date.now();
    this.tokens = Math.min(this.opts.putsPerSecond, this.tokens + ((t - this.lastTick) / 1000) * this.opts.putsPerSecond);
    this.lastTick = t;
    const now = this.now();
    const c = this.scanCursor;
    for (let looked = 0; looked < 5000 && this.tokens >= 1 && this.inFlightPuts < 32; looked++) {
      const f = this.followers[c.f % this.followers.length]!;
      c.it ??= f.items.values();
      const n = c.it.next();
      if (n.done) {
        c.it = null;
        c.f = (c.f + 1) % this.followers.length;
        if (c.f === 0) break; // one full round this tick
        continue;
      }
      const it = n.value;
      const due = now - it.putAt >= this.opts.republishIntervalMs || it.putAt > now;
      const backoff = it.failures > 0 && now - it.putAt < Math.min(600_000, 1000 * 2 ** Math.min(it.failures, 10));
      if (!due || backoff || (it as { putting?: boolean }).putting) continue;
      this.tokens -= 1;
      void this.reput(f, it);
    }
  }

  private async reput(f: Follower, it: StoredItem): Promise<void> {
    const marked = it as StoredItem & { putting?: boolean };
    marked.putting = true;
    this.inFlightPuts++;
    try {
      const out = await this.putter.put({ k: f.key, salt: it.salt, seq: it.seq, v: it.v, sig: it.sig });
      if (out.stored > 0) {
        f.reput++;
        it.failures = 0;
        it.putAt = this.now();
      } else {
        f.failed++;
        it.failures++;
        it.putAt = this.now() - this.opts.republishIntervalMs;
      }
    } catch {
      f.failed++;
      it.failures++;
    } finally {
      marked.putting = false;
      this.inFlightPuts--;
    }
  }

  // --- the items on disk (so a restarted mirror keeps an origin alive that is gone) ----------

  private itemsPath(f: Follower): string {
    return join(f.dir, 'items.bencode');
  }

  private async loadItems(f: Follower): Promise<void> {
    let raw: Buffer;
    try {
      raw = await readFile(this.itemsPath(f));
    } catch {
      return;
    }
    try {
      const list = bencode.decode(raw) as { salt: Uint8Array; seq: number; v: unknown; sig: Uint8Array }[];
      for (const e of list) {
        // Checked again: the file is ours, but a re-put of a bad item would only be refused.
        const ok = checkItem(
          { k: f.key, salt: Buffer.from(e.salt), seq: e.seq, v: e.v, sig: Buffer.from(e.sig) },
          f.key,
          Buffer.from(e.salt),
        );
        if (typeof ok === 'string') continue;
        f.items.set(Buffer.from(e.salt).toString('hex'), {
          salt: Buffer.from(e.salt),
          seq: e.seq,
          v: e.v,
          sig: Buffer.from(e.sig),
          putAt: 0,
          failures: 0,
        });
      }
    } catch (err) {
      this.log.warn({ err, bridge: f.hex }, 'mirror: stored items unreadable; reading them from the DHT again');
    }
  }

  private async saveItems(f: Follower): Promise<void> {
    if (!f.itemsDirty) return;
    f.itemsDirty = false;
    const list = [...f.items.values()].map((it) => ({ salt: it.salt, seq: it.seq, v: it.v, sig: it.sig }));
    const tmp = `${this.itemsPath(f)}.tmp`;
    await writeFile(tmp, bencode.encode(list));
    await rename(tmp, this.itemsPath(f));
  }
}

/** How many of the catalog's bundles hold each author (what the author's page 0 must say as `n`). */
function bundleCounts(catalog: Catalog): Map<string, number> {
  const counts = new Map<string, number>();
  for (const b of catalog.bundles) for (const a of b.authors) counts.set(a, (counts.get(a) ?? 0) + 1);
  return counts;
}

/** The catalog's bundles of each author. */
function authorBundles(catalog: Catalog): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const b of catalog.bundles)
    for (const a of b.authors) {
      let s = out.get(a);
      if (!s) out.set(a, (s = new Set()));
      s.add(b.ih);
    }
  return out;
}

/** Authors whose bundles differ between two catalogs (all of them the first time). */
function changedAuthors(before: Catalog | null, after: Catalog): string[] {
  const old = new Map((before?.bundles ?? []).map((b) => [b.ih, b]));
  const now = new Set(after.bundles.map((b) => b.ih));
  const out = new Set<string>();
  for (const b of after.bundles) if (!old.has(b.ih)) for (const a of b.authors) out.add(a);
  for (const [ih, b] of old) if (!now.has(ih)) for (const a of b.authors) out.add(a);
  return [...out].sort();
}
