// Verified media blobs on disk, named by sha256, with per-author and total quotas, and each
// blob's deterministic torrent (docs/protocol.md "Media").
//
// Layout: `<dataDir>/media/<aa>/<sha256>` (aa = the hash's first two hex digits, so no directory
// holds more than 1/256 of the blobs) and `<sha256>.torrent` beside it. Fetches write
// `<sha256>.<random>.part` in the same directory and rename (safe-fetch.ts); leftovers of a crash
// are removed on open.
//
// The torrent: single-file v1, info dict exactly {length, name, piece length, pieces} with
// name = the sha256 (no extension: which one a URL had differs between bridges), the piece
// length the bundles' rule for the blob's size (pieceLengthFor): same bytes, same infohash on
// any machine. The origin URLs go in `url-list` (BEP-19 web seeds), outside the info dict.
//
// Quotas: a blob's bytes count once toward the total and toward every author that references
// it (an author's quota bounds what their events make the bridge keep, whoever else shares the
// blob). Who references what is given by the caller (from the index) after open: the store keeps
// only the blobs on disk and the references it was told about.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bencode from 'bencode';
import { hashPieces, pieceLengthFor } from '../bundles/builder.js';

/** The store's limits; each field is meant to be one config key (`[media]` section). */
export interface BlobStoreOptions {
  /** All blobs together. */
  maxTotalBytes: number;
  /** All blobs an author's events reference. */
  maxBytesPerAuthor: number;
}

export const DEFAULT_BLOB_STORE_OPTIONS: BlobStoreOptions = { maxTotalBytes: 10 * 1024 ** 3, maxBytesPerAuthor: 512 * 1024 ** 2 };

export interface BlobTorrent {
  infoHash: string;
  /** The .torrent file's bytes (info dict + url-list). */
  torrent: Buffer;
  pieceLength: number;
}

export interface StoredBlob extends BlobTorrent {
  sha256: string;
  bytes: number;
  path: string;
  torrentPath: string;
  /** Content-Type the origin served it with (set by the fetcher). */
  mime?: string;
}

export type QuotaRefusal = 'author-quota' | 'total-quota';

export class QuotaError extends Error {
  constructor(
    readonly code: QuotaRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'QuotaError';
  }
}

export interface BlobStoreStats {
  blobs: number;
  bytes: number;
  /** Authors with at least one reference. */
  authors: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

export function mediaRoot(dataDir: string): string {
  return join(dataDir, 'media');
}

export function blobPath(root: string, sha256: string): string {
  return join(root, sha256.slice(0, 2), sha256);
}

/** The deterministic torrent of a blob file of `bytes` bytes named by `sha256`; `webSeeds` go in url-list. */
export async function blobTorrent(path: string, sha256: string, bytes: number, webSeeds: readonly string[]): Promise<BlobTorrent> {
  if (!HEX64.test(sha256)) throw new Error(`blob torrent: ${sha256} is not a sha256`);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`blob torrent: a blob of ${bytes} bytes has no pieces`);
  const pieceLength = pieceLengthFor(bytes);
  const info = { length: bytes, name: sha256, 'piece length': pieceLength, pieces: await hashPieces(path, pieceLength, bytes) };
  const infoBytes = Buffer.from(bencode.encode(info));
  const infoHash = createHash('sha1').update(infoBytes).digest('hex');
  // Keys sorted: info < url-list. The info bytes are spliced in as hashed.
  const parts = [Buffer.from('d4:info'), infoBytes];
  if (webSeeds.length > 0) {
    const list = Buffer.from(bencode.encode([...webSeeds]));
    parts.push(Buffer.from('8:url-list'), list);
  }
  parts.push(Buffer.from('e'));
  return { infoHash, torrent: Buffer.concat(parts), pieceLength };
}

export class BlobStore {
  /** sha256 → bytes on disk. */
  private readonly sizes = new Map<string, number>();
  private totalBytes = 0;
  /** sha256 → authors referencing it. */
  private readonly refs = new Map<string, Set<string>>();
  /** author → bytes of the blobs they reference. */
  private readonly byAuthor = new Map<string, number>();
  /** author → the blobs they reference (one author's list is rebuilt without a scan of every blob). */
  private readonly shasByAuthor = new Map<string, Set<string>>();
  /** author → how many times their set of blobs changed (a list is rebuilt only when it moved). */
  private readonly versions = new Map<string, number>();

  private constructor(
    readonly root: string,
    private readonly opts: BlobStoreOptions,
  ) {}

  /** Opens (creating) `<dataDir>/media`, counts the blobs there and removes unfinished fetches. */
  static async open(dataDir: string, opts: BlobStoreOptions): Promise<BlobStore> {
    const store = new BlobStore(mediaRoot(dataDir), opts);
    await mkdir(store.root, { recursive: true, mode: 0o750 });
    for (const sub of await readdir(store.root)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      const dir = join(store.root, sub);
      for (const name of await readdir(dir)) {
        if (name.endsWith('.part')) await rm(join(dir, name), { force: true });
        else if (HEX64.test(name) && name.startsWith(sub)) {
          const st = await stat(join(dir, name));
          store.sizes.set(name, st.size);
          store.totalBytes += st.size;
        }
      }
    }
    return store;
  }

  pathOf(sha256: string): string {
    return blobPath(this.root, sha256);
  }

  torrentPathOf(sha256: string): string {
    return this.pathOf(sha256) + '.torrent';
  }

  has(sha256: string): boolean {
    return this.sizes.has(sha256);
  }

  /** The sha256 of every blob on disk. */
  shas(): string[] {
    return [...this.sizes.keys()];
  }

  /** The blobs `author` references. */
  shasOf(author: string): string[] {
    return [...(this.shasByAuthor.get(author) ?? [])];
  }

  /** Changes with every blob `author` gains or loses (0: never had one); equal versions, equal blobs. */
  versionOf(author: string): number {
    return this.versions.get(author) ?? 0;
  }

  private own(author: string, sha256: string): void {
    let set = this.shasByAuthor.get(author);
    if (!set) this.shasByAuthor.set(author, (set = new Set()));
    set.add(sha256);
    this.versions.set(author, this.versionOf(author) + 1);
  }

  private disown(author: string, sha256: string): void {
    const set = this.shasByAuthor.get(author);
    if (!set?.delete(sha256)) return;
    if (set.size === 0) this.shasByAuthor.delete(author);
    this.versions.set(author, this.versionOf(author) + 1);
  }

  /** Authors referencing a blob, and all authors with a reference. */
  ownersOf(sha256: string): string[] {
    return [...(this.refs.get(sha256) ?? [])];
  }

  authors(): string[] {
    return [...this.byAuthor.keys()];
  }

  authorBytes(author: string): number {
    return this.byAuthor.get(author) ?? 0;
  }

  stats(): BlobStoreStats {
    return { blobs: this.sizes.size, bytes: this.totalBytes, authors: this.byAuthor.size };
  }

  /**
   * Bytes a new blob referenced by `author` may have (for the fetch's size cap): the smaller of
   * what their quota and the total quota have left. 0 means do not fetch.
   */
  room(author: string): number {
    return Math.min(this.authorRoom(author), this.totalRoom());
  }

  authorRoom(author: string): number {
    return Math.max(0, this.opts.maxBytesPerAuthor - this.authorBytes(author));
  }

  totalRoom(): number {
    return Math.max(0, this.opts.maxTotalBytes - this.totalBytes);
  }

  /**
   * Takes in the verified blob the fetcher put at pathOf(sha256) for `author`, writes its torrent
   * with `webSeeds` and counts it. Over a quota, the file is removed and QuotaError thrown.
   */
  async add(author: string, sha256: string, webSeeds: readonly string[]): Promise<StoredBlob> {
    if (!HEX64.test(sha256)) throw new Error(`blob store: ${sha256} is not a sha256`);
    const path = this.pathOf(sha256);
    const bytes = this.sizes.get(sha256) ?? (await stat(path)).size;
    const fresh = !this.sizes.has(sha256);
    const authorAfter = this.authorBytes(author) + (this.refs.get(sha256)?.has(author) ? 0 : bytes);
    const refusal: QuotaRefusal | null =
      fresh && this.totalBytes + bytes > this.opts.maxTotalBytes
        ? 'total-quota'
        : authorAfter > this.opts.maxBytesPerAuthor
          ? 'author-quota'
          : null;
    if (refusal !== null) {
      if (fresh) await rm(path, { force: true });
      throw new QuotaError(
        refusal,
        `blob ${sha256} (${bytes} bytes) is over the ${refusal === 'total-quota' ? 'total' : 'per-author'} media quota`,
      );
    }
    const t = await blobTorrent(path, sha256, bytes, webSeeds);
    const torrentPath = this.torrentPathOf(sha256);
    await writeFile(torrentPath + '.tmp', t.torrent);
    await rename(torrentPath + '.tmp', torrentPath);
    if (fresh) {
      this.sizes.set(sha256, bytes);
      this.totalBytes += bytes;
    }
    this.reference(author, sha256);
    return { ...t, sha256, bytes, path, torrentPath };
  }

  /** Counts `author` as referencing a stored blob (restoring references from the index, or a second author). */
  reference(author: string, sha256: string): void {
    const bytes = this.sizes.get(sha256);
    if (bytes === undefined) throw new Error(`blob store: no blob ${sha256}`);
    let owners = this.refs.get(sha256);
    if (!owners) this.refs.set(sha256, (owners = new Set()));
    if (owners.has(author)) return;
    owners.add(author);
    this.own(author, sha256);
    this.byAuthor.set(author, this.authorBytes(author) + bytes);
  }

  /**
   * Drops `author`'s reference; the blob and its torrent are deleted when it was the last one.
   * Returns whether the blob was deleted (never for an author that did not reference it).
   */
  async release(author: string, sha256: string): Promise<boolean> {
    const bytes = this.sizes.get(sha256);
    const owners = this.refs.get(sha256);
    if (bytes === undefined || !owners?.delete(author)) return false;
    this.disown(author, sha256);
    const left = this.authorBytes(author) - bytes;
    if (left > 0) this.byAuthor.set(author, left);
    else this.byAuthor.delete(author);
    if (owners.size > 0) return false;
    await this.remove(sha256);
    return true;
  }

  /** Deletes a blob and its torrent whoever references it (their counts drop with it). */
  async remove(sha256: string): Promise<void> {
    if (!this.sizes.has(sha256)) return;
    // Files first, counts after: what stats() says is on disk is (status, tests wait on it).
    await rm(this.torrentPathOf(sha256), { force: true });
    await rm(this.pathOf(sha256), { force: true });
    const bytes = this.sizes.get(sha256);
    if (bytes === undefined) return; // removed meanwhile by another call
    for (const a of this.refs.get(sha256) ?? []) {
      this.disown(a, sha256);
      const left = this.authorBytes(a) - bytes;
      if (left > 0) this.byAuthor.set(a, left);
      else this.byAuthor.delete(a);
    }
    this.refs.delete(sha256);
    this.sizes.delete(sha256);
    this.totalBytes -= bytes;
  }

  /** The stored torrent of a blob (after a restart). */
  async readTorrent(sha256: string): Promise<Buffer> {
    return readFile(this.torrentPathOf(sha256));
  }
}
