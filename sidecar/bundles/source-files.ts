// Reading authors' files back from bundle data files (docs/protocol.md §6: the torrent's files
// concatenated, offsets in the index): a merge or rewrite reads its sources' files instead of
// one index lookup per event, and a vanish request reads the author's file in each bundle.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { dataPathOf } from './builder.js';
import { readFullyAt } from '../common/read-at.js';
import type { BundleFileStats, BundleRecord, Store } from '../index/store.js';

/** Rows of a bundle's author files read from the index at a time (see BundleRecords.filesAfter). */
const ROWS_PER_READ = 1024;

/** The lines (without their newlines) of `length` bytes at `offset`; throws on a short read. */
export function readLinesAt(fd: number, offset: number, length: number): string[] {
  if (length === 0) return [];
  const buf = Buffer.allocUnsafe(length);
  const got = readFullyAt(fd, buf, length, offset);
  if (got < length) throw new Error(`bundle data ends at ${offset + got}, expected ${offset + length}`);
  if (buf[length - 1] !== 0x0a) throw new Error(`bundle data at ${offset}+${length} does not end a line`);
  return buf.toString('utf8', 0, length - 1).split('\n');
}

/** An author's lines in a bundle (null when its data file cannot be read). */
export function readBundleLines(root: string, ih: string, file: BundleFileStats): string[] | null {
  let fd: number | null = null;
  try {
    fd = openSync(dataPathOf(root, ih), 'r');
    return readLinesAt(fd, file.o, file.bytes);
  } catch {
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

interface Source {
  b: BundleRecord;
  fd: number;
  rows: ({ pubkey: string } & BundleFileStats)[];
  next: number;
  /** Last pubkey read from the index ('' before the first read), and whether rows remain. */
  after: string;
  more: boolean;
}

/**
 * The data files of a merge's sources, walked author by author in ascending pubkey order (the
 * order of the files in every bundle).
 */
export class SourceFiles {
  private constructor(
    private readonly store: Store,
    private readonly sources: Source[],
  ) {}

  /** Opens every source's data file; null if one is missing or not the size its record says. */
  static open(store: Store, root: string, bundles: BundleRecord[]): SourceFiles | null {
    const sources: Source[] = [];
    try {
      for (const b of bundles) {
        const fd = openSync(dataPathOf(root, b.ih), 'r');
        sources.push({ b, fd, rows: [], next: 0, after: '', more: true });
        if (fstatSync(fd).size !== b.bytes) throw new Error('size');
      }
    } catch {
      for (const s of sources) closeSync(s.fd);
      return null;
    }
    return new SourceFiles(store, sources);
  }

  /** The author's lines from every source holding them. Call with ascending pubkeys. */
  linesOf(pubkey: string): string[] {
    const out: string[] = [];
    for (const s of this.sources) {
      if (!(s.b.authorFrom <= pubkey && pubkey < s.b.authorTo)) continue;
      const row = this.advance(s, pubkey);
      if (!row) continue;
      const lines = readLinesAt(s.fd, row.o, row.bytes);
      if (lines.length !== row.n) throw new Error(`bundle ${s.b.ih}: ${pubkey}.jsonl holds ${lines.length} lines, the index says ${row.n}`);
      for (const l of lines) out.push(l);
    }
    return out;
  }

  close(): void {
    for (const s of this.sources) closeSync(s.fd);
    this.sources.length = 0;
  }

  /** Moves the source's cursor to `pubkey`; its row if the source has a file for it. */
  private advance(s: Source, pubkey: string): ({ pubkey: string } & BundleFileStats) | undefined {
    for (;;) {
      if (s.next === s.rows.length) {
        if (!s.more) return undefined;
        s.rows = this.store.bundles.filesAfter(s.b.ih, s.after, ROWS_PER_READ);
        s.next = 0;
        s.more = s.rows.length === ROWS_PER_READ;
        if (s.rows.length === 0) return undefined;
        s.after = s.rows[s.rows.length - 1]!.pubkey;
      }
      const row = s.rows[s.next]!;
      if (row.pubkey > pubkey) return undefined;
      s.next++;
      if (row.pubkey === pubkey) return row;
    }
  }
}
