// Index format 7's event rows (sidecar/index/event-row.ts) against format 6's (lmdb-js's default msgpack,
// the baseline, measured in the same run on the same rows):
//   write = encoding and putting a row inside a write transaction (what Store.applyBatch does
//           per indexed event), commit excluded;
//   read  = getRange and decoding every row (what a start, a cut or a scan does per row);
// then the in-place upgrade of a format-6 index of N rows to format 7, against a start of the
// upgraded index (which reads every row once to build the id table). Prints figures; never
// asserts timings. The machine's load average is printed with the figures.
//
//   node dist/bench/index-rows-bench.js [--quick] [--n=COUNT]
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { open, type Database, type DatabaseOptions, type RootDatabase } from 'lmdb';
import { eventRowEncoder, type EventRow } from '../sidecar/index/event-row.js';
import { Store } from '../sidecar/index/store.js';
import { figure, fmt, log, makeTempDir, parseArgs, printFigures, runMain } from './common.js';

const BATCH = 50_000;
const AUTHORS = 50_000;

/** Rows [from, to) of a deterministic mix: 10% addressable (slot key), 5% expiring. */
function rowsOf(from: number, to: number, authors: Buffer[]): EventRow[] {
  const out: EventRow[] = [];
  for (let k = from; k < to; k++) {
    const p = authors[k % AUTHORS]!;
    const row: EventRow = { i: randomBytes(32), p, c: 1_700_000_000 + k, k: k % 10 === 0 ? 30_023 : 1, o: k * 1_100, n: 1_100 };
    if (k % 20 === 0) row.x = 1_800_000_000 + k;
    if (k % 10 === 0) row.s = `30023:${p.toString('hex')}:article ${k}`;
    out.push(row);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** µs per row to put `n` rows (in BATCH-row transactions), and to read them all back. */
function writeAndRead(root: RootDatabase, format: 6 | 7, table: string, n: number, authors: Buffer[]): { write: number; read: number } {
  const msgpack: Database<EventRow, number> = root.openDB({ name: table, compression: false });
  // As the index opens its events table.
  const binary: Database<EventRow, number> = root.openDB({
    name: table,
    compression: false,
    encoder: eventRowEncoder(),
  } as DatabaseOptions & { name: string });
  let writeMs = 0;
  for (let from = 0; from < n; from += BATCH) {
    const rows = rowsOf(from, Math.min(n, from + BATCH), authors);
    root.transactionSync(() => {
      const t = performance.now();
      if (format === 6) for (let j = 0; j < rows.length; j++) void msgpack.put(from + j + 1, rows[j]!);
      else for (let j = 0; j < rows.length; j++) binary.putSync(from + j + 1, rows[j]!);
      writeMs += performance.now() - t;
    });
  }
  let bytes = 0;
  const t = performance.now();
  if (format === 6) for (const { value } of msgpack.getRange()) bytes += value.n;
  else for (const { value } of binary.getRange()) bytes += value.n;
  const readMs = performance.now() - t;
  if (bytes !== n * 1_100) throw new Error(`read ${bytes} bytes of lines, expected ${n * 1_100}`);
  return { write: (writeMs * 1000) / n, read: (readMs * 1000) / n };
}

/** A format-6 index of `n` rows as that format's code wrote it: msgpack rows, meta format 6. */
async function makeFormat6(dir: string, n: number, authors: Buffer[]): Promise<void> {
  const root = open({ path: dir, maxDbs: 24, compression: false, mapSize: 2 ** 40 });
  const events = root.openDB<EventRow, number>({ name: 'events', compression: false });
  const meta = root.openDB<unknown, string>({ name: 'meta', compression: false });
  for (let from = 0; from < n; from += BATCH) {
    const rows = rowsOf(from, Math.min(n, from + BATCH), authors);
    await root.transaction(() => rows.forEach((row, j) => void events.put(from + j + 1, row)));
  }
  await meta.put('index.format', 6);
  await root.close();
}

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.n ?? (args.quick ? 100_000 : 1_000_000);
  const authors = Array.from({ length: AUTHORS }, () => randomBytes(32));
  log(`index rows bench: ${n} rows (10% with a slot key, 5% expiring), ${BATCH} per transaction; load average ${loadavg()[0]!.toFixed(2)}`);

  const dir = makeTempDir('nostr-bt-rows-bench-');
  const root = open({ path: dir, maxDbs: 12, compression: false, mapSize: 2 ** 40 });
  const results: Record<6 | 7, { write: number[]; read: number[] }> = { 6: { write: [], read: [] }, 7: { write: [], read: [] } };
  for (let round = 0; round < 3; round++) {
    for (const format of round % 2 === 0 ? ([6, 7] as const) : ([7, 6] as const)) {
      const r = writeAndRead(root, format, `rows-${format}-${round}`, n, authors);
      results[format].write.push(r.write);
      results[format].read.push(r.read);
      log(`round ${round + 1}, format ${format}: write ${fmt(r.write, 2)} µs/row, read ${fmt(r.read, 2)} µs/row`);
    }
  }
  await root.close();

  const indexDir = makeTempDir('nostr-bt-rows-upgrade-');
  await makeFormat6(indexDir, n, authors);
  let t = performance.now();
  let store = Store.open(indexDir);
  const upgradeOpenS = (performance.now() - t) / 1000;
  const upgraded = store.upgraded;
  await store.close();
  if (upgraded?.rows !== n) throw new Error(`upgraded ${upgraded?.rows} rows, expected ${n}`);
  t = performance.now();
  store = Store.open(indexDir);
  const reopenS = (performance.now() - t) / 1000;
  if (store.eventCount() !== n || store.upgraded !== null) throw new Error('the upgraded index does not reopen as format 7');
  await store.close();
  const upgradeS = upgraded.ms / 1000;
  log(
    `upgrade of ${n} format-6 rows: ${fmt(upgradeS, 2)} s (the whole first open ${fmt(upgradeOpenS, 2)} s); a start of the upgraded index ${fmt(reopenS, 2)} s`,
  );

  const load = loadavg()[0]!;
  printFigures(
    'index-rows',
    [
      figure('event row write, format 7 (baseline: format 6 msgpack)', median(results[7].write), 'µs/row', median(results[6].write)),
      figure(
        'event row read and decode, format 7 (baseline: format 6 msgpack)',
        median(results[7].read),
        'µs/row',
        median(results[6].read),
      ),
      figure(`upgrade of ${n} format-6 rows in place (baseline: a start of the upgraded index)`, upgradeS, 's', reopenS),
    ],
    { mode: args.quick ? 'quick' : 'full', n, load: Number(load.toFixed(2)) },
  );
}

runMain(main);
