// What deletions (NIP-09) and vanish requests (NIP-62) leave behind so that later copies of what
// they removed stay out: the `tomb-ids`, `tomb-addrs` and `vanished` tables, private here. The
// rules that read them are in sidecar/policy/nip09-deletion.ts and nip62-vanish.ts; the store
// applies them inside its write transaction.
//
// Both are asked about for every event and almost never match, so each keeps an in-memory
// summary that answers "certainly not" without reading LMDB (null in a read-only index, which
// reads the tables: the sidecar may be writing them).
import type { Database, RootDatabase } from 'lmdb';
import { IdIndex, prefixOfHex, type IdPrefix } from './id-index.js';
import { laterDeletion } from '../policy/nip09-deletion.js';
import { laterVanish } from '../policy/nip62-vanish.js';

/** The value of every entry of the tombstone prefix index (a set: only the prefixes matter). */
const TOMBSTONED = 1;

export class Tombstones {
  /** [event id, deleting author] → created_at of the deletion. */
  private readonly ids: Database<number, [string, string]>;
  /** Address (`kind:pubkey:d`) → created_at of the newest deletion of it. */
  private readonly addrs: Database<number, string>;
  /** Author → created_at of their newest vanish request. */
  private readonly vanished: Database<number, string>;
  /** Authors with a `vanished` row (or one being written). Never shrinks (the table does not either). */
  private vanishedAuthors: Set<string> | null = null;
  /**
   * The ids in `tomb-ids`, by prefix. Entries are never dropped (nor are tombstones); one from a
   * transaction that did not commit only costs a read.
   */
  private tombstoned: IdIndex | null = null;

  constructor(root: RootDatabase) {
    this.ids = root.openDB<number, [string, string]>({ name: 'tomb-ids', compression: false });
    this.addrs = root.openDB<number, string>({ name: 'tomb-addrs', compression: false });
    this.vanished = root.openDB<number, string>({ name: 'vanished', compression: false });
  }

  /** Builds the in-memory summaries (a writable index, once its format is checked). */
  load(): void {
    this.vanishedAuthors = new Set(this.vanished.getKeys());
    const index = new IdIndex(this.ids.getKeysCount());
    for (const [id] of this.ids.getKeys()) index.add(prefixOfHex(id), TOMBSTONED);
    this.tombstoned = index;
  }

  /**
   * False when neither a tombstone nor a vanish request can concern an event whose id has this
   * prefix (the common case, answered from memory).
   */
  mayConcern(prefix: IdPrefix): boolean {
    return this.vanishedAuthors === null || this.vanishedAuthors.size > 0 || this.tombstoned === null || this.tombstoned.has(prefix);
  }

  /** Whether `pubkey` deleted the event `id` (a tombstone from a deletion that may have come first). */
  deletedById(id: string, pubkey: string): boolean {
    const maybe = this.tombstoned === null || this.tombstoned.has(prefixOfHex(id));
    return maybe && this.ids.doesExist([id, pubkey]);
  }

  /** created_at of the newest deletion of an address, if any. */
  addressDeletedUntil(addr: string): number | undefined {
    return this.addrs.get(addr);
  }

  /** created_at of the author's newest vanish request, if any. */
  vanishedUntil(pubkey: string): number | undefined {
    return this.vanishedAuthors?.has(pubkey) === false ? undefined : this.vanished.get(pubkey);
  }

  /** Inside a transaction: `pubkey` deleted `id` at `at`. */
  recordIdDeletion(id: string, pubkey: string, at: number): void {
    this.ids.put([id, pubkey], at);
    this.tombstoned?.add(prefixOfHex(id), TOMBSTONED);
  }

  /** Inside a transaction: an address was deleted at `at` (the newest deletion is kept). */
  recordAddressDeletion(addr: string, at: number): void {
    if (laterDeletion(this.addrs.get(addr), at)) this.addrs.put(addr, at);
  }

  /** Inside a transaction: the author asked at `at` to vanish (the newest request is kept). */
  recordVanish(pubkey: string, at: number): void {
    if (laterVanish(this.vanished.get(pubkey), at)) this.vanished.put(pubkey, at);
    this.vanishedAuthors?.add(pubkey);
  }
}
