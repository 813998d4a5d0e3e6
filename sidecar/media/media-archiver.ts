// Media archiving, assembled (docs/protocol.md §8): newly indexed events → their media references →
// the fetch queue → verified blobs on disk → seeded torrents; and the way back out when the events
// that reference a blob leave the archive.
//
// Reading: after each committed batch the archiver reads the index from its cursor (a sequence
// number kept in the media index) to the last committed event, so nothing is skipped across
// restarts and ingest never waits: the scan runs after the commit on its own, enqueue() never
// blocks, and a full queue drops the job and counts it. Only committed rows are visible and
// commits land in sequence order, so the cursor moves to just past the highest row seen.
//
// Removal: deletions (NIP-09), vanish requests (NIP-62), expiry (NIP-40) and replacement remove
// events from the index and bump its `removed.*` counters. Every `sweepIntervalMs` (the bundles'
// rewrite interval: media leaves the swarm within the same bound as the events), if those
// counters moved, the archiver checks each referencing event is still indexed; a blob that no
// indexed event references any more is unseeded and deleted.
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Store } from '../index/store.js';
import type { Seeder } from '../bundles/bundler.js';
import { join } from 'node:path';
import { BlobStore, mediaRoot, type StoredBlob } from './blob-store.js';
import { MediaLists } from './media-lists.js';
import { blobFetchWorker } from './blob-fetcher.js';
import { FetchQueue, type FetchJob, type FetchQueueStats, type JobOutcome } from './fetch-queue.js';
import { MediaIndex } from './media-index.js';
import type { MediaOptions } from './options.js';
import { mediaReferences, type MediaRef } from './references.js';
import { checkFetchPolicy, type Resolver } from './safe-fetch.js';

/** A blob on disk as the gateway serves it (the same shape as http/blossom-routes.ts's LocalBlob). */
export interface LocalBlob {
  path: string;
  torrentPath: string;
  bytes: number;
  mime?: string;
  infoHash: string;
}

export interface MediaArchiverDeps {
  dataDir: string;
  /** The event index (read only). */
  store: Store;
  seeder: Seeder;
  log: Logger;
  options: MediaOptions;
  /** How often removals are looked for (ms). */
  sweepIntervalMs: number;
  /** Tests inject a resolver; the system resolver otherwise. */
  resolve?: Resolver;
  /** Authors whose media list infohash changed (their pointer names it): the publisher signs them again. */
  onListsChanged?: (authors: string[]) => void;
}

/** What /status shows under `media` (and /metrics as nostr_bt_media_*). */
export interface MediaStatus {
  queue: FetchQueueStats;
  /** Blobs on disk, their bytes, authors referencing them. */
  blobs: number;
  bytes: number;
  authors: number;
  /** Blobs seeded now. */
  seeded: number;
  /** Event → blob references kept. */
  references: number;
  /** Events read from the index since start, and those whose media was looked at (their kind is archived for media). */
  scannedEvents: number;
  /** Blobs unseeded and deleted since start because no archived event references them any more. */
  removed: number;
  /** Sequence number of the next event to read. */
  cursor: number;
  /** Authors whose media list is seeded. */
  lists: number;
  /** Media lists rebuilt since start, blob entries read for them, and rebuilds skipped (the author's blobs had not changed). */
  listWork: { rebuilds: number; entriesRead: number; skipped: number };
}

/** Indexed events read per step of a scan (the loop yields between steps). */
const SCAN_STEP = 2000;
/** Referencing events checked per step of a removal sweep. */
const SWEEP_STEP = 1000;

export class MediaArchiver {
  private readonly queue: FetchQueue;
  private readonly kinds: Set<number>;
  /** sha256 → infohash of the blobs seeded now. */
  private readonly seeded = new Map<string, string>();
  /** Index writes and blob deletions in order (a fetch that ends is recorded after the references that asked for it). */
  private chain: Promise<void> = Promise.resolve();
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private sweeping: Promise<number> | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private lastRemovedCount = -1;
  private stopped = false;
  private scannedEvents = 0;
  private removedBlobs = 0;

  private constructor(
    private readonly deps: MediaArchiverDeps,
    private readonly index: MediaIndex,
    private readonly blobs: BlobStore,
    private readonly lists: MediaLists,
  ) {
    const o = deps.options;
    this.kinds = new Set(o.kinds);
    const worker = blobFetchWorker(blobs, o, {
      onStored: (job, blob) => void this.serial(() => this.stored(job, blob)),
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
    });
    this.queue = new FetchQueue(o, worker, (job, outcome) => this.done(job, outcome));
  }

  /**
   * Opens the media index and the blob store, reconciles them (a blob on disk the index does not
   * know came from a fetch a crash interrupted: it is fetched again), restores every author's
   * references for the quotas, and re-queues the fetches that were pending.
   */
  static async open(deps: MediaArchiverDeps): Promise<MediaArchiver> {
    checkFetchPolicy(deps.options);
    const index = MediaIndex.open(deps.dataDir);
    try {
      const blobs = await BlobStore.open(deps.dataDir, deps.options);
      for (const [sha] of [...index.allBlobs()]) {
        const refs = index.referencesOf(sha);
        if (!blobs.has(sha) || refs.length === 0) {
          await blobs.remove(sha);
          await index.dropBlob(sha);
          continue;
        }
        for (const r of refs) blobs.reference(r.author, sha);
      }
      for (const sha of blobs.shas()) if (index.blob(sha) === undefined) await blobs.remove(sha);
      if (index.cursor === undefined) await index.setCursor(deps.store.pendingRange[1]);
      const lists = await MediaLists.open({
        dir: join(mediaRoot(deps.dataDir), 'lists'),
        seeder: deps.seeder,
        entriesOf: (author) => {
          const shas = blobs.shasOf(author);
          const entries = shas.flatMap((sha) => {
            const rec = index.blob(sha);
            return rec ? [{ sha256: sha, ih: rec.ih, size: rec.bytes }] : [];
          });
          return { entries, complete: entries.length === shas.length };
        },
        versionOf: (author) => blobs.versionOf(author),
        onChanged: (authors) => deps.onListsChanged?.(authors),
        onError: (err, author) => deps.log.error({ err, author }, 'media: building a media list failed'),
      });
      return new MediaArchiver(deps, index, blobs, lists);
    } catch (err) {
      await index.close();
      throw err;
    }
  }

  /** Seeds the stored blobs, re-queues pending fetches, reads what was indexed meanwhile and starts the removal sweeps. */
  async start(): Promise<void> {
    for (const [sha, rec] of [...this.index.allBlobs()])
      await this.seed(sha, rec.ih, await this.blobs.readTorrent(sha), this.blobs.pathOf(sha));
    this.lists.touch(this.blobs.authors());
    for (const job of [...this.index.allPending()]) this.queue.enqueue(job);
    this.noteIndexed();
    void this.sweepRemovals();
    this.sweepTimer = setInterval(() => void this.sweepRemovals(), this.deps.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** A batch was committed: read it (coalesced; never waits). */
  noteIndexed(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = this.scan()
      .catch((err: unknown) => this.deps.log.error({ err }, 'media: reading indexed events failed'))
      .finally(() => {
        this.scanning = null;
        if (this.rescan) {
          this.rescan = false;
          this.noteIndexed();
        }
      });
  }

  private async scan(): Promise<void> {
    const { store } = this.deps;
    let cursor = this.index.cursor ?? 0;
    while (!this.stopped) {
      let next = cursor;
      let seen = 0;
      // Bounded steps: the range is cut at SCAN_STEP sequence numbers (rows removed since leave gaps, never more rows).
      for (const [author, recs] of store.scanAuthors(cursor, cursor + SCAN_STEP, () => true)) {
        for (const r of recs) {
          seen++;
          next = Math.max(next, r.seq + 1);
          if (this.kinds.size > 0 && !this.kinds.has(r.k)) continue;
          this.scannedEvents++;
          const json = store.jsonOf(r);
          if (json === null || !json.includes('http')) continue;
          let ev: { kind: number; tags: string[][]; content: string };
          try {
            ev = JSON.parse(json) as typeof ev;
          } catch {
            continue;
          }
          const refs = mediaReferences(ev, this.deps.options);
          if (refs.length > 0) this.take(r.i, author, refs);
        }
      }
      if (seen === 0 && !this.moreAfter(cursor + SCAN_STEP)) break;
      // No row in a full step: all removed; rows after it are committed, so the step is passed.
      cursor = seen === 0 ? cursor + SCAN_STEP : next;
      const at = cursor;
      await this.serial(async () => void (await this.index.setCursor(at)));
      await yieldLoop();
    }
  }

  /** Whether a committed row exists at or after `seq`. */
  private moreAfter(seq: number): boolean {
    return this.deps.store.eventCountFrom(seq) > 0;
  }

  /** Records an event's references and queues the blobs not stored or queued yet. */
  private take(eventId: string, author: string, refs: MediaRef[]): void {
    const kept: string[] = [];
    const jobs: FetchJob[] = [];
    for (const ref of refs) {
      if (this.blobs.has(ref.sha256) && this.index.blob(ref.sha256) !== undefined) {
        this.blobs.reference(author, ref.sha256);
        kept.push(ref.sha256);
        continue;
      }
      const job: FetchJob = {
        sha256: ref.sha256,
        urls: ref.urls,
        author,
        ...(ref.mime ? { mime: ref.mime } : {}),
        ...(ref.size !== undefined ? { size: ref.size } : {}),
      };
      const r = this.queue.enqueue(job);
      if (r === 'queued') jobs.push(job);
      if (r === 'queued' || r === 'duplicate') kept.push(ref.sha256);
      // Dropped (queue full, author over their share, stopping): counted by the queue; not referenced.
    }
    if (kept.length > 0) void this.serial(() => this.index.addReferences(eventId, author, kept, jobs));
    // A stored blob the author did not have yet changes their list (a no-op touch otherwise).
    if (kept.length > jobs.length) this.lists.touch([author]);
  }

  /** A fetched, verified blob with its torrent: recorded, referenced by every author that asked, seeded. */
  private async stored(job: FetchJob, blob: StoredBlob): Promise<void> {
    const mime = blob.mime === undefined || blob.mime === 'application/octet-stream' ? (job.mime ?? blob.mime) : blob.mime;
    await this.index.putBlob(job.sha256, {
      ih: blob.infoHash,
      bytes: blob.bytes,
      urls: [...job.urls],
      ...(mime !== undefined ? { mime } : {}),
    });
    const refs = this.index.referencesOf(job.sha256);
    if (refs.length === 0) {
      // Every event that asked for it left while it was fetched.
      await this.deleteBlob(job.sha256);
      return;
    }
    for (const r of refs) this.blobs.reference(r.author, job.sha256);
    await this.seed(job.sha256, blob.infoHash, blob.torrent, blob.path);
    this.lists.touch(refs.map((r) => r.author));
  }

  private async seed(sha256: string, infoHash: string, torrent: Buffer, dataPath: string): Promise<void> {
    if (this.stopped) return;
    try {
      await this.deps.seeder.seed({ infoHash, torrent, dataPath });
      this.seeded.set(sha256, infoHash);
    } catch (err) {
      this.deps.log.error({ err, sha256, infoHash }, 'media: seeding a blob failed');
    }
  }

  private done(job: FetchJob, outcome: JobOutcome): void {
    if (outcome.ok) {
      // A blob already stored gained this author (no fetch): their list changes.
      this.lists.touch([job.author]);
      this.deps.log.debug({ sha256: job.sha256, bytes: outcome.bytes }, 'media: blob fetched');
      return;
    }
    // Stopping aborts fetches in flight: they stay pending and are fetched after the next start.
    if (this.stopped && outcome.code === 'aborted') return;
    this.deps.log.info({ sha256: job.sha256, author: job.author, code: outcome.code, msg: outcome.message }, 'media: blob refused');
    void this.serial(() => this.index.fetchFailed(job.sha256));
  }

  /**
   * Drops the references of events no longer in the index and deletes the blobs left without
   * any. Runs only when the index's removal counters moved (or `force`). Returns blobs deleted.
   */
  sweepRemovals(force = false): Promise<number> {
    if (this.stopped) return Promise.resolve(0);
    if (this.sweeping) return this.sweeping;
    this.sweeping = this.sweep(force)
      .catch((err: unknown) => {
        this.deps.log.error({ err }, 'media: removal sweep failed');
        return 0;
      })
      .finally(() => (this.sweeping = null));
    return this.sweeping;
  }

  private async sweep(force: boolean): Promise<number> {
    const { store } = this.deps;
    let removedNow = 0;
    for (const [k, v] of Object.entries(store.counts())) if (k.startsWith('removed.')) removedNow += v;
    if (!force && removedNow === this.lastRemovedCount) return 0;
    this.lastRemovedCount = removedNow;
    const gone: string[] = [];
    let after = '';
    while (!this.stopped) {
      const ids = this.index.eventIdsAfter(after, SWEEP_STEP);
      if (ids.length === 0) break;
      for (const id of ids) if (!store.hasEvent(id)) gone.push(id);
      after = ids[ids.length - 1]!;
      await yieldLoop();
    }
    if (gone.length === 0) return 0;
    let deleted = 0;
    await this.serial(async () => {
      const u = await this.index.removeEvents(gone);
      for (const { sha256, author } of u.released) await this.blobs.release(author, sha256);
      this.lists.touch(u.released.map((r) => r.author));
      for (const sha of u.orphanBlobs) if (await this.deleteBlob(sha)) deleted++;
    });
    if (deleted > 0)
      this.deps.log.info({ events: gone.length, blobs: deleted }, 'media: blobs no archived event references were unseeded and deleted');
    return deleted;
  }

  /** Unseeds and deletes a blob (before its files go) and forgets it. Returns whether it was on disk. */
  private async deleteBlob(sha256: string): Promise<boolean> {
    const ih = this.seeded.get(sha256) ?? this.index.blob(sha256)?.ih;
    if (ih !== undefined) await this.deps.seeder.unseed(ih);
    this.seeded.delete(sha256);
    this.lists.touch(this.blobs.ownersOf(sha256));
    const had = this.blobs.has(sha256);
    // Counted as the store's count drops (remove() does that before its first await): /status never shows one without the other.
    if (had) this.removedBlobs++;
    await this.blobs.remove(sha256);
    await this.index.dropBlob(sha256);
    return had;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.then(
      () => {},
      (err: unknown) => this.deps.log.error({ err }, 'media: index write failed'),
    );
    return p;
  }

  /** The infohash of the author's media list torrent, when blobs of theirs are stored (their pointer's `m`). */
  mediaListOf(author: string): string | undefined {
    return this.lists.infoHashOf(author);
  }

  /** A stored, verified blob for the gateway's Blossom routes (none once stopping). */
  blobFile(sha256: string): LocalBlob | undefined {
    if (this.stopped || !this.blobs.has(sha256)) return undefined;
    const rec = this.index.blob(sha256);
    if (!rec) return undefined;
    return {
      path: this.blobs.pathOf(sha256),
      torrentPath: this.blobs.torrentPathOf(sha256),
      bytes: rec.bytes,
      infoHash: rec.ih,
      ...(rec.mime !== undefined ? { mime: rec.mime } : {}),
    };
  }

  /** A stored blob's .torrent file, or undefined if it is gone. */
  async blobTorrentBytes(sha256: string): Promise<Buffer | undefined> {
    if (this.blobFile(sha256) === undefined) return undefined;
    return this.blobs.readTorrent(sha256).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  /** The infohash of a stored blob (tests, status). */
  infoHashOf(sha256: string): string | undefined {
    return this.index.blob(sha256)?.ih;
  }

  /** Resolves once the indexed events are read, the queue is empty and what it wrote is recorded. */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await this.scanning;
      await this.queue.idle();
      await this.chain;
      await this.lists.idle();
      if (!this.scanning && this.queue.stats().queued + this.queue.stats().inFlight === 0) return;
    }
  }

  status(): MediaStatus {
    const s = this.blobs.stats();
    return {
      queue: this.queue.stats(),
      blobs: s.blobs,
      bytes: s.bytes,
      authors: s.authors,
      seeded: this.seeded.size,
      references: this.index.refCount(),
      scannedEvents: this.scannedEvents,
      removed: this.removedBlobs,
      cursor: this.index.cursor ?? 0,
      lists: this.lists.count,
      listWork: this.lists.stats(),
    };
  }

  /** Stops fetching (in-flight fetches are aborted; pending ones are fetched after the next start) and closes the index. The seeder is stopped by its owner. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.scanning;
    await this.sweeping;
    await this.queue.stop();
    await this.chain;
    await this.lists.stop();
    await this.index.close();
  }
}
