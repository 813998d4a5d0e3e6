// Index format 7 in place: rewrites the `events` table's rows from lmdb-js's default msgpack
// encoding (formats 5 and 6) to the fixed layout of index/event-row.ts, in sequence order, a bounded
// number of rows per write transaction (a 10M-event index never holds more than one batch in
// memory). Each transaction records where the next one starts, so an upgrade stopped anywhere
// resumes there; the last one also runs `finish` (which sets the new format), so an index is
// either still being upgraded or entirely format 7.
import type { Database, RootDatabase } from 'lmdb';
import { EventRowWriter, type EventRow } from './event-row.js';

/** Meta key: the sequence number the next batch starts at (absent: from the start). */
export const UPGRADE_NEXT_KEY = 'index.upgrade.rows.next';

export interface RowsUpgradeResult {
  rows: number;
  ms: number;
  /** False when stopped by `maxBatches` before the end. */
  done: boolean;
}

export interface RowsUpgradeOptions {
  batchRows?: number;
  /** Stops after this many transactions (tests: an upgrade interrupted between two commits). */
  maxBatches?: number;
}

export function upgradeEventRows(
  root: RootDatabase,
  meta: Database<unknown, string>,
  finish: () => void,
  opts: RowsUpgradeOptions = {},
): RowsUpgradeResult {
  const batchRows = opts.batchRows ?? 50_000;
  const started = performance.now();
  // The same table through the encoding formats 5 and 6 wrote it with, and as raw bytes.
  const old = root.openDB<EventRow, number>({ name: 'events', compression: false });
  const raw = root.openDB<Buffer, number>({ name: 'events', compression: false, encoding: 'binary' });
  const writer = new EventRowWriter();
  let rows = 0;
  for (let batches = 0; ; batches++) {
    if (opts.maxBatches !== undefined && batches >= opts.maxBatches) return { rows, ms: performance.now() - started, done: false };
    const last = root.transactionSync(() => {
      const next = (meta.get(UPGRADE_NEXT_KEY) as number | undefined) ?? 0;
      const batch: { key: number; value: EventRow }[] = [];
      try {
        for (const entry of old.getRange({ start: next, limit: batchRows })) {
          if (!isOldRow(entry.value)) throw new Error(`row ${entry.key} is not one`);
          batch.push(entry);
        }
      } catch (err) {
        throw new Error(
          `upgrading the index's event rows from ${next}: not index format 5/6 rows, the index is damaged (${(err as Error).message})`,
        );
      }
      // putSync: each row's bytes are copied before the writer's buffer is reused.
      for (const { key, value } of batch) raw.putSync(key, writer.encode(value));
      rows += batch.length;
      if (batch.length < batchRows) {
        meta.removeSync(UPGRADE_NEXT_KEY);
        finish();
        return true;
      }
      meta.putSync(UPGRADE_NEXT_KEY, batch[batch.length - 1]!.key + 1);
      return false;
    });
    if (last) return { rows, ms: performance.now() - started, done: true };
  }
}

function isOldRow(v: unknown): v is EventRow {
  const r = v as Partial<EventRow> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.i instanceof Uint8Array &&
    r.i.length === 32 &&
    r.p instanceof Uint8Array &&
    r.p.length === 32 &&
    typeof r.c === 'number' &&
    typeof r.k === 'number' &&
    typeof r.o === 'number' &&
    typeof r.n === 'number'
  );
}
