// The LMDB index: events, per-author order, replaceable slots, tombstones, expiry, counters.
// Every batch of events is applied in one write transaction; reads inside it see its own writes,
// so duplicates, replacements and deletions inside one batch resolve exactly as across batches.
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { NostrEvent } from './nostr-event.js';
import type { Classified } from './policy.js';

/** One indexed event: id, canonical JSON, author, created_at, kind, expiry, replaceable slot. */
export interface EventRecord {
  i: string;
  j: string;
  p: string;
  c: number;
  k: number;
  x?: number;
  s?: string;
}

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

export interface RemovalRecord {
  r: string;
  p: string;
}

export type BundleState = 'active' | 'retired';

/** A bundle torrent. Levels: 0 window, 1 hour, 2 day, 3 month, 4 year (docs/protocol.md §6). */
export interface BundleRecord {
  ih: string;
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

export interface IngestItem {
  event: NostrEvent;
  json: string;
  cls: Classified;
}

export type Outcome = 'indexed' | 'duplicate' | 'deleted' | 'vanished' | 'superseded';

export type Counters = Record<string, number>;

export class Store {
  readonly root: RootDatabase;
  /** Events under an increasing sequence number: appends stay fast as the index grows. */
  readonly events: Database<EventRecord, number>;
  /** Event id → sequence number. */
  readonly ids: Database<number, string>;
  readonly byAuthor: Database<null, [string, number, string]>;
  readonly slots: Database<SlotRecord, string>;
  readonly tombIds: Database<number, [string, string]>;
  readonly tombAddrs: Database<number, string>;
  readonly vanished: Database<number, string>;
  readonly expiry: Database<null, [number, string]>;
  /** Indexed events not yet in a bundle: sequence number → canonical JSON bytes. */
  readonly pending: Database<number, number>;
  /** Where each bundled event is: id → bundle infohash (the file is `<pubkey>.jsonl`). */
  readonly eventLoc: Database<string, string>;
  /** Bundle contents in file order: [ih, pubkey, created_at, id]. */
  readonly bundleEvents: Database<null, [string, string, number, string]>;
  /** Per bundle and author: events and bytes of that author's file. */
  readonly bundleAuthors: Database<{ n: number; bytes: number }, [string, string]>;
  /** Per author, the bundles holding their events; newest last: [pubkey, periodEnd, ih]. */
  readonly authorBundles: Database<null, [string, number, string]>;
  readonly bundles: Database<BundleRecord, string>;
  /** Events removed from the index that a bundle still holds: [ih, id] → reason and author. */
  readonly removals: Database<RemovalRecord, [string, string]>;
  /** BEP-44 items: salt (hex) → signed item. */
  readonly pointers: Database<PointerRecord, string>;
  /** Authors whose pointer must be republished because their bundles changed: pubkey → since (ms). */
  readonly pointerDirty: Database<number, string>;
  readonly counters: Database<number, string>;
  readonly meta: Database<unknown, string>;

  private nextSeq = 1;

  private constructor(dir: string, readOnly: boolean) {
    if (!readOnly) mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.root = open({ path: dir, maxDbs: 24, compression: false, readOnly });
    const db = <V, K>(name: string) => this.root.openDB<V, K & import('lmdb').Key>({ name, compression: false });
    this.events = db('events');
    this.ids = db('ids');
    this.byAuthor = db('by-author');
    this.slots = db('slots');
    this.tombIds = db('tomb-ids');
    this.tombAddrs = db('tomb-addrs');
    this.vanished = db('vanished');
    this.expiry = db('expiry');
    this.pending = db('pending');
    this.eventLoc = db('event-loc');
    this.bundleEvents = db('bundle-events');
    this.bundleAuthors = db('bundle-authors');
    this.authorBundles = db('author-bundles');
    this.bundles = db('bundles');
    this.removals = db('removals');
    this.pointers = db('pointers');
    this.pointerDirty = db('pointer-dirty');
    this.counters = db('counters');
    this.meta = db('meta');
    for (const last of this.events.getKeys({ reverse: true, limit: 1 })) this.nextSeq = last + 1;
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
    return (this.ids.getStats() as { entryCount: number }).entryCount;
  }

  hasEvent(id: string): boolean {
    return this.ids.doesExist(id);
  }

  getEvent(id: string): EventRecord | undefined {
    const seq = this.ids.get(id);
    return seq === undefined ? undefined : this.events.get(seq);
  }

  eventIds(): Iterable<string> {
    return this.ids.getKeys();
  }

  /** Applies a batch in one transaction; resolves with one outcome per item once committed. */
  async applyBatch(items: IngestItem[], extraCounts: Counters = {}): Promise<Outcome[]> {
    const deltas = new Map<string, number>(Object.entries(extraCounts));
    const bump = (name: string, n = 1) => deltas.set(name, (deltas.get(name) ?? 0) + n);
    const outcomes: Outcome[] = [];
    await this.root.transaction(() => {
      for (const item of items) {
        const outcome = this.applyOne(item, bump);
        outcomes.push(outcome);
        bump(outcome === 'indexed' ? 'indexed' : outcome === 'duplicate' ? 'duplicate' : `skipped.${outcome}`);
      }
      this.writeCounters(deltas);
    });
    return outcomes;
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
    await this.root.transaction(() => {
      for (const key of [...this.expiry.getKeys({ end: [nowSec + 1], limit })]) {
        const id = key[1];
        const rec = this.getEvent(id);
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

  close(): Promise<void> {
    return this.root.close();
  }

  /**
   * What the index would answer for this event without writing anything: null when it would be
   * indexed. Used by applyOne and by dry runs (backfill --dry-run).
   */
  verdict(e: NostrEvent, cls: Classified): Exclude<Outcome, 'indexed'> | null {
    if (this.ids.doesExist(e.id)) return 'duplicate';
    if (this.tombIds.doesExist([e.id, e.pubkey])) return 'deleted';
    const vanishedUntil = this.vanished.get(e.pubkey);
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

  private applyOne(item: IngestItem, bump: (name: string, n?: number) => void): Outcome {
    const { event: e, cls } = item;
    const refused = this.verdict(e, cls);
    if (refused !== null) return refused;
    if (cls.replaceKey !== undefined) {
      const slot = this.slots.get(cls.replaceKey);
      if (slot) {
        const old = this.getEvent(slot.id);
        if (old) {
          this.removeEvent(slot.id, old, 'replaced');
          bump('removed.replaced');
        }
      }
      this.slots.put(cls.replaceKey, { id: e.id, c: e.created_at });
    }
    const rec: EventRecord = { i: e.id, j: item.json, p: e.pubkey, c: e.created_at, k: e.kind };
    if (cls.expiresAt !== undefined) {
      rec.x = cls.expiresAt;
      this.expiry.put([cls.expiresAt, e.id], null);
    }
    if (cls.replaceKey !== undefined) rec.s = cls.replaceKey;
    const seq = this.nextSeq++;
    this.events.put(seq, rec);
    this.ids.put(e.id, seq);
    this.byAuthor.put([e.pubkey, e.created_at, e.id], null);
    this.pending.put(seq, Buffer.byteLength(item.json) + 1);
    if (cls.deletes) this.applyDeletion(e, cls.deletes, bump);
    if (cls.vanish) this.applyVanish(e, bump);
    return 'indexed';
  }

  private applyDeletion(e: NostrEvent, del: { ids: string[]; addrs: string[] }, bump: (name: string, n?: number) => void): void {
    for (const id of del.ids) {
      const target = this.getEvent(id);
      if (target) {
        if (target.p !== e.pubkey || target.k === 5) continue; // only the author; deleting a deletion does nothing
        this.removeEvent(id, target, 'deleted');
        bump('removed.deleted');
      }
      this.tombIds.put([id, e.pubkey], e.created_at);
    }
    for (const addr of del.addrs) {
      const prev = this.tombAddrs.get(addr);
      if (prev === undefined || prev < e.created_at) this.tombAddrs.put(addr, e.created_at);
      const slot = this.slots.get(addr);
      if (slot && slot.c <= e.created_at) {
        const target = this.getEvent(slot.id);
        if (target) {
          this.removeEvent(slot.id, target, 'deleted');
          bump('removed.deleted');
        }
      }
    }
  }

  private applyVanish(e: NostrEvent, bump: (name: string, n?: number) => void): void {
    const prev = this.vanished.get(e.pubkey);
    if (prev === undefined || prev < e.created_at) this.vanished.put(e.pubkey, e.created_at);
    const doomed: string[] = [];
    for (const key of this.byAuthor.getKeys({ start: [e.pubkey, 0], end: [e.pubkey, e.created_at + 1] })) {
      if (key[2] !== e.id) doomed.push(key[2]);
    }
    for (const id of doomed) {
      const rec = this.getEvent(id);
      if (rec) {
        this.removeEvent(id, rec, 'vanished');
        bump('removed.vanished');
      }
    }
  }

  private removeEvent(id: string, rec: EventRecord, reason: string): void {
    const seq = this.ids.get(id);
    if (seq !== undefined) {
      this.events.remove(seq);
      this.pending.remove(seq);
    }
    this.ids.remove(id);
    this.byAuthor.remove([rec.p, rec.c, id]);
    if (rec.x !== undefined) this.expiry.remove([rec.x, id]);
    const ih = this.eventLoc.get(id);
    if (ih !== undefined) {
      this.eventLoc.remove(id);
      this.bundleEvents.remove([ih, rec.p, rec.c, id]);
      // Deleted, vanished and expired events must leave the swarm soon: the bundler rewrites the
      // bundle without them. A superseded version is harmless history (readers keep the newest)
      // and leaves at the bundle's next merge, so replaceable-heavy traffic causes no rewrites.
      if (reason !== 'replaced') this.removals.put([ih, id], { r: reason, p: rec.p });
    }
  }

  /** Read-modify-write inside the transaction, so overlapping batches never lose an increment. */
  private writeCounters(deltas: Map<string, number>): void {
    for (const [name, d] of deltas) if (d !== 0) this.counters.put(name, (this.counters.get(name) ?? 0) + d);
  }
}
