// Publishes and republishes the bridge's BEP-44 items: one pointer per archived author (pages when
// the author's bundles do not fit one item) and one item describing the bridge.
//
// Changed items go first (an author is published at most once per coalescing window), then the
// stalest; every item is re-put at least once per republish interval, at a bounded rate of puts
// per second. Signed items and the seq counter live in LMDB, so items are re-put unchanged after
// a restart, and seq only grows even if the clock steps back.
import type DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import type { BridgeIdentity } from './identity.js';
import {
  authorPages,
  authorSalt,
  bridgeValue,
  BRIDGE_SALT,
  signedBytes,
  vSize,
  MAX_V_BYTES,
  type AuthorPage,
  type BridgeInfo,
} from '../formats/pointer-item.js';
import type { PointerRecord, Store } from '../index/store.js';
import type { ItemSigner } from '../index/pointer-records.js';
import { ItemPutter, type PutOutcome } from '../dht/put.js';
import { TypedEmitter } from '../common/typed-emitter.js';

export interface PublisherOptions {
  putsPerSecond: number;
  maxInFlight: number;
  republishIntervalMs: number;
  /** An author is published at most once per this many ms (the bundle window). */
  coalesceMs: number;
}

export interface PublisherStats {
  items: number;
  dirtyAuthors: number;
  published: number;
  republished: number;
  failed: number;
  stale: number;
  oldestPutAgeSec: number | null;
  dhtNodes: number;
  lastError: string | null;
}

/** One put of an item, as told to metrics and the log. */
export interface PutReport {
  /** The item's salt (hex), its key in the pointers table. */
  key: string;
  /** Some node stored it. */
  ok: boolean;
  nodes: number;
  /** A changed item (false: a republish). */
  fresh: boolean;
  ms: number;
  queries: number;
  reusedRoute: boolean;
}

/** What the publisher tells ops (sidecar.ts wires it). */
export interface PublisherEvents {
  put: [report: PutReport];
}

const TICK_MS = 50;
const SCAN_MS = 10_000;
const MAX_BACKOFF_MS = 10 * 60_000;
const STALE_MS = 2 * 3600_000;

export class Publisher extends TypedEmitter<PublisherEvents> {
  readonly counts = { published: 0, republished: 0, failed: 0 };
  lastError: string | null = null;
  private tokens = 0;
  private inFlight = 0;
  private lastPublished = new Map<string, number>();
  private republishQueue: string[] = [];
  private bridgeDirty = true;
  private lastBridgeAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private scanTimer: NodeJS.Timeout | null = null;
  private lastTick = Date.now();
  private stopped = false;
  private warnedNoNodes = false;
  /** authorsChanged() calls whose marks are not committed yet. */
  private marking = 0;
  private readonly putter: ItemPutter;
  /** Items being put right now: a scan must not queue them again (their putAt is not set yet). */
  private readonly putting = new Map<string, number>();
  /** The infohash of an author's media list (page 0's `m`), when media archiving is on. */
  mediaListOf: ((pubkey: string) => string | undefined) | null = null;

  constructor(
    private readonly store: Store,
    private readonly dht: DHT,
    private readonly identity: BridgeIdentity,
    private readonly opts: PublisherOptions,
    private readonly log: Logger,
    private readonly bridgeInfo: () => BridgeInfo,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.putter = new ItemPutter(dht);
  }

  start(): void {
    this.scan();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.scanTimer = setInterval(() => this.scan(), SCAN_MS);
    this.scanTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.scanTimer) clearInterval(this.scanTimer);
    const deadline = Date.now() + 5000;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /** The bundler changed these authors' bundle lists. */
  async authorsChanged(pubkeys: Iterable<string>): Promise<void> {
    const at = this.now();
    this.bridgeDirty = true;
    this.marking++;
    try {
      await this.store.pointers.markDirty(pubkeys, at);
    } finally {
      this.marking--;
    }
  }

  /** Something the bridge item shows changed (a new catalog). */
  bridgeChanged(): void {
    this.bridgeDirty = true;
  }

  /** Resolves when nothing is dirty or in flight (tests, demo). Bounded by `timeoutMs`. */
  async idle(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.store.pointers.hasDirty() && !this.bridgeDirty && this.inFlight === 0 && this.marking === 0) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }

  /** Queues every stored item for an immediate re-put (tests; after a long DHT outage). */
  republishAll(): void {
    this.republishQueue = [...this.store.pointers.keys()];
  }

  stats(): PublisherStats {
    const now = this.now();
    let items = 0;
    let stale = 0;
    let oldest: number | null = null;
    for (const [, value] of this.store.pointers.all()) {
      items++;
      // An item never stored yet counts from when it was signed.
      const at = value.putAt || value.changedAt;
      if (now - at > STALE_MS) stale++;
      if (oldest === null || at < oldest) oldest = at;
    }
    return {
      items,
      dirtyAuthors: this.store.pointers.dirtyCount(),
      published: this.counts.published,
      republished: this.counts.republished,
      failed: this.counts.failed,
      stale,
      oldestPutAgeSec: oldest === null ? null : Math.round((now - oldest) / 1000),
      dhtNodes: this.dht.nodes.count(),
      lastError: this.lastError,
    };
  }

  private tick(): void {
    if (this.stopped) return;
    const t = Date.now();
    this.tokens = Math.min(this.opts.putsPerSecond, this.tokens + ((t - this.lastTick) / 1000) * this.opts.putsPerSecond);
    this.lastTick = t;
    if (this.dht.nodes.count() === 0) {
      if (!this.warnedNoNodes) {
        this.warnedNoNodes = true;
        this.lastError = 'no DHT nodes reachable';
        this.log.warn('no DHT nodes reachable: pointers wait until the DHT answers');
      }
      return;
    }
    this.warnedNoNodes = false;
    while (this.tokens >= 1 && this.inFlight < this.opts.maxInFlight) {
      const task = this.nextTask();
      if (!task) break;
      this.tokens -= 1;
      this.inFlight++;
      void task().finally(() => {
        this.inFlight--;
      });
    }
  }

  private nextTask(): (() => Promise<void>) | null {
    const now = this.now();
    for (const pubkey of this.store.pointers.dirtyAuthors(64)) {
      if (within(this.lastPublished.get(pubkey) ?? 0, now, this.opts.coalesceMs)) continue;
      this.lastPublished.set(pubkey, now);
      return () => this.publishAuthor(pubkey);
    }
    if (this.bridgeDirty && !within(this.lastBridgeAt, now, this.opts.coalesceMs)) {
      this.bridgeDirty = false;
      this.lastBridgeAt = now;
      return () => this.publishBridge();
    }
    while (this.republishQueue.length > 0) {
      const key = this.republishQueue.shift()!;
      const rec = this.store.pointers.get(key);
      if (!rec || backingOff(rec.retryAt, now) || this.putting.has(key)) continue;
      return () => this.put(key, rec, false);
    }
    return null;
  }

  /** Items not stored for a republish interval (or never), stalest first. */
  private scan(): void {
    const now = this.now();
    const due: [number, string][] = [];
    for (const [key, value] of this.store.pointers.all()) {
      if (this.putting.has(key)) continue;
      if (!within(value.putAt, now, this.opts.republishIntervalMs) && !backingOff(value.retryAt, now)) due.push([value.putAt, key]);
    }
    due.sort((a, b) => a[0] - b[0]);
    const queued = new Set(this.republishQueue);
    for (const [, key] of due) if (!queued.has(key)) this.republishQueue.push(key);
  }

  private async publishAuthor(pubkey: string): Promise<void> {
    const infoHashes = [...this.store.bundles.authorBundles(pubkey)];
    const media = this.mediaListOf?.(pubkey);
    let pages: AuthorPage[];
    try {
      pages = authorPages(infoHashes, media);
    } catch (err) {
      this.log.error({ err, author: pubkey }, 'author pointer does not fit; publishing the newest bundles only');
      pages = authorPages(infoHashes.slice(0, 16 * 40), media);
    }
    const since = this.store.pointers.dirtySince(pubkey);
    // The mark is cleared only if nothing changed again meanwhile.
    const records = await this.store.pointers.signAndStore(
      pages.map((v, page) => this.signer(authorSalt(pubkey, page), v)),
      { pubkey, since },
    );
    for (const [key, rec] of records) await this.put(key, rec, true);
  }

  private async publishBridge(): Promise<void> {
    const v = bridgeValue(this.bridgeInfo());
    for (const [key, rec] of await this.store.pointers.signAndStore([this.signer(BRIDGE_SALT, v)])) await this.put(key, rec, true);
  }

  /** Signs an item inside the transaction that stores it: next seq (persisted), signature. */
  private signer(salt: Buffer, v: unknown): ItemSigner {
    return (takeSeq) => {
      if (vSize(v) > MAX_V_BYTES) throw new Error('BEP-44 value over 1000 bytes');
      const seq = takeSeq(this.now() * 1000);
      const sig = this.identity.sign(signedBytes(salt, seq, v));
      return [salt.toString('hex'), { salt, v, seq, sig, changedAt: this.now(), putAt: 0, nodes: 0, failures: 0, retryAt: 0 }];
    };
  }

  private async put(key: string, rec: PointerRecord, fresh: boolean): Promise<void> {
    const started = Date.now();
    this.putting.set(key, (this.putting.get(key) ?? 0) + 1);
    let out: PutOutcome;
    try {
      out = await this.putter.put({ k: this.identity.publicKey, salt: rec.salt, seq: rec.seq, v: rec.v, sig: rec.sig });
    } catch (err) {
      out = { stored: 0, holders: [], reached: 0, queries: 0, reusedRoute: false, error: (err as Error).message ?? String(err) };
    }
    // A put that no node stored is a failure: retried with backoff, not left until the republish.
    const ok = out.stored > 0;
    await this.record(key, rec.seq, ok, out.stored, out.error).catch((err: unknown) => this.log.error({ err }, 'recording a put failed'));
    const n = this.putting.get(key)! - 1;
    if (n > 0) this.putting.set(key, n);
    else this.putting.delete(key);
    if (ok) {
      if (fresh) this.counts.published++;
      else this.counts.republished++;
    } else this.counts.failed++;
    this.emit('put', { key, ok, nodes: out.stored, fresh, ms: Date.now() - started, queries: out.queries, reusedRoute: out.reusedRoute });
  }

  private async record(key: string, seq: number, ok: boolean, nodes: number, err: string | null): Promise<void> {
    const now = this.now();
    if (!ok) {
      this.lastError = err ?? 'put failed';
      this.log.warn({ item: key.slice(0, 16), err: this.lastError }, 'pointer put failed; will retry');
    } else this.lastError = null;
    await this.store.pointers.recordPut(key, seq, (cur) => {
      const failures = ok ? 0 : cur.failures + 1;
      return {
        ...cur,
        putAt: ok ? now : cur.putAt,
        nodes: ok ? nodes : cur.nodes,
        failures,
        retryAt: ok ? 0 : now + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures, 10)),
      };
    });
    if (!ok) {
      // Back into the queue; the scan picks it up again after its backoff.
      this.republishQueue.push(key);
    }
  }
}

// Timestamps come from the wall clock, which NTP may step back: a time "in the future" is treated
// as long ago, so a step back never holds a publication or a republish until the clock catches up.

/** `t` lies within the last `ms` before `now`. */
function within(t: number, now: number, ms: number): boolean {
  return t <= now && now - t < ms;
}

/** A retry time not reached yet (and no further away than any backoff could have set it). */
function backingOff(retryAt: number, now: number): boolean {
  return retryAt > now && retryAt - now <= MAX_BACKOFF_MS;
}
