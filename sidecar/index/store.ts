// The LMDB index: events, replaceable slots, tombstones, expiry, bundles, counters.
// Every batch of events is applied in one write transaction; reads inside it see its own writes,
// so duplicates, replacements and deletions inside one batch resolve exactly as across batches.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type DatabaseOptions, type RootDatabase } from 'lmdb';
import { EventLog, type LogRef } from './event-log.js';
import type { EventHead } from '../judge/line-judge.js';
import type { Classified } from '../policy/content-policy.js';
import { canonicalHead } from '../formats/canonical-line.js';
import { IdIndex, prefixAt, prefixOfHex } from './id-index.js';
import { clsReader, eventCount, headAt, isEmptyCls, lineAt, lineBytesAt, lineStart, type EventBatch } from '../judge/event-batch.js';
import { eventRowEncoder, type EventRow } from './event-row.js';
import { upgradeEventRows } from './event-rows-upgrade.js';

/** Format 7 stores event rows in index/event-row.ts's layout; 6 had them in msgpack. */
const INDEX_FORMAT = 7;
/** The value of every entry of the tombstone prefix table (a set: only the prefixes matter). */
const TOMBSTONED = 1;
/** Format 5 is format 6 plus an `ids` table (id → sequence number), now kept in memory. */
const UPGRADABLE_FORMATS: readonly unknown[] = [5, 6];
const FORMAT_KEY = 'index.format';
const FRONTIER_KEY = 'bundle.frontier';
const LOG_END_KEY = 'log.end';
/**
 * Address space reserved for the index map (not disk: the file grows as it is written). Without
 * it lmdb-js starts with a small map and remaps as the file grows, and every earlier map stays
 * mapped with its resident pages: the same file pages counted several times in the RSS.
 */
const MAP_SIZE = 2 ** 40;

/**
 * One indexed event as LMDB keeps it: id, author, created_at, kind, expiry, replaceable slot,
 * and where its canonical JSON is in the event log (`o`, `n`: see sidecar/index/event-log.ts).
 */
export interface EventRecord extends LogRef {
  i: string;
  p: string;
  c: number;
  k: number;
  x?: number;
  s?: string;
}

/** An indexed event with its canonical JSON read from the log. */
export type StoredEvent = EventRecord & { j: string };

/** A signed BEP-44 item as last published (re-put as is after restarts and outages). */
export interface PointerRecord {
  salt: Buffer;
  v: unknown;
  seq: number;
  sig: Buffer;
  /** When its content last changed / was last stored in the DHT (ms; 0 = never). */
  changedAt: number;
  putAt: number;
  /** Nodes that stored it at the last put. */
  nodes: number;
  failures: number;
  retryAt: number;
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

export interface SlotRecord {
  id: string;
  c: number;
}


export type Outcome = 'indexed' | 'duplicate' | 'deleted' | 'vanished' | 'superseded';

export type Counters = Record<string, number>;

export class Store {
  readonly root: RootDatabase;
  /** Events under an increasing sequence number: appends stay fast as the index grows. */
  private readonly events: Database<EventRow, number>;
  /** How the index was upgraded to this version's format when it opened, if it was. */
  readonly upgraded: { from: number; rows: number; ms: number } | null = null;
  readonly slots: Database<SlotRecord, string>;
  readonly tombIds: Database<number, [string, string]>;
  readonly tombAddrs: Database<number, string>;
  readonly vanished: Database<number, string>;
  readonly expiry: Database<null, [number, string]>;
  /** Active bundles by position: [seqEnd, authorFrom] → infohash (see BundleRecord). */
  readonly bundleRanges: Database<string, [number, string]>;
  /** Per bundle and author: events, bytes and offset of that author's file. Key: ih ‖ pubkey (binary). */
  private readonly bundleAuthorDb: Database<BundleFileStats, Buffer>;
  /** Per author, the bundles holding their events, oldest period first. Key: pubkey ‖ periodEnd ‖ ih (binary). */
  private readonly authorBundleDb: Database<null, Buffer>;
  readonly bundles: Database<BundleRecord, string>;
  /** Events removed from the index that a bundle still holds: id → where it was, and why. */
  readonly removals: Database<RemovalRecord, string>;
  /** BEP-44 items: salt (hex) → signed item. */
  readonly pointers: Database<PointerRecord, string>;
  /** Authors whose pointer must be republished because their bundles changed: pubkey → since (ms). */
  readonly pointerDirty: Database<number, string>;
  readonly counters: Database<number, string>;
  readonly meta: Database<unknown, string>;
  readonly log: EventLog;

  private nextSeq = 1;
  /** Log ranges of events removed by the running transaction (blanked after its commit). */
  private removedInTxn: LogRef[] | null = null;
  /** Event id → sequence number (index/id-index.ts); built from the events table on first use. */
  private idIndex: IdIndex | null = null;
  /**
   * Authors with a `vanished` row (or one being written): few, and asked about for every event,
   * so the table is read only for them. Never shrinks (the table does not either). Null in a
   * read-only index, which reads the table (the sidecar may be writing it).
   */
  private readonly vanishedAuthors: Set<string> | null;
  /**
   * The ids in `tomb-ids`, by prefix: asked about for every event and almost never there, so the
   * table is read only on a prefix match. Entries are never dropped (nor are tombstones); one
   * from a transaction that did not commit only costs a read. Null in a read-only index.
   */
  private readonly tombstoned: IdIndex | null;
  /** Cuts reading the log on another thread (holdBlanking), and the removals waiting for them. */
  private blankHolds = 0;
  private heldBlanks: LogRef[] = [];
  /** Id index entries the running transaction added (dropped again if it does not commit). */
  private idsAddedInTxn: IdEntries | null = null;
  /** Id index entries of events the running transaction removed (dropped once it commits). */
  private idsRemovedInTxn: IdEntries | null = null;
  /** Events below this sequence number are in bundles (persisted as meta 'bundle.frontier'). */
  private frontier = 1;
  /** End of the cut being built: events removed meanwhile are in the new bundle already. */
  private bundling = 0;
  private removalCounter = 0;
  private committedRemovals = 0;
  /** Reads an author's lines from a bundle's data file (set by the bundler; null: unreadable). */
  private bundleLines: BundleLineReader | null = null;

  private constructor(readonly dir: string, readOnly: boolean) {
    if (!readOnly) mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.root = open({ path: dir, maxDbs: 24, compression: false, readOnly, mapSize: MAP_SIZE });
    const db = <V, K>(name: string) => this.root.openDB<V, K & import('lmdb').Key>({ name, compression: false });
    const binaryKeyed = <V>(name: string) => this.root.openDB<V, Buffer>({ name, compression: false, keyEncoding: 'binary' });
    // Rows in index/event-row.ts's layout; its decoder copies out of lmdb-js's reused read buffer.
    this.events = this.root.openDB<EventRow, number>({ name: 'events', compression: false, encoder: eventRowEncoder() } as DatabaseOptions & { name: string });
    this.slots = db('slots');
    this.tombIds = db('tomb-ids');
    this.tombAddrs = db('tomb-addrs');
    this.vanished = db('vanished');
    this.expiry = db('expiry');
    this.bundleRanges = db('bundle-ranges');
    this.bundleAuthorDb = binaryKeyed('bundle-authors');
    this.authorBundleDb = binaryKeyed('author-bundles');
    this.bundles = db('bundles');
    this.removals = db('removals');
    this.pointers = db('pointers');
    this.pointerDirty = db('pointer-dirty');
    this.counters = db('counters');
    this.meta = db('meta');
    try {
      if (readOnly) this.checkReadableFormat();
      else this.upgraded = this.checkFormat();
      for (const last of this.events.getKeys({ reverse: true, limit: 1 })) this.nextSeq = last + 1;
      this.log = new EventLog(join(dir, 'events.log'), (this.meta.get(LOG_END_KEY) as number | undefined) ?? 0, readOnly);
      this.frontier = (this.meta.get(FRONTIER_KEY) as number | undefined) ?? 1;
      this.vanishedAuthors = readOnly ? null : new Set(this.vanished.getKeys());
      this.tombstoned = readOnly ? null : this.buildTombIndex();
      // Before any transaction can run (a read-only index builds it on its first lookup).
      if (!readOnly) this.idIndex = this.buildIdIndex();
    } catch (err) {
      // A refused index must not stay open: lmdb-js shares one environment per path in a process.
      (this as { log?: EventLog }).log?.close();
      void this.root.close();
      throw err;
    }
  }

  /**
   * Upgrades an index of an older format in place, and refuses one written by an incompatible
   * (pre-release) layout instead of misreading it.
   */
  private checkFormat(): { from: number; rows: number; ms: number } | null {
    const format = this.meta.get(FORMAT_KEY);
    if (format === INDEX_FORMAT) return null;
    if (UPGRADABLE_FORMATS.includes(format)) {
      if (format === 5) this.root.openDB({ name: 'ids' }).dropSync();
      const { rows, ms } = upgradeEventRows(this.root, this.meta, () => this.meta.putSync(FORMAT_KEY, INDEX_FORMAT));
      return { from: format as number, rows, ms };
    }
    if (format === undefined && this.isEmpty()) {
      this.meta.putSync(FORMAT_KEY, INDEX_FORMAT);
      return null;
    }
    throw new Error(`${this.formatMismatch(format)}: move it away (and the bundles directory) and replay history with nostr-bt-backfill`);
  }

  /** A read-only index cannot be upgraded: one of an older format is refused, not misread. */
  private checkReadableFormat(): void {
    const format = this.meta.get(FORMAT_KEY);
    if (format === INDEX_FORMAT || (format === undefined && this.isEmpty())) return;
    if (UPGRADABLE_FORMATS.includes(format)) {
      throw new Error(`${this.formatMismatch(format)}: start the sidecar once, it upgrades the index in place`);
    }
    throw new Error(`${this.formatMismatch(format)}: move it away (and the bundles directory) and replay history with nostr-bt-backfill`);
  }

  private formatMismatch(format: unknown): string {
    return `the index at ${this.dir} has format ${String(format ?? 'unversioned')}, this version reads ${INDEX_FORMAT}`;
  }

  private isEmpty(): boolean {
    return this.events.getKeysCount({ limit: 1 }) === 0 && this.bundles.getKeysCount({ limit: 1 }) === 0;
  }

  /** First sequence number not yet in a bundle, and the next one to be assigned. */
  get pendingRange(): [number, number] {
    return [this.frontier, this.nextSeq];
  }

  /** Inside a transaction: events below `seq` are now in bundles (call frontierCommitted after). */
  writeFrontier(seq: number): void {
    this.meta.put(FRONTIER_KEY, Math.max(this.frontier, seq));
  }

  frontierCommitted(seq: number): void {
    this.frontier = Math.max(this.frontier, seq);
  }

  /** A cut up to `seq` (exclusive) is being written (0: none). */
  setBundling(seq: number): void {
    this.bundling = seq;
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

  /** The active bundle holding the event at `seq` by `pubkey`, if it is bundled. */
  bundleAt(seq: number, pubkey: string): string | undefined {
    let end: number | undefined;
    let found: string | undefined;
    // Entries with the smallest seqEnd > seq are the parts (by author) of the bundle(s) there.
    for (const { key, value } of this.bundleRanges.getRange({ start: [seq + 1, ''] })) {
      if (end === undefined) end = key[0];
      else if (key[0] !== end) break;
      if (key[1] <= pubkey) found = value;
    }
    if (found === undefined) return undefined;
    const b = this.bundles.get(found);
    return b && b.seqStart <= seq && pubkey < b.authorTo ? found : undefined;
  }

  /** Where an event is archived: its bundle and the file in it, or undefined if not (yet). */
  locate(id: string): { ih: string; file: string } | undefined {
    const found = this.lookup(id);
    if (!found) return undefined;
    const { seq, row } = found;
    const pubkey = hex(row.p);
    const ih = this.bundleAt(seq, pubkey);
    return ih ? { ih, file: `${pubkey}.jsonl` } : undefined;
  }

  /**
   * The stored events with seq in [from, to) whose author `wanted` accepts, grouped by author
   * (arrival order within each), without their JSON. A scan of the range: for rebuilds, vanish
   * requests and checks, never per event on the ingest path.
   */
  scanAuthors(from: number, to: number, wanted: (pubkey: string) => boolean): Map<string, (EventRecord & { seq: number })[]> {
    const out = new Map<string, (EventRecord & { seq: number })[]>();
    for (const { key: seq, value: row } of this.events.getRange({ start: from, end: to })) {
      const pubkey = hex(row.p);
      if (!wanted(pubkey)) continue;
      let list = out.get(pubkey);
      if (!list) out.set(pubkey, (list = []));
      list.push({ ...recordOfRow(row), seq });
    }
    return out;
  }

  /** The sequence number of an indexed event. */
  seqOf(id: string): number | undefined {
    return this.lookup(id)?.seq;
  }

  /**
   * The indexed event with this id: the id index names candidates by prefix, its event row
   * confirms. Inside a write transaction it sees the transaction's own writes; outside, the last
   * committed state (an entry whose transaction has not committed has no row yet).
   */
  private lookup(id: string): { seq: number; row: EventRow } | undefined {
    for (const seq of this.ids.candidates(prefixOfHex(id))) {
      const row = this.events.get(seq);
      if (row && hex(row.i) === id) return { seq, row };
    }
    return undefined;
  }

  /** lookup's answer for the id whose 32 raw bytes are at `at` in `keys` (no hex made). */
  private seqOfKey(keys: Uint8Array, at: number): number | undefined {
    const prefix = prefixAt(keys, at);
    if (!this.ids.has(prefix)) return undefined;
    for (const seq of this.ids.candidates(prefix)) {
      const row = this.events.get(seq);
      if (row && sameBytes(row.i, 0, keys, at)) return seq;
    }
    return undefined;
  }

  /** The id index (built from the events table the first time a read-only index needs it). */
  private get ids(): IdIndex {
    return (this.idIndex ??= this.buildIdIndex());
  }

  private buildTombIndex(): IdIndex {
    const index = new IdIndex(this.tombIds.getKeysCount());
    for (const [id] of this.tombIds.getKeys()) index.add(prefixOfHex(id), TOMBSTONED);
    return index;
  }

  private buildIdIndex(): IdIndex {
    const index = new IdIndex(this.eventCount());
    for (const { key, value } of this.events.getRange()) index.add(prefixAt(value.i, 0), key);
    return index;
  }

  /** Lets the index read bundled events of an author (a vanish request) from bundle data files. */
  setBundleLineReader(reader: BundleLineReader): void {
    this.bundleLines = reader;
  }

  /** Committed event rows with seq ≥ `from`, in order, as stored (id and author as raw bytes). */
  *rowsFrom(from: number): Iterable<{ seq: number; row: Readonly<EventRow> }> {
    // A generator: a caller that stops early ends the range read (and its read transaction).
    for (const { key, value } of this.events.getRange({ start: from })) yield { seq: key, row: value };
  }

  /**
   * Holds back the blanking of removed events' log bytes until the returned function is called:
   * a cut built on another thread reads the log meanwhile, and must see each line whole or blank.
   */
  holdBlanking(): () => void {
    this.blankHolds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.blankHolds > 0) return;
      const held = this.heldBlanks;
      this.heldBlanks = [];
      this.blankAll(held);
    };
  }

  /** An event's JSON from the log, or null once it was removed (its bytes blanked). */
  jsonOf(ref: LogRef): string | null {
    const json = this.log.read(ref);
    return json.charCodeAt(0) === 0x20 ? null : json;
  }

  static open(dir: string, opts: { readOnly?: boolean } = {}): Store {
    return new Store(dir, opts.readOnly ?? false);
  }

  counts(): Counters {
    const out: Counters = {};
    for (const { key, value } of this.counters.getRange()) out[key] = value;
    return out;
  }

  eventCount(): number {
    return (this.events.getStats() as { entryCount: number }).entryCount;
  }

  hasEvent(id: string): boolean {
    return this.lookup(id) !== undefined;
  }

  /** An indexed event with its JSON. */
  getEvent(id: string): StoredEvent | undefined {
    const rec = this.recordOf(id);
    return rec && { ...rec, j: this.log.read(rec) };
  }

  private recordOf(id: string): EventRecord | undefined {
    const found = this.lookup(id);
    return found && recordOfRow(found.row);
  }

  /** How many indexed events have a sequence number ≥ `from`. */
  eventCountFrom(from: number): number {
    return this.events.getKeysCount({ start: from });
  }

  /** Bytes of the lines of the indexed events with a sequence number ≥ `from`. */
  eventBytesFrom(from: number): number {
    let bytes = 0;
    for (const { value } of this.events.getRange({ start: from })) bytes += value.n;
    return bytes;
  }

  /** Each author's file in a bundle (pubkey order): events, bytes and offset in the data file. */
  *bundleFiles(ih: string): Iterable<{ pubkey: string } & BundleFileStats> {
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
  bundleFilesAfter(ih: string, afterPubkey: string, limit: number): ({ pubkey: string } & BundleFileStats)[] {
    const prefix = Buffer.from(ih, 'hex');
    const start = afterPubkey === '' ? prefix : Buffer.concat([bundleAuthorKey(ih, afterPubkey), Buffer.of(0)]);
    const out: ({ pubkey: string } & BundleFileStats)[] = [];
    for (const { key, value } of this.bundleAuthorDb.getRange({ start, end: prefixEnd(prefix), limit })) {
      out.push({ pubkey: key.toString('hex', 20), ...value });
    }
    return out;
  }

  /** The infohashes of the bundles holding an author's events, newest period first. */
  *authorBundleHashes(pubkey: string): Iterable<string> {
    const prefix = Buffer.from(pubkey, 'hex');
    for (const key of this.authorBundleDb.getKeys({ start: prefixEnd(prefix), end: prefix, reverse: true })) {
      yield key.toString('hex', 38);
    }
  }

  /** Inside a transaction: records an author's file in a bundle (both directions). */
  putBundleFile(ih: string, periodEnd: number, pubkey: string, stats: BundleFileStats): void {
    this.bundleAuthorDb.put(bundleAuthorKey(ih, pubkey), stats);
    this.authorBundleDb.put(authorBundleKey(pubkey, periodEnd, ih), null);
  }

  /** Inside a transaction: forgets every author file of a bundle. */
  removeBundleFiles(ih: string, periodEnd: number): void {
    for (const { pubkey } of [...this.bundleFiles(ih)]) {
      this.bundleAuthorDb.remove(bundleAuthorKey(ih, pubkey));
      this.authorBundleDb.remove(authorBundleKey(pubkey, periodEnd, ih));
    }
  }

  /** Inside a transaction: a bundle now stands for another period (authors' bundle order follows). */
  relabelBundleFiles(ih: string, oldPeriodEnd: number, newPeriodEnd: number): void {
    for (const { pubkey } of [...this.bundleFiles(ih)]) {
      this.authorBundleDb.remove(authorBundleKey(pubkey, oldPeriodEnd, ih));
      this.authorBundleDb.put(authorBundleKey(pubkey, newPeriodEnd, ih), null);
    }
  }

  eventIds(): Iterable<string> {
    return this.events.getRange().map(({ value }) => hex(value.i));
  }

  /** Applies a batch in one transaction; resolves with one outcome per event once committed. */
  async applyBatch(batch: EventBatch, extraCounts: Counters = {}): Promise<Outcome[]> {
    const written = await this.writeAhead(batch);
    const deltas = new Map<string, number>(Object.entries(extraCounts));
    const bump = (name: string, n = 1) => deltas.set(name, (deltas.get(name) ?? 0) + n);
    const outcomes: Outcome[] = [];
    await this.writeTxn(() => {
      const clsOf = clsReader(batch);
      for (let k = 0; k < eventCount(batch); k++) {
        const outcome = this.applyOne(batch, k, clsOf(k), written[k]!, bump);
        outcomes.push(outcome);
        bump(outcome === 'indexed' ? 'indexed' : outcome === 'duplicate' ? 'duplicate' : `skipped.${outcome}`);
      }
      this.writeCounters(deltas);
    });
    return outcomes;
  }

  /**
   * Writes the lines of the batch's events that are not already indexed to the event log, off
   * the main thread, before the transaction; returns where each went (-1: not written). The
   * transaction judges each event again (a batch committed meanwhile may have changed the
   * answer): a line written here that it refuses is blanked after the commit, and an event it
   * indexes that was not written here is appended inside it.
   */
  private async writeAhead(batch: EventBatch): Promise<Float64Array> {
    const count = eventCount(batch);
    const offsets = new Float64Array(count).fill(-1);
    // Consecutive events to write are one run of the batch's bytes (usually the whole batch).
    const runs: Uint8Array[] = [];
    let runFrom = -1;
    let last = -2;
    const keys = batch.keyBytes;
    // Events of this batch written so far (sequence number k + 1), to skip a second copy.
    const written = new IdIndex(count);
    for (let k = 0; k < count; k++) {
      const prefix = prefixAt(keys, 64 * k);
      if (written.has(prefix) && written.candidates(prefix).some((w) => sameBytes(keys, 64 * (w - 1), keys, 64 * k))) continue;
      if (this.seqOfKey(keys, 64 * k) !== undefined) continue;
      written.add(prefix, k + 1);
      offsets[k] = 0;
      if (k !== last + 1) {
        if (runFrom >= 0) runs.push(batch.lines.subarray(lineStart(batch, runFrom), batch.lineEnds[last]));
        runFrom = k;
      }
      last = k;
    }
    if (runFrom < 0) return offsets;
    runs.push(batch.lines.subarray(lineStart(batch, runFrom), batch.lineEnds[last]));
    let at = await this.log.writeAhead(runs);
    for (let k = 0; k < count; k++) {
      if (offsets[k] === -1) continue;
      offsets[k] = at;
      at += lineBytesAt(batch, k);
    }
    return offsets;
  }

  /** Adds to counters only (for lines that never became events). */
  async count(extraCounts: Counters): Promise<void> {
    const deltas = new Map(Object.entries(extraCounts));
    await this.root.transaction(() => this.writeCounters(deltas));
  }

  /** Removes events whose NIP-40 expiration has passed. */
  async sweepExpired(nowSec: number, limit = 10_000): Promise<number> {
    const deltas = new Map<string, number>();
    let n = 0;
    await this.writeTxn(() => {
      for (const key of [...this.expiry.getKeys({ end: [nowSec + 1], limit })]) {
        const id = key[1];
        const rec = this.recordOf(id);
        if (rec) {
          this.removeEvent(id, rec, 'expired');
          n++;
        } else this.expiry.remove(key);
      }
      if (n > 0) deltas.set('removed.expired', n);
      this.writeCounters(deltas);
    });
    return n;
  }

  async close(): Promise<void> {
    await this.root.close();
    this.log.close();
  }

  /**
   * What the index would answer for this event without writing anything: null when it would be
   * indexed. Used by applyOne and by dry runs (backfill --dry-run).
   */
  verdict(e: EventHead, cls: Classified): Exclude<Outcome, 'indexed'> | null {
    if (this.lookup(e.id) !== undefined) return 'duplicate';
    return this.refusalOf(e, cls);
  }

  /**
   * verdict for event k of a batch. Most events are new, plain and from authors with no
   * tombstone or vanish request: for them the answer comes from the id's bytes and in-memory
   * tables, without making the event's hex id and pubkey.
   */
  private verdictAt(batch: EventBatch, k: number, cls: Classified): Exclude<Outcome, 'indexed'> | null {
    const keys = batch.keyBytes;
    if (this.seqOfKey(keys, 64 * k) !== undefined) return 'duplicate';
    const rulesApply =
      cls.replaceKey !== undefined ||
      this.vanishedAuthors === null ||
      this.vanishedAuthors.size > 0 ||
      this.tombstoned === null ||
      this.tombstoned.has(prefixAt(keys, 64 * k));
    return rulesApply ? this.refusalOf(headAt(batch, k), cls) : null;
  }

  /** verdict's rules after the duplicate check. */
  private refusalOf(e: EventHead, cls: Classified): Exclude<Outcome, 'indexed'> | null {
    const maybeTombstoned = this.tombstoned === null || this.tombstoned.has(prefixOfHex(e.id));
    if (maybeTombstoned && this.tombIds.doesExist([e.id, e.pubkey])) return 'deleted';
    const vanishedUntil = this.vanishedAuthors?.has(e.pubkey) === false ? undefined : this.vanished.get(e.pubkey);
    if (vanishedUntil !== undefined && e.created_at <= vanishedUntil && !(cls.vanish && e.kind === 62)) return 'vanished';
    if (cls.replaceKey !== undefined) {
      const deletedUntil = this.tombAddrs.get(cls.replaceKey);
      if (deletedUntil !== undefined && e.created_at <= deletedUntil) return 'deleted';
      const slot = this.slots.get(cls.replaceKey);
      // NIP-01: newest created_at wins; on a tie, the lowest id.
      if (slot && (slot.c > e.created_at || (slot.c === e.created_at && slot.id < e.id))) return 'superseded';
    }
    return null;
  }

  private applyOne(batch: EventBatch, k: number, cls: Classified, writtenAt: number, bump: (name: string, n?: number) => void): Outcome {
    const refused = this.verdictAt(batch, k, cls);
    if (refused !== null) {
      // A refused event's bytes (a late copy of a deleted one, say) do not stay on disk.
      if (writtenAt >= 0) this.removedInTxn?.push({ o: writtenAt, n: lineBytesAt(batch, k) });
      return refused;
    }
    if (isEmptyCls(cls)) {
      this.indexRow(batch, k, cls, writtenAt);
      return 'indexed';
    }
    const e = headAt(batch, k);
    if (cls.replaceKey !== undefined) {
      const slot = this.slots.get(cls.replaceKey);
      if (slot) {
        const old = this.recordOf(slot.id);
        if (old) {
          this.removeEvent(slot.id, old, 'replaced');
          bump('removed.replaced');
        }
      }
      this.slots.put(cls.replaceKey, { id: e.id, c: e.created_at });
    }
    if (cls.expiresAt !== undefined) this.expiry.put([cls.expiresAt, e.id], null);
    this.indexRow(batch, k, cls, writtenAt);
    if (cls.deletes) this.applyDeletion(e, cls.deletes, bump);
    if (cls.vanish) this.applyVanish(e, bump);
    return 'indexed';
  }

  /** Writes event k's row (and its line to the log if writeAhead did not) under a new sequence number. */
  private indexRow(batch: EventBatch, k: number, cls: Classified, writtenAt: number): void {
    const { o, n } = writtenAt >= 0 ? { o: writtenAt, n: lineBytesAt(batch, k) } : this.log.append(lineAt(batch, k));
    const keys = batch.keyBytes;
    const row: EventRow = { i: keys.subarray(64 * k, 64 * k + 32), p: keys.subarray(64 * k + 32, 64 * k + 64), c: batch.createdAt[k]!, k: batch.kinds[k]!, o, n };
    if (cls.expiresAt !== undefined) row.x = cls.expiresAt;
    if (cls.replaceKey !== undefined) row.s = cls.replaceKey;
    const seq = this.nextSeq++;
    // putSync: the row's bytes are copied before the encoder's buffer is reused.
    this.events.putSync(seq, row);
    const prefix = prefixAt(keys, 64 * k);
    this.ids.add(prefix, seq);
    this.idsAddedInTxn?.push(prefix.hi, prefix.lo, seq);
  }

  private applyDeletion(e: EventHead, del: { ids: string[]; addrs: string[] }, bump: (name: string, n?: number) => void): void {
    for (const id of del.ids) {
      const target = this.recordOf(id);
      if (target) {
        if (target.p !== e.pubkey || target.k === 5) continue; // only the author; deleting a deletion does nothing
        this.removeEvent(id, target, 'deleted');
        bump('removed.deleted');
      }
      this.tombIds.put([id, e.pubkey], e.created_at);
      this.tombstoned?.add(prefixOfHex(id), TOMBSTONED);
    }
    for (const addr of del.addrs) {
      const prev = this.tombAddrs.get(addr);
      if (prev === undefined || prev < e.created_at) this.tombAddrs.put(addr, e.created_at);
      const slot = this.slots.get(addr);
      if (slot && slot.c <= e.created_at) {
        const target = this.recordOf(slot.id);
        if (target) {
          this.removeEvent(slot.id, target, 'deleted');
          bump('removed.deleted');
        }
      }
    }
  }

  private applyVanish(e: EventHead, bump: (name: string, n?: number) => void): void {
    const prev = this.vanished.get(e.pubkey);
    if (prev === undefined || prev < e.created_at) this.vanished.put(e.pubkey, e.created_at);
    this.vanishedAuthors?.add(e.pubkey);
    const doomed: EventRecord[] = [];
    for (const seq of this.authorSeqs(e.pubkey)) {
      const row = this.events.get(seq);
      const rec = row && recordOfRow(row);
      if (rec && rec.p === e.pubkey && rec.c <= e.created_at && rec.i !== e.id) doomed.push(rec);
    }
    for (const rec of doomed) {
      this.removeEvent(rec.i, rec, 'vanished');
      bump('removed.vanished');
    }
  }

  /**
   * Every stored event of an author (sequence numbers, unordered): the unbundled ones from the
   * events after the frontier, the bundled ones from the author's file in each bundle holding
   * them (a bundle whose data cannot be read is scanned in the index instead).
   */
  private authorSeqs(pubkey: string): Set<number> {
    const seqs = new Set<number>();
    const mine = (p: string) => p === pubkey;
    for (const list of this.scanAuthors(this.frontier, Number.MAX_SAFE_INTEGER, mine).values()) for (const r of list) seqs.add(r.seq);
    for (const ih of this.authorBundleHashes(pubkey)) {
      const stats = this.bundleAuthorDb.get(bundleAuthorKey(ih, pubkey));
      const lines = stats && this.bundleLines ? this.bundleLines(ih, stats) : null;
      if (lines) {
        for (const json of lines) {
          const head = canonicalHead(json);
          const seq = head ? this.seqOf(head.id) : undefined;
          if (seq !== undefined) seqs.add(seq);
        }
        continue;
      }
      const b = this.bundles.get(ih);
      if (b) for (const list of this.scanAuthors(b.seqStart, b.seqEnd, mine).values()) for (const r of list) seqs.add(r.seq);
    }
    return seqs;
  }

  private removeEvent(id: string, rec: EventRecord, reason: string): void {
    const seq = this.lookup(id)?.seq;
    if (seq === undefined) return;
    this.events.remove(seq);
    // Until the transaction commits, reads outside it still see the row: the entry goes then.
    const prefix = prefixOfHex(id);
    if (this.idsRemovedInTxn) this.idsRemovedInTxn.push(prefix.hi, prefix.lo, seq);
    else this.ids.remove(prefix, seq);
    this.removedInTxn?.push({ o: rec.o, n: rec.n });
    if (rec.x !== undefined) this.expiry.remove([rec.x, id]);
    // Deleted, vanished and expired events must leave the swarm soon: the bundler rewrites the
    // bundle holding them. A superseded version is harmless history (readers keep the newest)
    // and leaves at the bundle's next merge, so replaceable-heavy traffic causes no rewrites.
    if (reason !== 'replaced' && (seq < this.frontier || seq < this.bundling)) {
      this.removals.put(id, { r: reason, p: rec.p, s: seq, n: ++this.removalCounter });
    }
  }

  /**
   * A write transaction that may append to the event log and remove events: the log is written
   * and synced before the commit; removed events' bytes are blanked once it has committed.
   */
  private async writeTxn(body: () => void): Promise<void> {
    let removed: LogRef[] = [];
    let removalsUpTo = 0;
    let idsAdded: IdEntries = [];
    let idsRemoved: IdEntries = [];
    try {
      // A child transaction: if the body or the log write throws, none of its writes commit
      // (a plain lmdb-js transaction callback that throws keeps the writes it made).
      await this.root.childTransaction(() => {
        removed = this.removedInTxn = [];
        idsAdded = this.idsAddedInTxn = [];
        idsRemoved = this.idsRemovedInTxn = [];
        try {
          body();
          removalsUpTo = this.removalCounter;
          this.log.flush();
          this.meta.put(LOG_END_KEY, this.log.end);
        } catch (err) {
          this.log.discard();
          throw err;
        } finally {
          this.removedInTxn = this.idsAddedInTxn = this.idsRemovedInTxn = null;
        }
      });
    } catch (err) {
      // Entries for rows that never committed would only cost lookups a read: drop them.
      for (let x = 0; x < idsAdded.length; x += 3) {
        const seq = idsAdded[x + 2]!;
        if (this.events.get(seq) === undefined) this.ids.remove({ hi: idsAdded[x]!, lo: idsAdded[x + 1]! }, seq);
      }
      throw err;
    }
    for (let x = 0; x < idsRemoved.length; x += 3) this.ids.remove({ hi: idsRemoved[x]!, lo: idsRemoved[x + 1]! }, idsRemoved[x + 2]!);
    this.committedRemovals = Math.max(this.committedRemovals, removalsUpTo);
    if (this.blankHolds > 0) for (const ref of removed) this.heldBlanks.push(ref);
    else this.blankAll(removed);
  }

  private blankAll(refs: LogRef[]): void {
    for (const ref of refs) {
      try {
        this.log.blank(ref);
      } catch {
        /* best effort: a full disk must not fail a committed batch */
      }
    }
  }

  /** Read-modify-write inside the transaction, so overlapping batches never lose an increment. */
  private writeCounters(deltas: Map<string, number>): void {
    for (const [name, d] of deltas) if (d !== 0) this.counters.put(name, (this.counters.get(name) ?? 0) + d);
  }
}

export interface BundleFileStats {
  n: number;
  bytes: number;
  /** Offset of the author's file in the bundle's data file. */
  o: number;
}

/** An author's lines in a bundle, read from its data file; null when it cannot be read. */
export type BundleLineReader = (ih: string, file: BundleFileStats) => string[] | null;

/**
 * Id index entries as flat triples (prefix hi, prefix lo, sequence number): a transaction's list
 * lives until its commit, and numbers in one array are no objects for the collector to copy.
 */
type IdEntries = number[];

function sameBytes(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number): boolean {
  for (let i = 0; i < 32; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function recordOfRow(row: EventRow): EventRecord {
  return { ...row, i: hex(row.i), p: hex(row.p) };
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
