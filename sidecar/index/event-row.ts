// An event row of the index (Store's `events` table, index format 7) as fixed little-endian bytes.
// lmdb-js's default msgpack encoding, without shared structures, wrote each row's record
// definition inline and rebuilt it on every read: ~2 µs of the ingest thread per event.
//
//   offset  size  field
//   0       1     flags: bit 0 = has `x`, bit 1 = has `s`; bits 2-7 are 0
//   1       32    i   event id
//   33      32    p   author pubkey
//   65      8     c   created_at (f64: any safe integer, as the JSON had it)
//   73      8     o   offset of the line in events.log (f64: past 4 GiB)
//   81      4     n   line length in bytes (u32)
//   85      2     k   kind (u16)
//   87      8     x   NIP-40 expiration (f64), if bit 0
//   87|95   rest  s   replaceable slot key (UTF-8), if bit 1
//
// A row's first byte is 0-3. A msgpack row of format 6 starts with 0xd4 (msgpackr's inline
// record definition) or a map byte (0x80-0x8f, 0xde, 0xdf), never 0-3, so the two cannot be
// confused, and decoding a row that is not format 7 fails instead of misreading it.
import { isUtf8 } from 'node:buffer';
import type { LogRef } from './event-log.js';

const HAS_X = 1;
const HAS_S = 2;
const FIXED = 87;

/** Bytes of a row without `s` (`s` adds its UTF-8 bytes). */
function fixedBytes(row: EventRow): number {
  return row.x === undefined ? FIXED : FIXED + 8;
}

function writeRow(row: EventRow, out: Buffer): void {
  if (row.i.length !== 32 || row.p.length !== 32)
    throw new RangeError(`event row: id and pubkey must be 32 bytes (got ${row.i.length}, ${row.p.length})`);
  out[0] = (row.x === undefined ? 0 : HAS_X) | (row.s === undefined ? 0 : HAS_S);
  out.set(row.i, 1);
  out.set(row.p, 33);
  out.writeDoubleLE(row.c, 65);
  out.writeDoubleLE(row.o, 73);
  out.writeUInt32LE(row.n, 81);
  out.writeUInt16LE(row.k, 85);
  if (row.x !== undefined) out.writeDoubleLE(row.x, FIXED);
  if (row.s !== undefined) out.write(row.s, fixedBytes(row), 'utf8');
}

function rowBytes(row: EventRow): number {
  return fixedBytes(row) + (row.s === undefined ? 0 : Buffer.byteLength(row.s, 'utf8'));
}

/**
 * How LMDB stores an EventRecord: id and author as 32 raw bytes instead of 64 hex characters
 * (every byte of a row is resident memory once its page was touched).
 */
export interface EventRow extends LogRef {
  i: Uint8Array;
  p: Uint8Array;
  c: number;
  k: number;
  x?: number;
  s?: string;
}

export function encodeEventRow(row: EventRow): Buffer {
  const out = Buffer.allocUnsafe(rowBytes(row));
  writeRow(row, out);
  return out;
}

/**
 * Encodes rows into one reused buffer: each answer is valid until the next call. Only for a put
 * that copies the value before returning (lmdb-js `putSync`, or `put` inside a write
 * transaction callback: both hand the bytes to mdb_put synchronously).
 */
export class EventRowWriter {
  private scratch = Buffer.allocUnsafeSlow(256);
  /** Views of the scratch for the two lengths of rows without `s` (most rows). */
  private plain = this.scratch.subarray(0, FIXED);
  private expiring = this.scratch.subarray(0, FIXED + 8);

  encode(row: EventRow): Buffer {
    if (row.s === undefined) {
      const out = row.x === undefined ? this.plain : this.expiring;
      writeRow(row, out);
      return out;
    }
    const size = rowBytes(row);
    if (size > this.scratch.length) {
      this.scratch = Buffer.allocUnsafeSlow(2 * size);
      this.plain = this.scratch.subarray(0, FIXED);
      this.expiring = this.scratch.subarray(0, FIXED + 8);
    }
    const out = this.scratch.subarray(0, size);
    writeRow(row, out);
    return out;
  }
}

/** Where decoded rows' ids and pubkeys are copied to: 64 bytes each, a new slab when one is full. */
const SLAB_BYTES = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/**
 * The row in `bytes`, which may be a buffer the next read reuses (lmdb-js's `getBinaryFast`, or
 * what it hands a table's decoder): `i` and `p` are copied out (into a shared slab, cheaper than
 * a buffer each) and `s` is a new string, so the row stays valid as long as it is kept.
 */
export function decodeEventRow(bytes: Uint8Array): EventRow {
  // `length`, not `byteLength`: lmdb-js's reused read buffer sets `length` to the value's size.
  const len = bytes.length;
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, len);
  const flags = len > 0 ? b[0]! : -1;
  if (flags < 0 || flags > (HAS_X | HAS_S)) {
    throw new Error(
      `corrupt event row: first byte ${flags < 0 ? 'missing' : `0x${flags.toString(16)}`} is not a format-7 row's flags (0-3)`,
    );
  }
  const fixed = flags & HAS_X ? FIXED + 8 : FIXED;
  if (flags & HAS_S ? len < fixed : len !== fixed) {
    throw new Error(`corrupt event row: ${len} bytes, flags 0x${flags.toString(16)} need ${flags & HAS_S ? 'at least ' : ''}${fixed}`);
  }
  if (slabUsed + 64 > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  b.copy(slab, slabUsed, 1, 65);
  const at = slab.byteOffset + slabUsed;
  slabUsed += 64;
  const row: EventRow = {
    i: new Uint8Array(slab.buffer, at, 32),
    p: new Uint8Array(slab.buffer, at + 32, 32),
    c: b.readDoubleLE(65),
    k: b.readUInt16LE(85),
    o: b.readDoubleLE(73),
    n: b.readUInt32LE(81),
  };
  if (flags & HAS_X) row.x = b.readDoubleLE(FIXED);
  if (flags & HAS_S) {
    if (!isUtf8(b.subarray(fixed, len))) throw new Error('corrupt event row: its slot key is not UTF-8');
    row.s = b.toString('utf8', fixed, len);
  }
  return row;
}

/**
 * The `events` table's lmdb-js encoder (`openDB({ encoder })`). lmdb-js hands `decode` the buffer
 * it reuses for every read, which decodeEventRow copies out of: no value is copied whole first,
 * as `encoding: 'binary'` does (a ~90-byte ArrayBuffer per row read). `encode` answers the
 * writer's reused buffer: use it with `putSync`, or `put` inside a transaction callback only.
 */
export function eventRowEncoder(): { encode(row: EventRow): Buffer; decode(bytes: Uint8Array): EventRow } {
  const writer = new EventRowWriter();
  return { encode: (row) => writer.encode(row), decode: (bytes) => decodeEventRow(bytes) };
}
