// A window cut's bundle from references into the event log: group the events by author, order
// each author's by created_at then id, copy their lines from the log into the data file, hash
// and describe it (buildBundle). Pure file work with no index access, so it runs in a worker
// thread (bundles/cut-worker.ts) and, when no worker can, on the calling thread.
import { closeSync, openSync } from 'node:fs';
import { BundleWriter, type BuiltBundle } from './builder.js';
import { readFullyAt } from '../common/read-at.js';
import type { EventRow } from '../index/event-row.js';

/** The committed events of a cut, in sequence order, as flat arrays (cheap to send to a worker). */
export interface CutRefs {
  count: number;
  /** 32 bytes per event: author, then id. */
  pubkeys: Uint8Array;
  ids: Uint8Array;
  createdAt: Float64Array;
  /** Where each event's line (JSON and newline) is in the event log. */
  offsets: Float64Array;
  lengths: Uint32Array;
}

export interface BuiltCut {
  /** Null when every event of the cut was removed meanwhile (nothing to write). */
  built: BuiltBundle | null;
  /** Every author of the cut, ascending. */
  authors: string[];
}

/**
 * The next cut from the index's rows (in sequence order): up to `maxBytes` of lines, at least one
 * event. `end` is the first sequence number after them.
 */
export function cutRefsOf(
  rows: Iterable<{ seq: number; row: Readonly<EventRow> }>,
  from: number,
  maxBytes: number,
): { refs: CutRefs; end: number; bytes: number } {
  let refs = emptyRefs(1024);
  let end = from;
  let bytes = 0;
  for (const { seq, row } of rows) {
    if (bytes > 0 && bytes + row.n > maxBytes) break;
    const k = refs.count;
    if (k === refs.createdAt.length) refs = grownRefs(refs);
    refs.pubkeys.set(row.p, 32 * k);
    refs.ids.set(row.i, 32 * k);
    refs.createdAt[k] = row.c;
    refs.offsets[k] = row.o;
    refs.lengths[k] = row.n;
    refs.count++;
    bytes += row.n;
    end = seq + 1;
  }
  return { refs, end, bytes };
}

function emptyRefs(capacity: number): CutRefs {
  return {
    count: 0,
    pubkeys: new Uint8Array(32 * capacity),
    ids: new Uint8Array(32 * capacity),
    createdAt: new Float64Array(capacity),
    offsets: new Float64Array(capacity),
    lengths: new Uint32Array(capacity),
  };
}

function grownRefs(r: CutRefs): CutRefs {
  const g = emptyRefs(2 * r.createdAt.length);
  g.pubkeys.set(r.pubkeys);
  g.ids.set(r.ids);
  g.createdAt.set(r.createdAt);
  g.offsets.set(r.offsets);
  g.lengths.set(r.lengths);
  g.count = r.count;
  return g;
}

/**
 * A cut's lines are read from the log in one read when they lie within this many bytes (a window
 * is at most `windowMaxBytes`, 64 MiB by default, and its lines are nearly contiguous): one
 * pread per line cost more than copying the lines. Beyond it, line by line.
 */
const MAX_SPAN_BYTES = 128 * 1024 * 1024;

/**
 * Builds the cut under `root`. A line whose bytes were blanked (its event removed before the cut
 * read it) is left out; the caller holds further blanking until this returns, so every line is
 * either whole or blank when read. Works on the refs' arrays, with no object per event: a cut is
 * tens of thousands of events, and objects that live for all of it were most of this thread's
 * garbage collection.
 */
export async function buildCut(root: string, logPath: string, refs: CutRefs, maxSpanBytes = MAX_SPAN_BYTES): Promise<BuiltCut> {
  const { order, authorStarts, authorKeys } = groupByAuthor(refs);
  const authors = authorKeys.map((key) => Buffer.from(key, 'latin1').toString('hex'));
  const fd = openSync(logPath, 'r');
  try {
    const lines = lineReader(fd, logPath, refs, maxSpanBytes);
    const w = await BundleWriter.open(root);
    try {
      for (let a = 0; a < authors.length; a++) {
        w.startAuthor(authors[a]!);
        for (let x = authorStarts[a]!; x < authorStarts[a + 1]!; x++) {
          const k = order[x]!;
          const at = lines.read(k);
          if (lines.bytes[at] === 0x20) continue;
          if (w.addBytes(lines.bytes, at, at + refs.lengths[k]!, refs.createdAt[k]!)) await w.flush();
        }
      }
      return { built: await w.finish(), authors };
    } finally {
      await w.close();
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The cut's events in bundle order: by author (pubkey bytes ascending), then created_at, then
 * id. `order[authorStarts[a] .. authorStarts[a + 1])` are author a's events; `authorKeys[a]` is
 * its pubkey as a 32-character latin1 string (same order as its hex).
 */
export function groupByAuthor(refs: CutRefs): { order: Uint32Array; authorStarts: Uint32Array; authorKeys: string[] } {
  const n = refs.count;
  const pubkeys = Buffer.from(refs.pubkeys.buffer, refs.pubkeys.byteOffset, 32 * n);
  const indexOf = new Map<string, number>();
  const keys: string[] = [];
  const authorOf = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    const key = pubkeys.toString('latin1', 32 * k, 32 * k + 32);
    let a = indexOf.get(key);
    if (a === undefined) {
      a = keys.length;
      indexOf.set(key, a);
      keys.push(key);
    }
    authorOf[k] = a;
  }
  const sorted = Uint32Array.from(keys.keys()).sort((x, y) => (keys[x]! < keys[y]! ? -1 : 1));
  const rank = new Uint32Array(keys.length);
  for (let r = 0; r < sorted.length; r++) rank[sorted[r]!] = r;
  // Counting sort by author rank (stable: each author's events stay in sequence order).
  const authorStarts = new Uint32Array(keys.length + 1);
  for (let k = 0; k < n; k++) authorStarts[rank[authorOf[k]!]! + 1]!++;
  for (let r = 0; r < keys.length; r++) authorStarts[r + 1]! += authorStarts[r]!;
  const next = authorStarts.slice(0, keys.length);
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[next[rank[authorOf[k]!]!]!++] = k;
  // Each author's events by created_at, then id: an insertion sort (most authors have a few).
  for (let r = 0; r < keys.length; r++) {
    for (let x = authorStarts[r]! + 1; x < authorStarts[r + 1]!; x++) {
      const k = order[x]!;
      let y = x;
      while (y > authorStarts[r]! && before(refs, k, order[y - 1]!)) {
        order[y] = order[y - 1]!;
        y--;
      }
      order[y] = k;
    }
  }
  return { order, authorStarts, authorKeys: Array.from(sorted, (a) => keys[a]!) };
}

/** Whether event a comes before event b of the same author: created_at, then id bytes. */
function before(refs: CutRefs, a: number, b: number): boolean {
  const ca = refs.createdAt[a]!;
  const cb = refs.createdAt[b]!;
  if (ca !== cb) return ca < cb;
  for (let i = 0; i < 32; i++) {
    const d = refs.ids[32 * a + i]! - refs.ids[32 * b + i]!;
    if (d !== 0) return d < 0;
  }
  return false;
}

/** Line k of the cut (JSON and newline): `read(k)` gives its offset in `bytes`, valid until the next read. */
interface LineSource {
  bytes: Uint8Array;
  read(k: number): number;
}

function lineReader(fd: number, logPath: string, refs: CutRefs, maxSpanBytes: number): LineSource {
  const pastEnd = (n: number, at: number) => new Error(`event log ${logPath}: ${n} bytes at ${at} are past its end`);
  let start = Infinity;
  let end = 0;
  for (let k = 0; k < refs.count; k++) {
    start = Math.min(start, refs.offsets[k]!);
    end = Math.max(end, refs.offsets[k]! + refs.lengths[k]!);
  }
  if (end - start <= maxSpanBytes) {
    const span = Buffer.allocUnsafeSlow(end - start);
    const got = readFullyAt(fd, span, span.length, start);
    return {
      bytes: new Uint8Array(span.buffer, span.byteOffset, span.length),
      read(k) {
        const at = refs.offsets[k]! - start;
        if (at + refs.lengths[k]! > got) throw pastEnd(refs.lengths[k]!, refs.offsets[k]!);
        return at;
      },
    };
  }
  const source: LineSource = {
    bytes: Buffer.allocUnsafeSlow(64 * 1024),
    read(k) {
      const n = refs.lengths[k]!;
      if (source.bytes.length < n) source.bytes = Buffer.allocUnsafeSlow(2 * n);
      if (readFullyAt(fd, source.bytes as Buffer, n, refs.offsets[k]!) < n) throw pastEnd(n, refs.offsets[k]!);
      return 0;
    },
  };
  return source;
}
