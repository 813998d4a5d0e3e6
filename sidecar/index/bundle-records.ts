// Where the index records its bundles: the `bundles`, `bundle-ranges`, `bundle-authors`,
// `author-bundles` and `removals` tables, and the frontier (events below it are in bundles). The
// tables are private here. The bundler (sidecar/bundles/) decides what to cut, merge and rewrite;
// it commits each decision through one method below, which writes it in one transaction.
//
// A bundle holds exactly the stored events whose sequence number is in [seqStart, seqEnd) and
// whose author is in [authorFrom, authorTo), so one row per bundle says where every event is.
import type { Database, RootDatabase } from 'lmdb';
import type { IndexMeta } from './index-meta.js';

export type BundleState = 'active' | 'retired';

/**
 * A bundle torrent. Levels: 0 window, 1 hour, 2 day, 3 month, 4 year (docs/protocol.md §6).
 * It holds exactly the stored events whose sequence number is in [seqStart, seqEnd) and whose
 * author is in [authorFrom, authorTo): that is how the index records where every event is.
 */
export interface BundleRecord {
  ih: string;
  seqStart: number;
  seqEnd: number;
  authorFrom: string;
  authorTo: string;
  name: string;
  level: number;
  /** The (UTC, ms) period whose arrivals it holds: [periodStart, periodEnd). */
  periodStart: number;
  periodEnd: number;
  createdAt: number;
  bytes: number;
  events: number;
  authors: number;
  pieceLength: number;
  state: BundleState;
  replacedBy?: string[];
  retiredAt?: number;
}

/** An archived event removed from the index that a bundle still holds (until rewritten). */
export interface RemovalRecord {
  /** reason: deleted, vanished, expired */
  r: string;
  p: string;
  /** The event's sequence number: with `p`, it says which bundle holds it. */
  s: number;
  /** Order of removals (in-process counter): tells a bundle build whether it read the event before. */
  n: number;
}

export interface BundleFileStats {
  n: number;
  bytes: number;
  /** Offset of the author's file in the bundle's data file. */
  o: number;
}

/** An author's file in a bundle, as the index records it. */
export type BundleFile = { pubkey: string } & BundleFileStats;

/** An author's lines in a bundle, read from its data file; null when it cannot be read. */
export type BundleLineReader = (ih: string, file: BundleFileStats) => string[] | null;

export class BundleRecords {
  private readonly bundles: Database<BundleRecord, string>;
  /** Active bundles by position: [seqEnd, authorFrom] → infohash (see BundleRecord). */
  private readonly ranges: Database<string, [number, string]>;
  /** Per bundle and author: events, bytes and offset of that author's file. Key: ih ‖ pubkey (binary). */
  private readonly bundleAuthorDb: Database<BundleFileStats, Buffer>;
  /** Per author, the bundles holding their events, oldest period first. Key: pubkey ‖ periodEnd ‖ ih (binary). */
  private readonly authorBundleDb: Database<null, Buffer>;
  /** Events removed from the index that a bundle still holds: id → where it was, and why. */
  private readonly removals: Database<RemovalRecord, string>;
  /** Events below this sequence number are in bundles (persisted in the meta table). */
  private frontierSeq = 1;
  /** End of the cut being built: events removed meanwhile are in the new bundle already. */
  private cutEnd = 0;
  private removalCounter = 0;
  private committedRemovals = 0;
  /** Reads an author's lines from a bundle's data file (set by the bundler; null: unreadable). */
  private lineReader: BundleLineReader | null = null;

  constructor(
    private readonly root: RootDatabase,
    private readonly meta: IndexMeta,
  ) {
    const db = <V, K>(name: string) => root.openDB<V, K & import('lmdb').Key>({ name, compression: false });
    const binaryKeyed = <V>(name: string) => root.openDB<V, Buffer>({ name, compression: false, keyEncoding: 'binary' });
    this.ranges = db('bundle-ranges');
    this.bundleAuthorDb = binaryKeyed('bundle-authors');
    this.authorBundleDb = binaryKeyed('author-bundles');
    this.bundles = db('bundles');
    this.removals = db('removals');
  }

  /** Reads the frontier (once the index's format is checked). */
  loadFrontier(): void {
    this.frontierSeq = this.meta.frontier();
  }

  /** Whether the index has ever recorded a bundle. */
  isEmpty(): boolean {
    return this.bundles.getKeysCount({ limit: 1 }) === 0;
  }

  /** First sequence number not yet in a bundle. */
  get frontier(): number {
    return this.frontierSeq;
  }

  /** The bundle with this infohash, active or retired. */
  get(ih: string): BundleRecord | undefined {
    return this.bundles.get(ih);
  }

  /** Every bundle the index has recorded, active and retired, by infohash. */
  *all(): Iterable<BundleRecord> {
    for (const { value } of this.bundles.getRange()) yield value;
  }

  /** The active bundle holding the event at `seq` by `pubkey`, if it is bundled. */
  bundleAt(seq: number, pubkey: string): string | undefined {
    let end: number | undefined;
    let found: string | undefined;
    // Entries with the smallest seqEnd > seq are the parts (by author) of the bundle(s) there.
    for (const { key, value } of this.ranges.getRange({ start: [seq + 1, ''] })) {
      if (end === undefined) end = key[0];
      else if (key[0] !== end) break;
      if (key[1] <= pubkey) found = value;
    }
    if (found === undefined) return undefined;
    const b = this.bundles.get(found);
    return b && b.seqStart <= seq && pubkey < b.authorTo ? found : undefined;
  }

  /** Each author's file in a bundle (pubkey order): events, bytes and offset in the data file. */
  *files(ih: string): Iterable<BundleFile> {
    const prefix = Buffer.from(ih, 'hex');
    for (const { key, value } of this.bundleAuthorDb.getRange({ start: prefix, end: prefixEnd(prefix) })) {
      yield { pubkey: key.toString('hex', 20), ...value };
    }
  }

  /**
   * Up to `limit` author files of a bundle after `afterPubkey` (exclusive; '' for the first),
   * read in one step: a caller that walks a bundle across awaits holds no read transaction open
   * (an open one keeps LMDB from reusing the pages later writes free).
   */
  filesAfter(ih: string, afterPubkey: string, limit: number): BundleFile[] {
    const prefix = Buffer.from(ih, 'hex');
    const start = afterPubkey === '' ? prefix : Buffer.concat([bundleAuthorKey(ih, afterPubkey), Buffer.of(0)]);
    const out: BundleFile[] = [];
    for (const { key, value } of this.bundleAuthorDb.getRange({ start, end: prefixEnd(prefix), limit })) {
      out.push({ pubkey: key.toString('hex', 20), ...value });
    }
    return out;
  }

  /** The infohashes of the bundles holding an author's events, newest period first. */
  *authorBundles(pubkey: string): Iterable<string> {
    const prefix = Buffer.from(pubkey, 'hex');
    for (const key of this.authorBundleDb.getKeys({ start: prefixEnd(prefix), end: prefix, reverse: true })) {
      yield key.toString('hex', 38);
    }
  }

  /** Lets the index read an author's bundled lines (a vanish request) from bundle data files. */
  setLineReader(reader: BundleLineReader): void {
    this.lineReader = reader;
  }

  /** An author's lines in a bundle from its data file; null when there is no such file or it cannot be read. */
  linesOf(ih: string, pubkey: string): string[] | null {
    const stats = this.bundleAuthorDb.get(bundleAuthorKey(ih, pubkey));
    return stats && this.lineReader ? this.lineReader(ih, stats) : null;
  }

  /** Inside a transaction: records an author's file in a bundle (both directions). */
  putFile(ih: string, periodEnd: number, pubkey: string, stats: BundleFileStats): void {
    this.bundleAuthorDb.put(bundleAuthorKey(ih, pubkey), stats);
    this.authorBundleDb.put(authorBundleKey(pubkey, periodEnd, ih), null);
  }

  /** Inside a transaction: forgets every author file of a bundle. */
  removeFiles(ih: string, periodEnd: number): void {
    for (const { pubkey } of [...this.files(ih)]) {
      this.bundleAuthorDb.remove(bundleAuthorKey(ih, pubkey));
      this.authorBundleDb.remove(authorBundleKey(pubkey, periodEnd, ih));
    }
  }

  /** Inside a transaction: a bundle now stands for another period (authors' bundle order follows). */
  relabelFiles(ih: string, oldPeriodEnd: number, newPeriodEnd: number): void {
    for (const { pubkey } of [...this.files(ih)]) {
      this.authorBundleDb.remove(authorBundleKey(pubkey, oldPeriodEnd, ih));
      this.authorBundleDb.put(authorBundleKey(pubkey, newPeriodEnd, ih), null);
    }
  }

  /** A cut of the events below `end` is being written (removals meanwhile are recorded for it). */
  beginCut(end: number): void {
    this.cutEnd = end;
  }

  endCut(): void {
    this.cutEnd = 0;
  }

  /**
   * Commits a window cut: the bundle, its authors' files (in data file order), the new frontier
   * and the cut's period, in one transaction.
   */
  async commitCut(r: BundleRecord, files: readonly NewBundleFile[], frontier: number, periodStart: number): Promise<void> {
    await this.root.transaction(() => {
      this.meta.setFrontier(Math.max(this.frontierSeq, frontier));
      this.meta.setLastCutPeriod(periodStart);
      this.putBundle(r, files);
    });
    this.frontierSeq = Math.max(this.frontierSeq, frontier);
  }

  /**
   * Commits a merge or rewrite in one transaction: drops the pending removals `written` says it
   * wrote out (decided inside the transaction, which sees every removal committed before it),
   * retires the sources it does not keep (replaced by `made`), and records the new bundles.
   */
  async commitReplace(
    written: (r: RemovalRecord) => boolean,
    retired: readonly BundleRecord[],
    made: readonly { record: BundleRecord; files: readonly NewBundleFile[] }[],
    now: () => number,
  ): Promise<void> {
    const replacedBy = made.map((m) => m.record.ih);
    await this.root.transaction(() => {
      // Collected first: the loop removes rows of the table it reads.
      for (const [id, r] of [...this.pendingRemovals()]) if (written(r)) this.removals.remove(id);
      for (const s of retired) this.retire(s, replacedBy, now());
      for (const m of made) this.putBundle(m.record, m.files);
    });
  }

  /** A bundle now stands for another level and period (same torrent). */
  async relabel(s: BundleRecord, updated: BundleRecord): Promise<void> {
    await this.root.transaction(() => {
      this.relabelFiles(s.ih, s.periodEnd, updated.periodEnd);
      this.bundles.put(s.ih, updated);
    });
  }

  /** Removals waiting for a rewrite of the bundle holding them: event id → where and why. */
  *pendingRemovals(): Iterable<[string, RemovalRecord]> {
    for (const { key, value } of this.removals.getRange()) yield [key, value];
  }

  /** Forgets removals that no rewrite needs (their bundle was retired or rewritten meanwhile). */
  async forgetRemovals(ids: readonly string[]): Promise<void> {
    await this.root.transaction(() => {
      for (const id of ids) this.removals.remove(id);
    });
  }

  /**
   * Inside the index's write transaction: an event left the index. If a bundle holds it (or the
   * cut being written will), records it so the bundle is rewritten without it.
   */
  recordRemoval(id: string, reason: string, pubkey: string, seq: number): void {
    if (seq < this.frontierSeq || seq < this.cutEnd) this.removals.put(id, { r: reason, p: pubkey, s: seq, n: ++this.removalCounter });
  }

  /** Order of the last removal recorded (committed or not). */
  get removalsRecorded(): number {
    return this.removalCounter;
  }

  /** The index's write transaction that recorded removals up to `upTo` committed. */
  removalsCommitted(upTo: number): void {
    this.committedRemovals = Math.max(this.committedRemovals, upTo);
  }

  /**
   * Order of the last committed removal. A transaction's removals count only once it has
   * committed: until then, reads (a merge reading an author's events) still see the events, so
   * a merge that read them after the removal was recorded but before its commit still holds them
   * and must be rewritten.
   */
  get removalOrder(): number {
    return this.committedRemovals;
  }

  /** Whether the bundler stopped cleanly last time (else its files are re-hashed before seeding). */
  wasCleanStop(): boolean {
    return this.meta.cleanStop();
  }

  setCleanStop(clean: boolean): Promise<boolean> {
    return this.meta.setCleanStop(clean);
  }

  /** Start of the latest window cut's period (0: none yet). */
  lastCutPeriod(): number {
    return this.meta.lastCutPeriod();
  }

  /** Inside a transaction: the bundle's record and per-author rows (files in data file order). */
  private putBundle(r: BundleRecord, files: readonly NewBundleFile[]): void {
    let o = 0;
    for (const f of files) {
      this.putFile(r.ih, r.periodEnd, f.pubkey, { n: f.events, bytes: f.length, o });
      o += f.length;
    }
    this.bundles.put(r.ih, r);
    this.ranges.put([r.seqEnd, r.authorFrom], r.ih);
  }

  /** Inside a transaction. */
  private retire(s: BundleRecord, replacedBy: string[], at: number): void {
    this.removeFiles(s.ih, s.periodEnd);
    this.bundles.put(s.ih, { ...s, state: 'retired', replacedBy, retiredAt: at });
    if (this.ranges.get([s.seqEnd, s.authorFrom]) === s.ih) this.ranges.remove([s.seqEnd, s.authorFrom]);
  }
}

/** An author's file of a bundle just built, in data file order. */
export interface NewBundleFile {
  pubkey: string;
  events: number;
  length: number;
}

/** ih (20 bytes) ‖ pubkey (32 bytes). */
function bundleAuthorKey(ih: string, pubkey: string): Buffer {
  const key = Buffer.allocUnsafe(52);
  key.write(ih, 0, 20, 'hex');
  key.write(pubkey, 20, 32, 'hex');
  return key;
}

/** pubkey (32 bytes) ‖ periodEnd (6 bytes, ms, big-endian) ‖ ih (20 bytes). */
function authorBundleKey(pubkey: string, periodEnd: number, ih: string): Buffer {
  const key = Buffer.allocUnsafe(58);
  key.write(pubkey, 0, 32, 'hex');
  key.writeUIntBE(periodEnd, 32, 6);
  key.write(ih, 38, 20, 'hex');
  return key;
}

/** The smallest key above every key that starts with `prefix` (undefined: none, prefix is all 0xff). */
function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}
