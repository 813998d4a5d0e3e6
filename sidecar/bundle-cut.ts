// A window cut's bundle from references into the event log: group the events by author, order
// each author's by created_at then id, copy their lines from the log into the data file, hash
// and describe it (buildBundle). Pure file work with no index access, so it runs in a worker
// thread (bundle-cut-worker.ts) and, when no worker can, on the calling thread.
import { closeSync, openSync } from 'node:fs';
import { buildBundle, type AuthorLines, type BuiltBundle, type BundleLine } from './bundle-builder.js';
import { readFullyAt } from './read-at.js';
import type { EventRow } from './store.js';

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
export function cutRefsOf(rows: Iterable<{ seq: number; row: Readonly<EventRow> }>, from: number, maxBytes: number): { refs: CutRefs; end: number; bytes: number } {
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
 * either whole or blank when read.
 */
export async function buildCut(root: string, logPath: string, refs: CutRefs, maxSpanBytes = MAX_SPAN_BYTES): Promise<BuiltCut> {
  const byAuthor = new Map<string, number[]>();
  for (let k = 0; k < refs.count; k++) {
    const pubkey = Buffer.from(refs.pubkeys.buffer, refs.pubkeys.byteOffset + 32 * k, 32).toString('hex');
    let list = byAuthor.get(pubkey);
    if (!list) byAuthor.set(pubkey, (list = []));
    list.push(k);
  }
  const authors = [...byAuthor.keys()].sort();
  const idOf = (k: number) => refs.ids.subarray(32 * k, 32 * k + 32);
  for (const list of byAuthor.values()) list.sort((a, b) => refs.createdAt[a]! - refs.createdAt[b]! || Buffer.compare(idOf(a), idOf(b)));
  const fd = openSync(logPath, 'r');
  try {
    const lineAt = lineReader(fd, logPath, refs, maxSpanBytes);
    const linesOf = function* (list: number[]): Iterable<BundleLine> {
      for (const k of list) {
        const bytes = lineAt(k);
        if (bytes[0] === 0x20) continue;
        yield { bytes, createdAt: refs.createdAt[k]! };
      }
    };
    const lines = function* (): Iterable<AuthorLines> {
      for (const pubkey of authors) yield { pubkey, lines: linesOf(byAuthor.get(pubkey)!) };
    };
    return { built: await buildBundle(root, lines()), authors };
  } finally {
    closeSync(fd);
  }
}

/** Line k of the cut (JSON and newline), valid until the next call. */
function lineReader(fd: number, logPath: string, refs: CutRefs, maxSpanBytes: number): (k: number) => Uint8Array {
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
    return (k) => {
      const at = refs.offsets[k]! - start;
      const n = refs.lengths[k]!;
      if (at + n > got) throw pastEnd(n, refs.offsets[k]!);
      return span.subarray(at, at + n);
    };
  }
  let scratch = Buffer.allocUnsafeSlow(64 * 1024);
  return (k) => {
    const n = refs.lengths[k]!;
    if (scratch.length < n) scratch = Buffer.allocUnsafeSlow(2 * n);
    if (readFullyAt(fd, scratch, n, refs.offsets[k]!) < n) throw pastEnd(n, refs.offsets[k]!);
    return scratch.subarray(0, n);
  };
}
