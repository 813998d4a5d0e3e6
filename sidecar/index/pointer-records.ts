// The bridge's signed BEP-44 items as last published (`pointers`), and the authors whose pointer
// must be published again (`pointer-dirty`): tables private here, written for the publisher
// (sidecar/publishing/publisher.ts), which decides what to sign and when to put it. Items are
// re-put as they are after a restart, and their seq (kept in the meta table) only grows.
import type { Database, RootDatabase } from 'lmdb';
import type { IndexMeta } from './index-meta.js';

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

/** Signs one item inside the transaction that stores it; `takeSeq` gives its seq (at least `floor`, above every earlier one). */
export type ItemSigner = (takeSeq: (floor: number) => number) => [key: string, rec: PointerRecord];

export class PointerRecords {
  /** Salt (hex) → signed item. */
  private readonly items: Database<PointerRecord, string>;
  /** Author → since when (ms) their pointer waits to be republished because their bundles changed. */
  private readonly dirty: Database<number, string>;

  constructor(
    private readonly root: RootDatabase,
    private readonly meta: IndexMeta,
  ) {
    this.items = root.openDB<PointerRecord, string>({ name: 'pointers', compression: false });
    this.dirty = root.openDB<number, string>({ name: 'pointer-dirty', compression: false });
  }

  /** The item stored under this key (the salt in hex). */
  get(key: string): PointerRecord | undefined {
    return this.items.get(key);
  }

  keys(): Iterable<string> {
    return this.items.getKeys();
  }

  *all(): Iterable<[string, PointerRecord]> {
    for (const { key, value } of this.items.getRange()) yield [key, value];
  }

  /** Authors with a published pointer: their first page's salt is their 32-byte pubkey (formats/pointer-item.ts). */
  authorCount(): number {
    let n = 0;
    for (const key of this.items.getKeys()) if (key.length === 64) n++;
    return n;
  }

  /** Marks these authors' pointers for publishing (an author already marked keeps the earlier time). */
  async markDirty(pubkeys: Iterable<string>, at: number): Promise<void> {
    await this.root.transaction(() => {
      for (const p of pubkeys) if (!this.dirty.doesExist(p)) this.dirty.put(p, at);
    });
  }

  hasDirty(): boolean {
    for (const _ of this.dirty.getKeys({ limit: 1 })) return true;
    return false;
  }

  dirtyCount(): number {
    return this.dirty.getStats ? (this.dirty.getStats() as { entryCount: number }).entryCount : 0;
  }

  /** Up to `limit` authors waiting to be published, in key order. */
  *dirtyAuthors(limit: number): Iterable<string> {
    for (const { key } of this.dirty.getRange({ limit })) yield key;
  }

  /** Since when an author has been waiting (undefined: not waiting). */
  dirtySince(pubkey: string): number | undefined {
    return this.dirty.get(pubkey);
  }

  /**
   * Signs and stores items in one transaction (each signer in turn, then the items). With `done`,
   * also clears the author's mark, unless it was set again since `done.since` (their bundles
   * changed meanwhile: the next publication picks that up).
   */
  async signAndStore(
    signers: readonly ItemSigner[],
    done?: { pubkey: string; since: number | undefined },
  ): Promise<[string, PointerRecord][]> {
    const records: [string, PointerRecord][] = [];
    await this.root.transaction(() => {
      for (const sign of signers) records.push(sign((floor) => this.takeSeq(floor)));
      for (const [key, rec] of records) this.items.put(key, rec);
      if (done && this.dirty.get(done.pubkey) === done.since) this.dirty.remove(done.pubkey);
    });
    return records;
  }

  /**
   * Records the outcome of putting the item stored under `key` with this seq; nothing if it was
   * replaced meanwhile (a newer seq).
   */
  async recordPut(key: string, seq: number, update: (cur: PointerRecord) => PointerRecord): Promise<void> {
    await this.root.transaction(() => {
      const cur = this.items.get(key);
      if (!cur || cur.seq !== seq) return;
      this.items.put(key, update(cur));
    });
  }

  /** Inside a transaction: the next seq, at least `floor` and above every seq signed before. */
  private takeSeq(floor: number): number {
    const seq = Math.max(floor, this.meta.pointerSeq() + 1);
    this.meta.setPointerSeq(seq);
    return seq;
  }
}
