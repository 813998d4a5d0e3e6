// The sidecar daemon, assembled: socket + spool drain → ingest (judge) → LMDB index → bundler →
// seeder → pointer publisher, with status, metrics, the HTTP gateway and reload around it.
// `nostr-bt-sidecar` (main.ts) and the tests start it through this class. The stages meet only at the seams listed
// in docs/architecture.md ("Seams between stages"); every one of them is wired in this file.
import { writeFile, unlink, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './common/config.js';
import type DHT from 'bittorrent-dht';
import { Bundler } from './bundles/bundler.js';
import { startDhtNode, stopDhtNode, storedOwnItems } from './publishing/dht-node.js';
import { Ingestor } from './ingest/ingestor.js';
import { describeOrigin, loadIdentity, type BridgeIdentity } from './publishing/identity.js';
import { zbase32 } from './formats/zbase32.js';
import { DataDirError, DataDirLock } from './ops/data-dir-lock.js';
import { constants as osConstants } from 'node:os';
import { Publisher, type PublisherOptions } from './publishing/publisher.js';
import { SidecarMetrics } from './ops/metrics.js';
import { applyKeys, diffConfig, type ConfigChanges } from './ops/reload.js';
import { applyHeapGrowth } from './ops/heap-growth.js';
import { IngestServer } from './ingest/socket-server.js';
import { initSignatureCheck } from './formats/nostr-event.js';
import { Quarantine } from './ingest/quarantine.js';
import { Reconciler } from './backfill/reconcile.js';
import { CheckpointStore } from './index/checkpoints.js';
import { SpoolDrainer } from './ingest/spool-drain.js';
import { memoryStatus, statusFromStore, type Status } from './ops/status.js';
import { Store } from './index/store.js';
import { quiesceWrites } from './index/lmdb-quiesce.js';
import { WebTorrentSeeder } from './seeding/seeder.js';
import { MediaArchiver } from './media/media-archiver.js';
import { Discovery } from './discovery/discovery.js';
import { mediaOptionsOf } from './media/options.js';
import { HttpServer } from './http/server.js';
import { RouteTable } from './http/routes.js';
import { statusRoutes } from './http/status-routes.js';
import { Gateway } from './http/gateway.js';
import { CatalogPublisher } from './bundles/catalog.js';
import { Mirror } from './mirror/mirror.js';
import { zbase32Decode } from './formats/zbase32.js';

export { splitHostPort } from './http/server.js';

export interface SidecarOptions {
  /** Test hook: the clock used by the content policy (unix seconds). */
  nowSec?: () => number;
  /** Serve /status over HTTP (default true). */
  statusHttp?: boolean;
  /** Test hook: the bundler's wall clock (ms). */
  nowMs?: () => number;
  /** Cut windows and compact on timers (default true; tests may drive the bundler by hand). */
  bundleSchedule?: boolean;
  /** Told what start() is doing (systemd STATUS= lines). */
  progress?: (what: string) => void;
}

export class Sidecar {
  readonly store: Store;
  readonly ingestor: Ingestor;
  readonly quarantine: Quarantine;
  readonly drainer: SpoolDrainer;
  readonly server: IngestServer;
  /** Backfill checkpoints in the index: the socket's backfill connections and the reconciler use them. */
  private readonly checkpoints: CheckpointStore;
  dht: DHT | null = null;
  seeder: WebTorrentSeeder | null = null;
  bundler: Bundler | null = null;
  publisher: Publisher | null = null;
  identity: BridgeIdentity | null = null;
  /** Runs `strfry export` on start and on a schedule when `reconcile.strfry` is set. */
  reconciler: Reconciler | null = null;
  /** The bridge catalog (docs/protocol.md §11) when `catalog.enabled`. */
  catalog: CatalogPublisher | null = null;
  /** Mirrors the bridges of `mirror.bridges` (their bundles, catalog and signed items). */
  mirror: Mirror | null = null;
  /** Fetches, verifies and seeds the media archived events reference when `media.enabled`. */
  media: MediaArchiver | null = null;
  /** The discovery beacon and its DHT announce (`discovery.enabled` with the DHT on). */
  discovery: Discovery | null = null;
  readonly metrics: SidecarMetrics;
  /** Read live by the publisher, so SIGHUP can change the DHT pace. */
  private publisherOptions: PublisherOptions | null = null;
  private http: HttpServer | null = null;
  gateway: Gateway | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();
  /** Held from construction to the end of stop(): one sidecar per data directory (and index). */
  private readonly lock: DataDirLock;

  /**
   * Takes the data directory's lock first (DataDirLockedError if another sidecar holds it,
   * DataDirError if the directory cannot be created or written), then opens the index.
   */
  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly opts: SidecarOptions = {},
  ) {
    this.lock = DataDirLock.acquire(config.dataDir);
    try {
      this.store = Store.open(config.indexDir);
    } catch (err) {
      this.lock.release();
      throw indexOpenError(config.indexDir, err);
    }
    if (this.store.upgraded) log.info({ ...this.store.upgraded, ms: Math.round(this.store.upgraded.ms) }, 'index upgraded in place');
    this.checkpoints = new CheckpointStore(this.store.root);
    // The front of the pipeline, which exists from construction (status, unflushed() and
    // abandon() read it even when start() fails); it takes lines once start() opens the socket.
    // ingest → index: the ingestor commits each judged batch through the store (IndexWriter).
    this.quarantine = new Quarantine(config.quarantineDir, config.ingest.quarantineMaxBytes, log);
    this.ingestor = new Ingestor(this.store, this.quarantine, config, log, opts.nowSec);
    // spool drain → ingest (SpoolIntake): finished spool files, each deleted once committed.
    this.drainer = new SpoolDrainer(config.spool.dir, this.ingestor, config.spool.scanIntervalMs, log);
    // socket → ingest (SocketIntake), acks back per connection; a connecting plugin makes the
    // drain scan; backfill connections read and save their checkpoints in the index.
    this.server = new IngestServer(
      { path: config.socket.path, mode: config.socket.mode, group: config.socket.group, maxLineBytes: config.ingest.maxLineBytes },
      this.ingestor,
      this.quarantine,
      log,
      () => void this.drainer.trigger(),
      this.checkpoints,
    );
    this.metrics = new SidecarMetrics(() => this.status());
  }

  async start(): Promise<void> {
    const progress = this.opts.progress ?? (() => {});
    applyHeapGrowth(this.config.service.heapGrowthPercent);
    await initSignatureCheck();
    this.identity = loadIdentity({
      nostrKeyFile: this.config.bridge.nostrKeyFile || undefined,
      generatedKeyFile: join(this.config.dataDir, 'bridge.key'),
    });
    this.log.info(
      {
        bridgeKey: this.identity.publicKey.toString('hex'),
        z32: zbase32(this.identity.publicKey),
        keyOrigin: this.identity.origin,
        keyFile: this.identity.path,
      },
      `bridge key ${this.identity.publicKey.toString('hex')}: ${describeOrigin(this.identity)}`,
    );
    progress('starting the DHT node and the torrent client');
    if (this.config.dht.enabled)
      this.dht = await startDhtNode(this.config.dht, this.log, { ownItems: storedOwnItems(this.store, this.identity.publicKey) });
    // The gateway before the seeder: its WebSocket tracker is where the seeder announces to browsers.
    if (this.config.gateway.listen) {
      this.gateway = await Gateway.start({
        config: this.config,
        store: this.store,
        bridgeKey: this.identity.publicKey,
        dht: () => this.dht,
        log: this.log,
        isSeeded: (ih) => this.seeder?.client.torrents.some((t) => t.infoHash === ih) ?? false,
        media: () => this.media,
        catalog: () => this.catalog?.files ?? null,
      });
    }
    const trackerUrl = this.gateway?.localTrackerUrl;
    const g = this.config.gateway;
    const webrtc = trackerUrl
      ? { announce: [trackerUrl], maxPeers: g.webrtcMaxPeers, maxPeersPerTorrent: g.webrtcMaxPeersPerBundle }
      : undefined;
    const seeder = (this.seeder = await WebTorrentSeeder.start({ ...this.config.bittorrent, webrtc }, this.dht, this.log));

    // The rest of the pipeline, in the order an event travels (the front is built in the constructor).
    // bundler → seeder (the bundler's Seeder): indexed events become bundle torrents, seeded.
    const b = this.config.bundle;
    const bundler = (this.bundler = new Bundler(
      this.store,
      seeder,
      {
        root: b.dir,
        windowMs: b.windowSeconds * 1000,
        windowMaxBytes: b.windowMaxBytes,
        maxBundleBytes: b.maxBundleBytes,
        maxActiveTorrents: b.maxActiveTorrents,
        rewriteIntervalMs: b.rewriteIntervalSeconds * 1000,
      },
      this.log,
      this.opts.nowMs,
    ));
    // bundler → publisher ('authors'): the pointers of authors whose bundles changed are put
    // again; the bridge item describes the archive as the bundler and the index have it.
    if (this.dht) {
      this.publisherOptions = {
        putsPerSecond: this.config.dht.putsPerSecond,
        maxInFlight: this.config.dht.maxInFlightPuts,
        republishIntervalMs: this.config.dht.republishIntervalSeconds * 1000,
        coalesceMs: b.windowSeconds * 1000,
      };
      const publisher = (this.publisher = new Publisher(
        this.store,
        this.dht,
        this.identity,
        this.publisherOptions,
        this.log,
        () => ({
          relayUrl: this.config.policy.relayUrl,
          authors: this.countPointerAuthors(),
          events: this.store.eventCount(),
          bundles: bundler.activeCount,
          newest: bundler.summary().newest,
          catalog: this.catalog?.infoHash ?? null,
          gateway: this.config.gateway.publicUrl || null,
        }),
        this.opts.nowMs,
      ));
      bundler.on('authors', (pubkeys) => void publisher.authorsChanged(pubkeys));
      // publisher → metrics ('put').
      publisher.on('put', (p) => {
        this.metrics.observePut(p.ok, p.nodes);
        this.log.debug({ item: p.key.slice(0, 16), ok: p.ok, nodes: p.nodes, fresh: p.fresh }, 'pointer put');
      });
    }
    // bundler → metrics ('bundle', 'retired').
    bundler.on('bundle', () => this.metrics.bundlesBuilt++);
    bundler.on('retired', () => this.metrics.bundlesRetired++);
    progress('seeding bundles from disk');
    await bundler.start({ schedule: this.opts.bundleSchedule });
    // bundler → catalog ('bundle', 'retired'); catalog → publisher: a new catalog is named by the bridge item.
    if (this.config.catalog.enabled) {
      const catalog = (this.catalog = new CatalogPublisher(
        this.store,
        bundler,
        seeder,
        {
          dir: join(this.config.dataDir, 'catalog'),
          intervalMs: this.config.catalog.intervalSeconds * 1000,
          bridge: this.identity.publicKey.toString('hex'),
        },
        this.log,
        this.opts.nowMs,
      ));
      bundler.on('bundle', () => catalog.changed());
      bundler.on('retired', () => catalog.changed());
      catalog.on('catalog', () => this.publisher?.bridgeChanged());
      await catalog.start();
    }
    this.publisher?.start();
    // ingest → bundler, metrics ('batch'): newly indexed bytes bring the next size cut closer.
    this.ingestor.on('batch', (r) => {
      this.metrics.observeIngest(r.latencies);
      this.log.debug({ lines: r.lines, outcomes: r.outcomes }, 'batch committed');
      bundler.noteIndexed(r.indexedBytes);
    });
    // DHT + seeder → mirror: other bridges' archives, seeded here and their items re-put.
    if (this.dht && this.config.mirror.bridges.length > 0) {
      const m = this.config.mirror;
      const own = this.identity.publicKey.toString('hex');
      const bridges = m.bridges.map((k) => (k.length === 64 ? k.toLowerCase() : zbase32Decode(k).toString('hex'))).filter((k) => k !== own);
      if (bridges.length < m.bridges.length) this.log.warn('mirror.bridges lists this bridge itself: ignored');
      progress('seeding mirrored bundles from disk');
      this.mirror = new Mirror(
        {
          bridges,
          dir: join(this.config.dataDir, 'mirror'),
          maxBytesPerBridge: m.maxBytesPerBridge,
          maxBundlesPerBridge: m.maxBundlesPerBridge,
          maxCatalogBytes: m.maxCatalogBytes,
          maxMetadataBytes: 4 * 1024 * 1024,
          maxEventBytes: Math.max(this.config.ingest.maxEventBytes, 1024 * 1024),
          downloadBytesPerSecond: m.downloadBytesPerSecond,
          concurrency: m.concurrency,
          pollIntervalMs: m.pollIntervalSeconds * 1000,
          republishIntervalMs: m.republishIntervalSeconds * 1000,
          putsPerSecond: m.putsPerSecond,
          bundleTimeoutMs: m.bundleTimeoutSeconds * 1000,
          itemTimeoutMs: 20_000,
          torrentPort: () => seeder.port,
          ownBundle: (ih) => this.store.bundles.get(ih)?.state === 'active',
          webSeeds: m.webSeeds,
        },
        this.dht,
        seeder,
        this.log,
        this.opts.nowMs,
      );
      await this.mirror.start();
    }
    if (this.config.media.enabled) {
      progress('seeding media blobs from disk');
      const sweepIntervalMs = b.rewriteIntervalSeconds * 1000;
      const publisher = this.publisher;
      this.media = await MediaArchiver.open({
        dataDir: this.config.dataDir,
        store: this.store,
        seeder: this.seeder,
        log: this.log,
        options: mediaOptionsOf(this.config.media),
        sweepIntervalMs,
        // media → publisher: an author's pointer names their media list (page 0's `m`).
        onListsChanged: (authors) => void publisher?.authorsChanged(authors),
      });
      if (publisher) publisher.mediaListOf = (pk) => this.media?.mediaListOf(pk);
      await this.media.start();
      // ingest → media ('batch'): newly indexed events may reference blobs.
      this.ingestor.on('batch', (r) => (r.outcomes.indexed ? this.media?.noteIndexed() : undefined));
    }
    // Lines come in from here on: the socket, the spool drain, and reconciliation → ingest
    // (ChannelIntake), which replays `strfry export` from its checkpoint.
    await this.server.listen();
    this.drainer.start();
    if (this.config.reconcile.strfry) {
      this.reconciler = new Reconciler(
        this.config.reconcile,
        this.checkpoints,
        this.ingestor,
        this.config.ingest.maxLineBytes,
        this.log,
        this.opts.nowSec,
      );
      this.reconciler.start();
    }
    this.scheduleExpiry();
    if (this.opts.statusHttp !== false) await this.startHttp();
    if (this.dht && this.config.discovery.enabled) {
      this.discovery = await Discovery.start(this.config.discovery, this.config.gateway.publicUrl, this.dht, this.identity, this.log);
    }
    await writeFile(
      this.runtimeFile,
      JSON.stringify({
        pid: process.pid,
        startedAt: new Date(this.startedAt).toISOString(),
        status: this.statusAddress,
        socket: this.config.socket.path,
        torrentPort: this.seeder.port,
        dhtPort: this.dht?.address().port ?? null,
        gateway: this.gateway?.address ?? null,
        beaconPort: this.discovery?.port ?? null,
      }) + '\n',
    );
    this.log.info(
      {
        socket: this.config.socket.path,
        dataDir: this.config.dataDir,
        status: this.statusAddress,
        torrentPort: this.seeder.port,
        dhtPort: this.dht?.address().port,
      },
      'sidecar ready',
    );
  }

  /** host:port the status endpoint listens on (resolved when the config says port 0). */
  statusAddress: string | null = null;

  get runtimeFile(): string {
    return join(this.config.dataDir, 'sidecar.json');
  }

  status(): Status {
    const pointers = this.publisher?.stats();
    const republishSec = this.config.dht.republishIntervalSeconds;
    return statusFromStore(this.store, {
      sidecar: 'up',
      process: { pid: process.pid, startedAt: new Date(this.startedAt).toISOString() },
      dataDir: this.config.dataDir,
      socket: this.config.socket.path,
      uptimeSec: Math.round((Date.now() - this.startedAt) / 1000),
      spool: {
        ...this.drainer.depth,
        draining: true,
        drainedFiles: this.drainer.stats.filesDrained,
        drainedLines: this.drainer.stats.linesDrained,
      },
      ingest: {
        backlog: this.ingestor.backlog,
        connections: this.server.connections,
        error: this.ingestor.lastError,
        latency: this.metrics.ingestLatency(),
        unacknowledged: this.ingestor.unacknowledged,
        lagSeconds: Math.round(this.ingestor.lagSeconds * 1000) / 1000,
        acceptLagSeconds: Math.round(this.ingestor.acceptLagSeconds * 1000) / 1000,
      },
      bundles: this.bundler
        ? { ...this.bundler.summary(), built: this.metrics.bundlesBuilt, retired: this.metrics.bundlesRetired }
        : undefined,
      seeding: this.seeder ? { ...this.seeder.stats(), port: this.seeder.port } : undefined,
      dht: this.dht ? { nodes: this.dht.nodes.count(), ready: this.dht.ready } : undefined,
      bridge: this.identity ? { publicKey: this.identity.publicKey.toString('hex') } : undefined,
      pointers: pointers && {
        ...pointers,
        republishLagSec: pointers.oldestPutAgeSec === null ? null : Math.max(0, pointers.oldestPutAgeSec - republishSec),
        putNodes: this.metrics.putNodes(),
      },
      reconcile: this.reconciler?.status(),
      media: this.media?.status(),
      discovery: this.discovery?.status(),
      catalog: this.catalog?.status(),
      mirror: this.mirror?.status(),
      gateway: this.gateway?.status(),
      memory: memoryStatus(),
    });
  }

  /**
   * SIGHUP: applies the changes that are safe while running (log level, content policy, DHT
   * pace, ...) and reports the ones that need a restart. `next` is the freshly loaded config.
   */
  reload(next: Config): ConfigChanges {
    const changes = diffConfig(this.config, next);
    applyKeys(this.config, next, changes.reloadable);
    if (changes.reloadable.includes('log.level')) this.log.level = this.config.log.level;
    if (changes.reloadable.some((k) => k.startsWith('policy.') || k === 'ingest.maxEventBytes')) {
      this.ingestor.setPolicy(this.config.policy, this.config.ingest.maxEventBytes);
    }
    if (changes.reloadable.some((k) => k === 'policy.dropExpired' || k === 'policy.expirySweepIntervalMs')) this.scheduleExpiry();
    if (changes.reloadable.includes('service.heapGrowthPercent')) applyHeapGrowth(this.config.service.heapGrowthPercent);
    if (this.publisherOptions) {
      this.publisherOptions.putsPerSecond = this.config.dht.putsPerSecond;
      this.publisherOptions.maxInFlight = this.config.dht.maxInFlightPuts;
    }
    return changes;
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiryTimer = null;
    if (this.config.policy.dropExpired) {
      this.expiryTimer = setInterval(() => void this.sweepExpired(), this.config.policy.expirySweepIntervalMs);
      this.expiryTimer.unref();
    }
  }

  /** Authors with a published pointer. */
  private countPointerAuthors(): number {
    return this.store.pointers.authorCount();
  }

  async sweepExpired(): Promise<number> {
    const nowSec = this.opts.nowSec?.() ?? Math.floor(Date.now() / 1000);
    try {
      const n = await this.store.sweepExpired(nowSec);
      if (n > 0) this.log.info({ removed: n }, 'expired events removed');
      return n;
    } catch (err) {
      this.log.error({ err }, 'expiry sweep failed');
      return 0;
    }
  }

  /** What stop() is doing (null before it starts): named in the log when the stop deadline passes. */
  stopPhase: string | null = null;

  /** Graceful stop: no new input, everything received committed, index closed. */
  async stop(): Promise<void> {
    const phase = (p: string) => (this.stopPhase = p);
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    phase('closing the ingest socket');
    await this.server.close();
    phase('stopping the strfry reconciler');
    await this.reconciler?.stop();
    phase('draining the spool');
    // Half the stop deadline: the rest of the stop (commit, last cut, closes) keeps the other half.
    await this.drainer.stop((this.config.service.stopTimeoutSeconds * 1000) / 2);
    phase('committing received lines to the index');
    await this.ingestor.idle();
    this.ingestor.stop();
    phase('finishing the current bundle');
    await this.bundler?.stop();
    phase('stopping the catalog');
    await this.catalog?.stop();
    phase('stopping the pointer publisher');
    await this.publisher?.stop();
    phase('stopping the mirror');
    await this.mirror?.stop();
    phase('stopping media fetches');
    await this.media?.stop();
    phase('stopping the discovery beacon');
    await this.discovery?.stop();
    phase('closing the torrent client');
    await this.seeder?.stop();
    phase('closing the DHT node');
    if (this.dht) await stopDhtNode(this.dht);
    phase('flushing the quarantine');
    await this.quarantine.flush();
    await this.gateway?.close();
    await this.http?.close();
    await this.removeRuntimeFile();
    phase('closing the index');
    await this.store.close();
    this.lock.release();
    this.log.info('sidecar stopped');
  }

  /** Lets go of the data directory's lock (stop() does; main.ts also on any exit). Idempotent. */
  releaseLock(): void {
    this.lock.release();
  }

  /** Removes sidecar.json if it is this process's (never another sidecar's). */
  private async removeRuntimeFile(): Promise<void> {
    try {
      const rt = JSON.parse(await readFile(this.runtimeFile, 'utf8')) as { pid?: unknown };
      if (rt.pid === process.pid) await unlink(this.runtimeFile);
    } catch {
      /* none, or unreadable */
    }
  }

  /** What a stop that could not finish leaves behind (for the log line). */
  unflushed(): { phase: string | null; uncommittedLines: number; spoolFiles: number; ingestError: string | null } {
    return {
      phase: this.stopPhase,
      uncommittedLines: this.ingestor.unacknowledged,
      spoolFiles: this.drainer.depth.files,
      ingestError: this.ingestor.lastError,
    };
  }

  /**
   * After a stop that could not finish: stops ingest retries and spool scans, refuses new index
   * writes and waits for the ones in flight to commit or fail. Only then may the process exit
   * (see common/exit-safely.ts).
   */
  async abandon(): Promise<void> {
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.ingestor.stop();
    void this.drainer.stop();
    await quiesceWrites(this.store.root);
  }

  private async startHttp(): Promise<void> {
    const routes = statusRoutes(
      { status: () => this.status(), metrics: () => this.metrics.render(), ingestError: () => this.ingestor.lastError },
      this.log,
    );
    this.http = await HttpServer.start({ listen: this.config.status.listen, table: new RouteTable(routes, this.log), log: this.log });
    this.statusAddress = this.http.address;
  }
}

/**
 * An index that cannot be opened for lack of permission, space or a usable path becomes a
 * DataDirError naming the index (lmdb reports a bare errno number and no path); anything else
 * (a damaged index, a bug) is passed on as it is.
 */
function indexOpenError(indexDir: string, err: unknown): unknown {
  const e = err as Omit<NodeJS.ErrnoException, 'code'> & { code?: unknown };
  const name =
    typeof e?.code === 'string'
      ? e.code
      : typeof e?.code === 'number'
        ? Object.entries(osConstants.errno).find(([, n]) => n === e.code)?.[0]
        : undefined;
  if (!name || !['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'ENOSPC', 'EDQUOT', 'ENOENT', 'ELOOP', 'EAGAIN'].includes(name))
    return err;
  if (typeof e.code === 'string') return new DataDirError(e.path ?? indexDir, e as NodeJS.ErrnoException, 'cannot open the index at');
  return new DataDirError(indexDir, Object.assign(new Error(`${name}: ${e.message}`), { code: name }), 'cannot open the index at');
}
