// Writes one bundle to disk and computes its torrent: one file per author (`<pubkey>.jsonl`,
// events ordered by created_at then id), files in pubkey order, a piece length that is a pure
// function of the total size, a name derived from the events, and nothing else in the info
// dict — so the same set of events gives the same infohash on any machine (docs/protocol.md §6).
//
// On disk a bundle is two files: `<ih>.torrent` and `<ih>.data`, the torrent's files
// concatenated in order (exactly the byte stream its pieces hash). One data file per bundle
// instead of one file per author keeps file creation, open files and the seeder's per-file
// state independent of the number of authors; the seeder serves pieces straight from it.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import bencode from 'bencode';
import { encodeBundleInfo } from '../formats/bundle-info.js';

export const MIN_PIECE_LENGTH = 16 * 1024;
export const MAX_PIECE_LENGTH = 4 * 1024 * 1024;
export const TARGET_PIECES = 2048;
const WRITE_CHUNK = 1024 * 1024;
const HASH_READ = 4 * 1024 * 1024;

/** Smallest power of two ≥ total/2048, clamped to [16 KiB, 4 MiB]. */
export function pieceLengthFor(totalBytes: number): number {
  let p = MIN_PIECE_LENGTH;
  while (p < MAX_PIECE_LENGTH && p * TARGET_PIECES < totalBytes) p *= 2;
  return p;
}

export function bundleName(minCreatedAt: number, maxCreatedAt: number, events: number): string {
  return `nostr-bt-${minCreatedAt}-${maxCreatedAt}-${events}`;
}

/**
 * One event's line: its canonical JSON, or the bytes of its JSON and newline (read from the event
 * log; only valid until the next line is taken, the builder copies them at once).
 */
export type BundleLine = { json: string; createdAt: number } | { bytes: Uint8Array; createdAt: number };

export interface AuthorLines {
  pubkey: string;
  /** Canonical event JSON lines, ordered by created_at then id. */
  lines: Iterable<BundleLine>;
}

export interface BundleFile {
  pubkey: string;
  length: number;
  events: number;
}

export interface BuiltBundle {
  infoHash: string;
  name: string;
  dataPath: string;
  torrentPath: string;
  torrent: Buffer;
  files: BundleFile[];
  bytes: number;
  events: number;
  pieceLength: number;
  minCreatedAt: number;
  maxCreatedAt: number;
}

export function dataPathOf(root: string, infoHash: string): string {
  return join(root, `${infoHash}.data`);
}

export function torrentPathOf(root: string, infoHash: string): string {
  return join(root, `${infoHash}.torrent`);
}

/**
 * Builds a bundle under `root` from authors in ascending pubkey order, in one pass over the
 * lines (authors without lines get no file). Returns null if there is nothing to write.
 */
export async function buildBundle(root: string, authors: Iterable<AuthorLines>): Promise<BuiltBundle | null> {
  const w = await BundleWriter.open(root);
  try {
    for (const a of authors) {
      w.startAuthor(a.pubkey);
      for (const line of a.lines) {
        const full = 'bytes' in line ? w.addBytes(line.bytes, 0, line.bytes.length, line.createdAt) : w.addJson(line.json, line.createdAt);
        if (full) await w.flush();
      }
    }
    return await w.finish();
  } finally {
    await w.close();
  }
}

/**
 * Writes one bundle's data file, author by author in ascending pubkey order, then hashes it and
 * writes its torrent (finish). The data file is written in ~1 MiB slices, each awaited (the
 * event loop gets a turn between them): an add that returns true wants `flush()` awaited before
 * the next. It is not fsynced: after an unclean shutdown the bundler re-hashes every bundle
 * before seeding it instead. `close()` always, after finish or on an error (it removes the
 * temporary file if finish did not happen).
 */
export class BundleWriter {
  private readonly files: BundleFile[] = [];
  private events = 0;
  private bytes = 0;
  private minC = Number.MAX_SAFE_INTEGER;
  private maxC = -1;
  private prev = '';
  private author: string | null = null;
  private authorLength = 0;
  private authorEvents = 0;
  private position = 0;
  // Lines of all authors go out in ~1 MiB writes (many authors have a single short event), on
  // libuv's thread pool. One buffer for every write (each is awaited before more lines go in).
  private buf = Buffer.allocUnsafeSlow(2 * WRITE_CHUNK);
  private used = 0;
  private closed = false;

  private constructor(
    private readonly root: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
  ) {}

  static async open(root: string): Promise<BundleWriter> {
    await mkdir(root, { recursive: true });
    const tmp = join(root, `.tmp-${randomBytes(6).toString('hex')}.data`);
    return new BundleWriter(root, tmp, await open(tmp, 'w', 0o644));
  }

  /** The next author's lines follow (pubkeys strictly ascending). */
  startAuthor(pubkey: string): void {
    if (!(pubkey > this.prev)) throw new Error(`authors out of order: ${pubkey} after ${this.prev}`);
    this.endAuthor();
    this.prev = pubkey;
    this.author = pubkey;
  }

  /** One line: bytes [start, end) of `from`, its JSON and newline. True: await flush() next. */
  addBytes(from: Uint8Array, start: number, end: number, createdAt: number): boolean {
    const size = end - start;
    this.room(size);
    this.buf.set(from.subarray(start, end), this.used);
    return this.added(size, createdAt);
  }

  /** One line: canonical event JSON (the newline is added). True: await flush() next. */
  addJson(json: string, createdAt: number): boolean {
    const size = Buffer.byteLength(json) + 1;
    this.room(size);
    this.buf.write(json, this.used);
    this.buf[this.used + size - 1] = 0x0a;
    return this.added(size, createdAt);
  }

  private added(size: number, createdAt: number): boolean {
    if (this.author === null) throw new Error('a line before any author');
    this.used += size;
    this.authorLength += size;
    this.authorEvents++;
    if (createdAt < this.minC) this.minC = createdAt;
    if (createdAt > this.maxC) this.maxC = createdAt;
    return this.used >= WRITE_CHUNK;
  }

  private room(length: number): void {
    if (this.buf.length - this.used >= length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.length, this.used + length));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
  }

  async flush(): Promise<void> {
    for (let done = 0; done < this.used; )
      done += (await this.fh.write(this.buf, done, this.used - done, this.position + done)).bytesWritten;
    this.position += this.used;
    this.used = 0;
  }

  private endAuthor(): void {
    if (this.author !== null && this.authorEvents > 0) {
      this.files.push({ pubkey: this.author, length: this.authorLength, events: this.authorEvents });
      this.events += this.authorEvents;
      this.bytes += this.authorLength;
    }
    this.author = null;
    this.authorLength = 0;
    this.authorEvents = 0;
  }

  /** Writes the rest, hashes the pieces, moves the data file and the torrent in place; null if no line was added. */
  async finish(): Promise<BuiltBundle | null> {
    this.endAuthor();
    if (this.used > 0) await this.flush();
    await this.closeFile();
    if (this.files.length === 0) return null;
    const { files, bytes, events, minC, maxC } = this;
    const pieceLength = pieceLengthFor(bytes);
    const name = bundleName(minC, maxC, events);
    const infoBytes = encodeBundleInfo({ files, name, pieceLength, pieces: await hashPieces(this.tmp, pieceLength, bytes) });
    // `{info}` is `d4:info<info>e`.
    const infoHash = createHash('sha1').update(infoBytes).digest('hex');
    const torrent = Buffer.concat([Buffer.from('d4:info'), infoBytes, Buffer.from('e')]);
    const dataPath = dataPathOf(this.root, infoHash);
    await rename(this.tmp, dataPath);
    const torrentPath = torrentPathOf(this.root, infoHash);
    await writeFile(torrentPath + '.tmp', torrent);
    await rename(torrentPath + '.tmp', torrentPath);
    return { infoHash, name, dataPath, torrentPath, torrent, files, bytes, events, pieceLength, minCreatedAt: minC, maxCreatedAt: maxC };
  }

  /** Closes the file and removes the temporary data file (gone already after finish). */
  async close(): Promise<void> {
    await this.closeFile();
    await rm(this.tmp, { force: true });
  }

  private async closeFile(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/** SHA-1 of each piece of a file (v1 rules: the last piece may be short). */
export async function hashPieces(path: string, pieceLength: number, total: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const digests: Buffer[] = [];
    // pieceLength divides HASH_READ (both powers of two, pieceLength ≤ 4 MiB).
    const buf = Buffer.allocUnsafe(Math.max(HASH_READ, pieceLength));
    for (let pos = 0; pos < total; ) {
      const want = Math.min(buf.length, total - pos);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
        if (bytesRead === 0) throw new Error(`bundle data ${path} is shorter than written`);
        got += bytesRead;
      }
      for (let off = 0; off < got; off += pieceLength) {
        digests.push(
          createHash('sha1')
            .update(buf.subarray(off, Math.min(off + pieceLength, got)))
            .digest(),
        );
      }
      pos += got;
    }
    return Buffer.concat(digests);
  } finally {
    await fh.close();
  }
}

/** Reads a bundle's torrent file back (after a restart). */
export async function readTorrent(root: string, infoHash: string): Promise<Buffer> {
  return readFile(torrentPathOf(root, infoHash));
}

interface InfoFile {
  length: number;
  path: Uint8Array[];
}

/** Each file of a stored bundle with its byte range in the data file. */
export async function bundleFiles(
  root: string,
  infoHash: string,
): Promise<{ name: string; files: { path: string; offset: number; length: number }[] }> {
  const t = bencode.decode(await readTorrent(root, infoHash)) as { info: { name: Uint8Array; files: InfoFile[] } };
  let offset = 0;
  const files = t.info.files.map((f) => {
    const entry = { path: Buffer.from(f.path[0]!).toString(), offset, length: f.length };
    offset += f.length;
    return entry;
  });
  return { name: Buffer.from(t.info.name).toString(), files };
}

/** One author's file of a stored bundle, or null if the bundle has none. */
export async function readAuthorFile(root: string, infoHash: string, pubkey: string): Promise<string | null> {
  const { files } = await bundleFiles(root, infoHash);
  const f = files.find((x) => x.path === `${pubkey}.jsonl`);
  if (!f) return null;
  const fh = await open(dataPathOf(root, infoHash), 'r');
  try {
    const buf = Buffer.alloc(f.length);
    await fh.read(buf, 0, f.length, f.offset);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Writes a stored bundle out as ordinary files (`<dest>/<name>/<pubkey>.jsonl`), as any client would save it. */
export async function extractBundle(root: string, infoHash: string, dest: string): Promise<string> {
  const { name, files } = await bundleFiles(root, infoHash);
  const dir = join(dest, name);
  await mkdir(dir, { recursive: true });
  const data = await readFile(dataPathOf(root, infoHash));
  for (const f of files) await writeFile(join(dir, f.path), data.subarray(f.offset, f.offset + f.length));
  return dir;
}
