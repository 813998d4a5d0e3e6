// Event id → sequence number, in memory: an open-addressing hash table keyed by the first 8
// bytes of the id (ids are SHA-256 hashes, so those bytes are uniform and serve as the hash).
//
// Why not an LMDB table: ids are random, so each insert into a B-tree copies a different 4 KiB
// page, and at a million events that one table took half the index's write time and most of its
// file growth (docs/architecture.md, "Bundles"; index format 6 dropped it). The events table already holds every id
// under its sequence number; this table is rebuilt from it when the index opens.
//
// It only names candidates: two ids may share a prefix, so the caller confirms a candidate
// against the event row it points to (Store.seqOf). 12 bytes a slot, at most 60% full: about
// 20–40 bytes of memory per indexed event.

const EMPTY = 0;
const MAX_LOAD = 0.6;
const MIN_CAPACITY = 1024;

export class IdIndex {
  /** Per slot: the id's bytes 0–3 and 4–7 (big-endian words). */
  private keys: Uint32Array;
  /** Per slot: the sequence number (0: empty slot; sequence numbers start at 1). */
  private seqs: Uint32Array;
  private mask: number;
  private count = 0;

  constructor(expected = 0) {
    let capacity = MIN_CAPACITY;
    while (capacity * MAX_LOAD < expected) capacity *= 2;
    this.keys = new Uint32Array(2 * capacity);
    this.seqs = new Uint32Array(capacity);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.keys.byteLength + this.seqs.byteLength;
  }

  /** Sequence numbers recorded under the id's prefix (usually none or one). */
  candidates(id: IdPrefix): number[] {
    const out: number[] = [];
    for (let s = id.lo & this.mask; this.seqs[s] !== EMPTY; s = (s + 1) & this.mask) {
      if (this.keys[2 * s] === id.hi && this.keys[2 * s + 1] === id.lo) out.push(this.seqs[s]!);
    }
    return out;
  }

  /** Whether any entry has the id's prefix (candidates without the array). */
  has(id: IdPrefix): boolean {
    for (let s = id.lo & this.mask; this.seqs[s] !== EMPTY; s = (s + 1) & this.mask) {
      if (this.keys[2 * s] === id.hi && this.keys[2 * s + 1] === id.lo) return true;
    }
    return false;
  }

  add(id: IdPrefix, seq: number): void {
    if (!Number.isInteger(seq) || seq < 1 || seq > 0xffffffff) throw new RangeError(`sequence number ${seq} does not fit the id index`);
    if (this.count + 1 > (this.mask + 1) * MAX_LOAD) this.grow();
    this.place(id.hi, id.lo, seq);
    this.count++;
  }

  /** Forgets the entry (id, seq); false if there is none. */
  remove(id: IdPrefix, seq: number): boolean {
    const { keys, seqs, mask } = this;
    let s = id.lo & mask;
    for (; seqs[s] !== EMPTY; s = (s + 1) & mask) {
      if (seqs[s] === seq && keys[2 * s] === id.hi && keys[2 * s + 1] === id.lo) break;
    }
    if (seqs[s] === EMPTY) return false;
    // Backward-shift deletion: later entries of the same probe run move up into the hole, so
    // lookups never stop early at it (no tombstones to accumulate).
    let hole = s;
    for (let j = (s + 1) & mask; seqs[j] !== EMPTY; j = (j + 1) & mask) {
      const home = keys[2 * j + 1]! & mask;
      // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (between) continue;
      keys[2 * hole] = keys[2 * j]!;
      keys[2 * hole + 1] = keys[2 * j + 1]!;
      seqs[hole] = seqs[j]!;
      hole = j;
    }
    seqs[hole] = EMPTY;
    this.count--;
    return true;
  }

  private place(hi: number, lo: number, seq: number): void {
    let s = lo & this.mask;
    while (this.seqs[s] !== EMPTY) s = (s + 1) & this.mask;
    this.keys[2 * s] = hi;
    this.keys[2 * s + 1] = lo;
    this.seqs[s] = seq;
  }

  private grow(): void {
    const { keys, seqs } = this;
    const capacity = 2 * seqs.length;
    this.keys = new Uint32Array(2 * capacity);
    this.seqs = new Uint32Array(capacity);
    this.mask = capacity - 1;
    for (let s = 0; s < seqs.length; s++) if (seqs[s] !== EMPTY) this.place(keys[2 * s]!, keys[2 * s + 1]!, seqs[s]!);
  }
}

/** The first 8 bytes of an id, as two 32-bit words. */
export interface IdPrefix {
  hi: number;
  lo: number;
}

/** From 64 lowercase hex characters (validated upstream). */
export function prefixOfHex(id: string): IdPrefix {
  return { hi: parseInt(id.slice(0, 8), 16) >>> 0, lo: parseInt(id.slice(8, 16), 16) >>> 0 };
}

/** From an id's 32 raw bytes, at `at` in `bytes` (an id on its own, or a batch's keys). */
export function prefixAt(bytes: Uint8Array, at: number): IdPrefix {
  return {
    hi: ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0,
    lo: ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) | bytes[at + 7]!) >>> 0,
  };
}
