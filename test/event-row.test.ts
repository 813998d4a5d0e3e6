// The index's event row layout (sidecar/index/event-row.ts): round trips at the edges of every field,
// corrupt rows refused with a clear error, decoded rows independent of the bytes they came from,
// and the table encoder (reused buffers both ways) against real LMDB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open, type DatabaseOptions } from 'lmdb';
import { decodeEventRow, encodeEventRow, eventRowEncoder, EventRowWriter, type EventRow } from '../sidecar/index/event-row.js';

function row(extra: Partial<EventRow> = {}): EventRow {
  return { i: randomBytes(32), p: randomBytes(32), c: 1_700_000_000, k: 1, o: 12_345, n: 900, ...extra };
}

function plain(r: EventRow): object {
  return { ...r, i: Buffer.from(r.i).toString('hex'), p: Buffer.from(r.p).toString('hex') };
}

const EDGES: EventRow[] = [
  row(),
  row({ k: 0, c: 0, o: 0, n: 0 }),
  row({ k: 65_535, c: Number.MAX_SAFE_INTEGER, o: 2 ** 40 + 7, n: 2 ** 32 - 1 }),
  row({ o: 2 ** 32 + 1, x: 1_800_000_000 }),
  row({ k: 30_023, s: '30023:' + 'ab'.repeat(32) + ':' }),
  row({ k: 30_000, x: 2 ** 33, s: '30000:' + 'cd'.repeat(32) + ':ünïcødé 🎉 日本語' }),
  row({ k: 3, s: '' }),
  row({ k: 30_001, s: 'x'.repeat(70_000) }),
];

test('event row: every field round trips (x, s, unicode s, kind 65535, offsets past 2^32), with and without the reused buffer', () => {
  const writer = new EventRowWriter();
  for (const r of EDGES) {
    const once = encodeEventRow(r);
    assert.deepEqual(plain(decodeEventRow(once)), plain(r));
    const reused = writer.encode(r);
    assert.deepEqual(Buffer.from(reused), once, 'the writer writes the same bytes');
    assert.deepEqual(plain(decodeEventRow(new Uint8Array(once))), plain(r), 'a plain Uint8Array decodes too');
  }
  assert.equal(encodeEventRow(row()).length, 87);
  assert.equal(encodeEventRow(row({ x: 1 })).length, 95);
  assert.equal(encodeEventRow(row({ s: 'é' })).length, 89);
});

test('event row: values that do not fit are refused when encoding', () => {
  assert.throws(() => encodeEventRow(row({ k: 65_536 })), RangeError);
  assert.throws(() => encodeEventRow(row({ n: 2 ** 32 })), RangeError);
  assert.throws(() => encodeEventRow(row({ i: randomBytes(31) })), /32 bytes/);
});

test('event row: a corrupt or non-format-7 row fails with a clear error', () => {
  const good = encodeEventRow(row({ x: 5, s: '3:' + 'ab'.repeat(32) + ':' }));
  const flagsOnly = (flags: number, bytes: number) => Buffer.concat([Buffer.of(flags), Buffer.alloc(bytes - 1)]);
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', Buffer.alloc(0), /corrupt event row: first byte missing/],
    ['a msgpack row of format 6', Buffer.from('d4724096a169a170', 'hex'), /first byte 0xd4 is not a format-7 row/],
    ['unknown flag bits', flagsOnly(4, 87), /first byte 0x4/],
    ['short', encodeEventRow(row()).subarray(0, 86), /86 bytes, flags 0x0 need 87/],
    ['trailing bytes without s', flagsOnly(0, 88), /88 bytes, flags 0x0 need 87/],
    ['x flagged but missing', flagsOnly(1, 87), /87 bytes, flags 0x1 need 95/],
    ['s flagged, x missing', flagsOnly(3, 90), /90 bytes, flags 0x3 need at least 95/],
    ['s not UTF-8', Buffer.concat([good.subarray(0, 95), Buffer.of(0xff, 0xfe)]), /slot key is not UTF-8/],
  ];
  for (const [what, bytes, message] of cases) assert.throws(() => decodeEventRow(bytes), message, what);
});

test('event row: a decoded row owns its id and pubkey (the bytes it came from may be reused at once)', () => {
  const reused = Buffer.alloc(200);
  const rows = Array.from({ length: 3000 }, (_, k) => row({ c: k, ...(k % 7 === 0 ? { s: `${k}:é` } : {}) }));
  const decoded = rows.map((r) => {
    const bytes = encodeEventRow(r);
    bytes.copy(reused);
    // As lmdb-js hands it over: the shared buffer, `length` set to the value's size.
    const view = Object.defineProperty(Buffer.from(reused.buffer, reused.byteOffset, reused.length), 'length', { value: bytes.length });
    return decodeEventRow(view);
  });
  reused.fill(0xaa);
  decoded.forEach((d, k) => void assert.deepEqual(plain(d), plain(rows[k]!), `row ${k}`));
});

test('event row: the table encoder against real LMDB: rows put from the reused buffer are stored whole, rows read stay valid after later reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'event-row-'));
  const root = open({ path: dir, maxDbs: 4, compression: false });
  try {
    const db = root.openDB<EventRow, number>({ name: 'events', compression: false, encoder: eventRowEncoder() } as DatabaseOptions & {
      name: string;
    });
    const rows = Array.from({ length: 3000 }, (_, k) =>
      row({ c: k, o: 2 ** 33 + k, ...(k % 3 === 0 ? { x: k } : {}), ...(k % 5 === 0 ? { s: `${k}:é` } : {}) }),
    );
    // Outside any transaction: putSync runs its own synchronous one.
    for (let k = 0; k < 100; k++) db.putSync(k, rows[k]!);
    // Inside transaction callbacks (where Store.applyBatch puts its rows).
    await root.transaction(() => {
      for (let k = 100; k < 2000; k++) db.putSync(k, rows[k]!);
    });
    await root.childTransaction(() => {
      for (let k = 2000; k < 3000; k++) void db.put(k, rows[k]!);
    });
    // Kept across thousands of later reads (lmdb-js decodes every value from one reused buffer).
    const kept = [db.get(0)!, db.get(5)!, ...[...db.getRange()].map(({ value }) => value)];
    for (let k = 0; k < 3000; k++) assert.deepEqual(plain(db.get(k)!), plain(rows[k]!), `row ${k}`);
    assert.deepEqual(plain(kept[0]!), plain(rows[0]!));
    assert.deepEqual(plain(kept[1]!), plain(rows[5]!));
    kept.slice(2).forEach((r, k) => void assert.deepEqual(plain(r), plain(rows[k]!), `kept row ${k}`));
    // The check above can tell: a plain put outside a transaction is written later, from
    // whatever the buffer then holds (the last row), which is why the index uses putSync.
    await Promise.all(rows.slice(0, 20).map((r, k) => db.put(10_000 + k, r)));
    const raw = root.openDB<Buffer, number>({ name: 'events', compression: false, encoding: 'binary' });
    const wrong = rows.slice(0, 20).filter((r, k) => !raw.get(10_000 + k)!.equals(encodeEventRow(r))).length;
    assert.ok(wrong > 0, 'an asynchronous put of the reused buffer stores other rows');
  } finally {
    await root.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
