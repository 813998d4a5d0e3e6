// Writes one bundle to disk and computes its torrent: one file per author (`<pubkey>.jsonl`,
// events ordered by created_at then id), files in pubkey order, a piece length that is a pure
// function of the total size, a name derived from the events, and nothing else in the info
// dict — so the same set of events gives the same infohash on any machine (docs/protocol.md §6).
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import bencode from 'bencode';

export const MIN_PIECE_LENGTH = 16 * 1024;
export const MAX_PIECE_LENGTH = 4 * 1024 * 1024;
const TARGET_PIECES = 2048;
const WRITE_CHUNK = 1024 * 1024;
const YIELD_BYTES = 4 * 1024 * 1024;

/** Smallest power of two ≥ total/2048, clamped to [16 KiB, 4 MiB]. */
export function pieceLengthFor(totalBytes: number): number {
  let p = MIN_PIECE_LENGTH;
  while (p < MAX_PIECE_LENGTH && p * TARGET_PIECES < totalBytes) p *= 2;
  return p;
}

export function bundleName(minCreatedAt: number, maxCreatedAt: number, events: number): string {
  return `nostr-bt-${minCreatedAt}-${maxCreatedAt}-${events}`;
}

export interface AuthorLines {
  pubkey: string;
  /** Canonical event JSON lines, ordered by created_at then id. */
  lines: Iterable<{ json: string; createdAt: number }>;
}

export interface BundleFile {
  pubkey: string;
  length: number;
  events: number;
}

export interface BuiltBundle {
  infoHash: string;
  name: string;
  /** Directory handed to the torrent client as its `path` (data is in `<dir>/<name>/`). */
  dir: string;
  torrentPath: string;
  torrent: Buffer;
  files: BundleFile[];
  bytes: number;
  events: number;
  pieceLength: number;
  minCreatedAt: number;
  maxCreatedAt: number;
}

export function bundleDir(root: string, infoHash: string): string {
  return join(root, infoHash);
}

export function torrentPathOf(root: string, infoHash: string): string {
  return join(root, `${infoHash}.torrent`);
}

/** The events changed between the two passes of a build (an event was removed meanwhile). */
export class BundleSourceChanged extends Error {}

/**
 * Builds a bundle under `root` from authors in ascending pubkey order; `authors` is called twice
 * (sizes first, then bytes) and must give the same lines both times, else BundleSourceChanged.
 * Returns null if there is nothing to write. Files are written synchronously in slices (the
 * event loop gets a turn every few MB) and not fsynced one by one; after an unclean shutdown
 * the bundler re-hashes every bundle before seeding it instead.
 */
export async function buildBundle(root: string, authors: () => Iterable<AuthorLines>): Promise<BuiltBundle | null> {
  // Pass 1: sizes, so the piece length (a function of the total) is known before hashing.
  const files: BundleFile[] = [];
  let events = 0;
  let minC = Number.MAX_SAFE_INTEGER;
  let maxC = -1;
  let prev = '';
  for (const a of authors()) {
    if (!(a.pubkey > prev)) throw new Error(`authors out of order: ${a.pubkey} after ${prev}`);
    prev = a.pubkey;
    let length = 0;
    let n = 0;
    for (const { json, createdAt } of a.lines) {
      length += Buffer.byteLength(json) + 1;
      n++;
      if (createdAt < minC) minC = createdAt;
      if (createdAt > maxC) maxC = createdAt;
    }
    if (n === 0) continue;
    files.push({ pubkey: a.pubkey, length, events: n });
    events += n;
  }
  if (files.length === 0) return null;
  const bytes = files.reduce((s, f) => s + f.length, 0);
  const pieceLength = pieceLengthFor(bytes);
  const name = bundleName(minC, maxC, events);

  // Pass 2: write the files and hash the pieces in the same sweep.
  const tmp = join(root, `.tmp-${randomBytes(6).toString('hex')}`);
  const dataTmp = join(tmp, name);
  await mkdir(dataTmp, { recursive: true });
  try {
    const hasher = new PieceHasher(pieceLength);
    let sinceYield = 0;
    let i = 0;
    for (const a of authors()) {
      const expect = files[i];
      if (!expect || expect.pubkey !== a.pubkey) {
        if (isEmpty(a.lines)) continue; // empty in both passes
        throw new BundleSourceChanged(`author list changed during build at ${a.pubkey}`);
      }
      i++;
      const fd = openSync(join(dataTmp, `${a.pubkey}.jsonl`), 'w', 0o644);
      let written = 0;
      try {
        let chunk: string[] = [];
        let chunkChars = 0;
        const flush = () => {
          const buf = Buffer.from(chunk.join('\n') + '\n');
          writeSync(fd, buf);
          hasher.update(buf);
          written += buf.length;
          sinceYield += buf.length;
          chunk = [];
          chunkChars = 0;
        };
        for (const { json } of a.lines) {
          chunk.push(json);
          chunkChars += json.length;
          if (chunkChars >= WRITE_CHUNK) flush();
        }
        if (chunk.length > 0) flush();
      } finally {
        closeSync(fd);
      }
      if (written !== expect.length) throw new BundleSourceChanged(`events of ${a.pubkey} changed during build`);
      if (sinceYield >= YIELD_BYTES) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    if (i !== files.length) throw new BundleSourceChanged('author list changed during build');
    const info = {
      files: files.map((f) => ({ length: f.length, path: [`${f.pubkey}.jsonl`] })),
      name,
      'piece length': pieceLength,
      pieces: hasher.digest(),
    };
    const infoHash = createHash('sha1').update(bencode.encode(info)).digest('hex');
    const torrent = Buffer.from(bencode.encode({ info }));
    const dir = bundleDir(root, infoHash);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    const torrentPath = torrentPathOf(root, infoHash);
    await writeFile(torrentPath + '.tmp', torrent);
    await rename(torrentPath + '.tmp', torrentPath);
    return { infoHash, name, dir, torrentPath, torrent, files, bytes, events, pieceLength, minCreatedAt: minC, maxCreatedAt: maxC };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function isEmpty(lines: Iterable<unknown>): boolean {
  for (const _ of lines) return false;
  return true;
}

/** SHA-1 of consecutive fixed-size pieces over a byte stream spanning files. */
class PieceHasher {
  private readonly digests: Buffer[] = [];
  private readonly piece: Buffer;
  private fill = 0;

  constructor(private readonly pieceLength: number) {
    this.piece = Buffer.allocUnsafe(pieceLength);
  }

  update(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      if (this.fill === 0 && data.length - off >= this.pieceLength) {
        this.digests.push(createHash('sha1').update(data.subarray(off, off + this.pieceLength)).digest());
        off += this.pieceLength;
        continue;
      }
      const n = Math.min(this.pieceLength - this.fill, data.length - off);
      data.copy(this.piece, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === this.pieceLength) {
        this.digests.push(createHash('sha1').update(this.piece).digest());
        this.fill = 0;
      }
    }
  }

  digest(): Buffer {
    if (this.fill > 0) this.digests.push(createHash('sha1').update(this.piece.subarray(0, this.fill)).digest());
    this.fill = 0;
    return Buffer.concat(this.digests);
  }
}

/** Reads a bundle's torrent file back (after a restart). */
export async function readTorrent(root: string, infoHash: string): Promise<Buffer> {
  return readFile(torrentPathOf(root, infoHash));
}
