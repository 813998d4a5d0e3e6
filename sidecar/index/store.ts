// The LMDB index: events, replaceable slots, expiry and counters, and the batch apply. Every batch
// of events is applied in one write transaction; reads inside it see its own writes, so
// duplicates, replacements and deletions inside one batch resolve exactly as across batches.
// The other tables have their own owners, opened on the same environment (docs/architecture.md,
// "The index: tables and owners"): tombstones, bundle records, pointer records, meta.
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
import { BundleRecords } from './bundle-records.js';
import { IndexMeta } from './index-meta.js';
import { PointerRecords } from './pointer-records.js';
import { Tombstones } from './tombstones.js';
import { addressDeletionCovers, deletionRemoves } from '../policy/nip09-deletion.js';
import { firstUnexpired } from '../policy/nip40-expiration.js';
import { vanishRefuses, vanishRemoves } from '../policy/nip62-vanish.js';

export type { BundleFile, BundleFileStats, BundleLineReader, BundleRecord, BundleState, RemovalRecord } from './bundle-records.js';
export type { PointerRecord } from './pointer-records.js';

/** Format 7 stores event rows in index/event-row.ts's layout; 6 had them in msgpack. */
export const INDEX_FORMAT = 7;
/** Format 5 is format 6 plus an `ids` table (id → sequence number), now kept in memory. */
export const UPGRADABLE_FORMATS: readonly unknown[] = [5, 6];
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

export interface SlotRecord {
  id: string;
  c: number;
}

export type Outcome = 'indexed' | 'duplicate' | 'deleted' | 'vanished' | 'superseded';

export type Counters = Record<string, number>;

export class Store {
  /** The LMDB environment every table of the index is opened on (and the backfill checkpoints). */
  readonly root: RootDatabase;
  /** Events under an increasing sequence number: appends stay fast as the index grows. */
  private readonly events: Database<EventRow, number>;
  /** How the index was upgraded to this version's format when it opened, if it was. */
  readonly upgraded: { from: number; rows: number; ms: number } | null = null;
  /** Replaceable and addressable slots: replace key → the event holding it. */
  private readonly slots: Database<SlotRecord, string>;
  /** NIP-40: [expiration, id] of every stored event that expires. */
  private readonly expiry: Database<null, [number, string]>;
  private readonly counters: Database<number, string>;
  private readonly meta: IndexMeta;
  private readonly tombstones: Tombstones;
  /** Where every bundled event is, the frontier, and removals waiting for a bundle rewrite. */
  readonly bundles: BundleRecords;
  /** The bridge's signed BEP-44 items and the authors waiting for theirs. */
  readonly pointers: PointerRecords;
  readonly log: EventLog;

  private nextSeq = 1;
  /** Log ranges of events removed by the running transaction (blanked after its commit). */
  private removedInTxn: LogRef[] | null = null;
  /** Event id → sequence number (index/id-index.ts); built from the events table on first use. */
  private idIndex: IdIndex | null = null;
  /** Id index entries the running transaction added (dropped again if it does not commit). */
  private idsAddedInTxn: IdEntries | null = null;
  /** Id index entries of events the running transaction removed (dropped once it commits). */
  private idsRemovedInTxn: IdEntries | null = null;

  private constructor(
    readonly dir: string,
    readOnly: boolean,
  ) {
    if (!readOnly) mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.root = open({ path: dir, maxDbs: 24, compression: false, readOnly, mapSize: MAP_SIZE });
    const db = <V, K>(name: string) => this.root.openDB<V, K & import('lmdb').Key>({ name, compression: false });
    // Rows in index/event-row.ts's layout; its decoder copies out of lmdb-js's reused read buffer.
    this.events = this.root.openDB<EventRow, number>({
      name: 'events',
      compression: false,
      encoder: eventRowEncoder(),
    } as DatabaseOptions & { name: string });
    this.slots = db('slots');
    this.tombstones = new Tombstones(this.root);
    this.expiry = db('expiry');
    this.meta = new IndexMeta(this.root);
    this.bundles = new BundleRecords(this.root, this.meta);
    this.pointers = new PointerRecords(this.root, this.meta);
    this.counters = db('counters');
    try {
      if (readOnly) this.checkReadableFormat();
      else this.upgraded = this.checkFormat();
      for (const last of this.events.getKeys({ reverse: true, limit: 1 })) this.nextSeq = last + 1;
      this.log = new EventLog(join(dir, 'events.log'), this.meta.logEnd(), readOnly);
      this.bundles.loadFrontier();
      if (!readOnly) this.tombstones.load();
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
    const format = this.meta.format();
    if (format === INDEX_FORMAT) return null;
    if (UPGRADABLE_FORMATS.includes(format)) {
      if (format === 5) this.root.openDB({ name: 'ids' }).dropSync();
      const { rows, ms } = this.meta.upgradeRows(() => this.meta.setFormatSync(INDEX_FORMAT));
      return { from: format as number, rows, ms };
    }
    if (format === undefined && this.isEmpty()) {
      this.meta.setFormatSync(INDEX_FORMAT);
      return null;
    }
    throw new Error(`${this.formatMismatch(format)}: move it away (and the bundles directory) and replay history with nostr-bt-backfill`);
  }

  /** A read-only index cannot be upgraded: one of an older format is refused, not misread. */
  private checkReadableFormat(): void {
    const format = this.meta.format();
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
    return this.events.getKeysCount({ limit: 1 }) === 0 && this.bundles.isEmpty();
  }

  /** The index format recorded on disk. */
  indexFormat(): unknown {
    return this.meta.format();
  }

  /** Where an interrupted upgrade of the event rows resumes (undefined: none in progress). */
  upgradeResumesAt(): number | undefined {
    return this.meta.upgradeResumesAt();
  }

  /** First sequence number not yet in a bundle, and the next one to be assigned. */
  get pendingRange(): [number, number] {
    return [this.bundles.frontier, this.nextSeq];
  }

  /** Where an event is archived: its bundle and the file in it, or undefined if not (yet). */
  locate(id: string): { ih: string; file: string } | undefined {
    const found = this.lookup(id);
    if (!found) return undefined;
    const { seq, row } = found;
    const pubkey = hex(row.p);
    const ih = this.bundles.bundleAt(seq, pubkey);
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

  private buildIdIndex(): IdIndex {
    const index = new IdIndex(this.eventCount());
    for (const { key, value } of this.events.getRange()) index.add(prefixAt(value.i, 0), key);
    return index;
  }

  /** Committed event rows with seq ≥ `from`, in order, as stored (id and author as raw bytes). */
  *rowsFrom(from: number): Iterable<{ seq: number; row: Readonly<EventRow> }> {
    // A generator: a caller that stops early ends the range read (and its read transaction).
    for (const { key, value } of this.events.getRange({ start: from })) yield { seq: key, row: value };
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
      for (const key of [...this.expiry.getKeys({ end: [firstUnexpired(nowSec)], limit })]) {
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
    const rulesApply = cls.replaceKey !== undefined || this.tombstones.mayConcern(prefixAt(keys, 64 * k));
    return rulesApply ? this.refusalOf(headAt(batch, k), cls) : null;
  }

  /** verdict's rules after the duplicate check. */
  private refusalOf(e: EventHead, cls: Classified): Exclude<Outcome, 'indexed'> | null {
    if (this.tombstones.deletedById(e.id, e.pubkey)) return 'deleted';
    if (vanishRefuses(this.tombstones.vanishedUntil(e.pubkey), e, cls.vanish === true)) return 'vanished';
    if (cls.replaceKey !== undefined) {
      if (addressDeletionCovers(this.tombstones.addressDeletedUntil(cls.replaceKey), e.created_at)) return 'deleted';
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
    const row: EventRow = {
      i: keys.subarray(64 * k, 64 * k + 32),
      p: keys.subarray(64 * k + 32, 64 * k + 64),
      c: batch.createdAt[k]!,
      k: batch.kinds[k]!,
      o,
      n,
    };
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
        if (!deletionRemoves({ pubkey: target.p, kind: target.k }, e.pubkey)) continue;
        this.removeEvent(id, target, 'deleted');
        bump('removed.deleted');
      }
      this.tombstones.recordIdDeletion(id, e.pubkey, e.created_at);
    }
    for (const addr of del.addrs) {
      this.tombstones.recordAddressDeletion(addr, e.created_at);
      const slot = this.slots.get(addr);
      if (slot && addressDeletionCovers(e.created_at, slot.c)) {
        const target = this.recordOf(slot.id);
        if (target) {
          this.removeEvent(slot.id, target, 'deleted');
          bump('removed.deleted');
        }
      }
    }
  }

  private applyVanish(e: EventHead, bump: (name: string, n?: number) => void): void {
    this.tombstones.recordVanish(e.pubkey, e.created_at);
    const doomed: EventRecord[] = [];
    for (const seq of this.authorSeqs(e.pubkey)) {
      const row = this.events.get(seq);
      const rec = row && recordOfRow(row);
      if (rec && vanishRemoves({ id: rec.i, pubkey: rec.p, created_at: rec.c }, e)) doomed.push(rec);
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
    for (const list of this.scanAuthors(this.bundles.frontier, Number.MAX_SAFE_INTEGER, mine).values())
      for (const r of list) seqs.add(r.seq);
    for (const ih of this.bundles.authorBundles(pubkey)) {
      const lines = this.bundles.linesOf(ih, pubkey);
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
    if (reason !== 'replaced') this.bundles.recordRemoval(id, reason, rec.p, seq);
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
          removalsUpTo = this.bundles.removalsRecorded;
          this.log.flush();
          this.meta.setLogEnd(this.log.end);
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
    this.bundles.removalsCommitted(removalsUpTo);
    this.log.blankRemoved(removed);
  }

  /** Read-modify-write inside the transaction, so overlapping batches never lose an increment. */
  private writeCounters(deltas: Map<string, number>): void {
    for (const [name, d] of deltas) if (d !== 0) this.counters.put(name, (this.counters.get(name) ?? 0) + d);
  }
}

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
