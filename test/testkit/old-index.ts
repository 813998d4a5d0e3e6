// Turns an index written by this version back into what index formats 5 and 6 had on disk: event
// rows in lmdb-js's default msgpack encoding (the `events` table opened as the code of format 6
// opened it, `git show befa812:sidecar/index/store.ts`), and the format number.
import { open } from 'lmdb';
import { decodeEventRow, type EventRow } from '../../sidecar/index/event-row.js';

/** The index at `dir` must be closed. Answers how many rows were rewritten. */
export async function writeOldFormat(dir: string, format: 5 | 6): Promise<number> {
  const root = open({ path: dir, maxDbs: 24, compression: false, mapSize: 2 ** 40 });
  try {
    const raw = root.openDB<Buffer, number>({ name: 'events', compression: false, encoding: 'binary' });
    const old = root.openDB<EventRow, number>({ name: 'events', compression: false });
    const meta = root.openDB<unknown, string>({ name: 'meta', compression: false });
    const rows = [...raw.getRange()].map(({ key, value }) => ({ key, row: decodeEventRow(value) }));
    await root.transaction(() => {
      for (const { key, row } of rows) {
        // The old code built rows in this field order; x and s only when present.
        const v: EventRow = { i: row.i, p: row.p, c: row.c, k: row.k, o: row.o, n: row.n };
        if (row.x !== undefined) v.x = row.x;
        if (row.s !== undefined) v.s = row.s;
        void old.put(key, v);
      }
      void meta.put('index.format', format);
    });
    return rows.length;
  } finally {
    await root.close();
  }
}

/** The first byte of every event row, as stored (binary rows: 0-3; msgpack rows: 0xd4). */
export function firstBytes(dir: string): Promise<number[]> {
  const root = open({ path: dir, maxDbs: 24, compression: false, readOnly: true, mapSize: 2 ** 40 });
  const raw = root.openDB<Buffer, number>({ name: 'events', compression: false, encoding: 'binary' });
  const out = [...raw.getRange()].map(({ value }) => value[0]!);
  return root.close().then(() => out);
}
