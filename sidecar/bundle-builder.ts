// Writes one bundle to disk and computes its torrent: one file per author (`<pubkey>.jsonl`,
// events ordered by created_at then id), files in pubkey order, a piece length that is a pure
// function of the total size, a name derived from the events, and nothing else in the info
// dict — so the same set of events gives the same infohash on any machine (docs/protocol.md §6).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import bencode from 'bencode';

export const MIN_PIECE_LENGTH = 16 * 1024;
export const MAX_PIECE_LENGTH = 4 * 1024 * 1024;
const TARGET_PIECES = 2048;
const WRITE_CHUNK = 1024 * 1024;

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

/**
 * Builds a bundle under `root` from authors in ascending pubkey order. Returns null if there
 * is nothing to write. The files are fsynced and in place before this resolves.
 */
export async function buildBundle(root: string, authors: Iterable<AuthorLines>): Promise<BuiltBundle | null> {
  const tmp = join(root, `.tmp-${randomBytes(6).toString('hex')}`);
  const dataTmp = join(tmp, 'data');
  await mkdir(dataTmp, { recursive: true });
  try {
    const files: BundleFile[] = [];
    let events = 0;
    let minC = Number.MAX_SAFE_INTEGER;
    let maxC = -1;
    let prev = '';
    for (const a of authors) {
      if (!(a.pubkey > prev)) throw new Error(`authors out of order: ${a.pubkey} after ${prev}`);
      prev = a.pubkey;
      const fh = await open(join(dataTmp, `${a.pubkey}.jsonl`), 'w', 0o644);
      let length = 0;
      let n = 0;
      let chunk: string[] = [];
      let chunkBytes = 0;
      try {
        for (const { json, createdAt } of a.lines) {
          chunk.push(json);
          chunkBytes += json.length;
          n++;
          if (createdAt < minC) minC = createdAt;
          if (createdAt > maxC) maxC = createdAt;
          if (chunkBytes >= WRITE_CHUNK) {
            length += await writeAll(fh, chunk);
            chunk = [];
            chunkBytes = 0;
          }
        }
        if (chunk.length > 0) length += await writeAll(fh, chunk);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (n === 0) {
        await rm(join(dataTmp, `${a.pubkey}.jsonl`));
        continue;
      }
      files.push({ pubkey: a.pubkey, length, events: n });
      events += n;
    }
    if (files.length === 0) return null;
    const bytes = files.reduce((s, f) => s + f.length, 0);
    const pieceLength = pieceLengthFor(bytes);
    const pieces = await hashPieces(dataTmp, files, pieceLength);
    const name = bundleName(minC, maxC, events);
    const info = {
      files: files.map((f) => ({ length: f.length, path: [`${f.pubkey}.jsonl`] })),
      name,
      'piece length': pieceLength,
      pieces,
    };
    const infoBytes = bencode.encode(info);
    const infoHash = createHash('sha1').update(infoBytes).digest('hex');
    const torrent = Buffer.from(bencode.encode({ info }));
    const dir = bundleDir(root, infoHash);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await rename(dataTmp, join(dir, name));
    const torrentPath = torrentPathOf(root, infoHash);
    await writeFile(torrentPath + '.tmp', torrent);
    await rename(torrentPath + '.tmp', torrentPath);
    return { infoHash, name, dir, torrentPath, torrent, files, bytes, events, pieceLength, minCreatedAt: minC, maxCreatedAt: maxC };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function writeAll(fh: import('node:fs/promises').FileHandle, lines: string[]): Promise<number> {
  const buf = Buffer.from(lines.join('\n') + '\n');
  await fh.write(buf);
  return buf.length;
}

async function hashPieces(dir: string, files: BundleFile[], pieceLength: number): Promise<Buffer> {
  const digests: Buffer[] = [];
  const piece = Buffer.allocUnsafe(pieceLength);
  let fill = 0;
  for (const f of files) {
    for await (const data of createReadStream(join(dir, `${f.pubkey}.jsonl`), { highWaterMark: WRITE_CHUNK }) as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < data.length) {
        const n = Math.min(pieceLength - fill, data.length - off);
        data.copy(piece, fill, off, off + n);
        fill += n;
        off += n;
        if (fill === pieceLength) {
          digests.push(createHash('sha1').update(piece).digest());
          fill = 0;
        }
      }
    }
  }
  if (fill > 0) digests.push(createHash('sha1').update(piece.subarray(0, fill)).digest());
  return Buffer.concat(digests);
}

/** Reads a bundle's torrent file back (after a restart). */
export async function readTorrent(root: string, infoHash: string): Promise<Buffer> {
  return readFile(torrentPathOf(root, infoHash));
}
