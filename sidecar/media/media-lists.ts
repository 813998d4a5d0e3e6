// Each author's media list (docs/protocol.md §8 "Media list"), built from the blobs stored for
// their events and seeded as a torrent whose infohash the author's pointer names (page 0's `m`),
// so a reader with only the bridge key and the author finds the author's media in the swarm.
//
// The list is a pure function of the author's stored blobs (sha256, infohash, size), its torrent
// a pure function of the list: the same blobs give the same infohash, across restarts (lists are
// rebuilt from the media index at start, nothing about them is persisted). The torrent has the
// bundle layout (§6: one file `<pubkey>.jsonl` under the name `nostr-bt-media-<pubkey>`), so the
// reader's bundle fetcher reads it with its limits. Rebuilds are coalesced per author, and only
// an author whose blobs changed since their list was built is rebuilt (reading that author's
// entries alone), so the work of a change is bounded by that author's blobs, never all of them.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { hashPieces, pieceLengthFor } from '../bundles/builder.js';
import type { Seeder } from '../bundles/bundler.js';
import { encodeBundleInfo } from '../formats/bundle-info.js';
import { mediaListBytes, mediaListName, type MediaListEntry } from '../formats/media-list.js';

export interface MediaListsDeps {
  /** `<dataDir>/media/lists` */
  dir: string;
  seeder: Seeder;
  /**
   * The author's stored blobs now (read only for an author whose version moved); `complete`
   * false when some are not recorded yet (a fetch finishing): the list is built again on the next touch.
   */
  entriesOf: (author: string) => { entries: MediaListEntry[]; complete: boolean };
  /** Changes whenever the author's stored blobs do (BlobStore.versionOf). */
  versionOf: (author: string) => number;
  /** The author's list infohash changed (or went): their pointer is signed again. */
  onChanged: (authors: string[]) => void;
  onError: (err: unknown, author: string) => void;
}

export class MediaLists {
  /** author → infohash of the list seeded now. */
  private readonly current = new Map<string, string>();
  /** author → the blob version their current list (or its absence) was built from. */
  private readonly builtAt = new Map<string, number>();
  private work = { rebuilds: 0, entriesRead: 0, skipped: 0 };
  private readonly dirty = new Set<string>();
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly d: MediaListsDeps) {}

  static async open(d: MediaListsDeps): Promise<MediaLists> {
    // Lists are rebuilt from the index: whatever is on disk is from an earlier run.
    await rm(d.dir, { recursive: true, force: true });
    await mkdir(d.dir, { recursive: true, mode: 0o750 });
    return new MediaLists(d);
  }

  /** The infohash of the author's list (undefined: no media of theirs is stored). */
  infoHashOf(author: string): string | undefined {
    return this.current.get(author);
  }

  get count(): number {
    return this.current.size;
  }

  /** Lists rebuilt, the entries they were built from, and touches skipped (the author's blobs had not changed, or one was still being recorded) (status). */
  stats(): { rebuilds: number; entriesRead: number; skipped: number } {
    return { ...this.work };
  }

  /** Marks authors whose stored blobs changed; their lists are rebuilt soon (coalesced). */
  touch(authors: Iterable<string>): void {
    if (this.stopped) return;
    for (const a of authors) this.dirty.add(a);
    if (!this.running) this.running = this.drain().finally(() => (this.running = null));
  }

  /** Resolves once no rebuild is pending (tests, stop). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && (this.running || (this.dirty.size > 0 && !this.stopped)); i++) {
      if (!this.running) this.touch([]);
      await this.running;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async drain(): Promise<void> {
    // Let a burst of changes land first (one rebuild per author for a batch of blobs).
    await new Promise((r) => setImmediate(r));
    while (this.dirty.size > 0 && !this.stopped) {
      const batch = [...this.dirty];
      this.dirty.clear();
      const changed: string[] = [];
      for (const author of batch) {
        if (this.stopped) break;
        try {
          if (await this.rebuild(author)) changed.push(author);
        } catch (err) {
          this.d.onError(err, author);
        }
      }
      if (changed.length > 0) this.d.onChanged(changed);
    }
  }

  /** Rebuilds one list; returns whether its infohash changed. */
  private async rebuild(author: string): Promise<boolean> {
    const version = this.d.versionOf(author);
    if ((this.builtAt.get(author) ?? 0) === version) {
      this.work.skipped++;
      return false;
    }
    const { entries, complete } = this.d.entriesOf(author);
    if (!complete) {
      // A blob of theirs is being recorded: its store step touches the author again.
      this.work.skipped++;
      return false;
    }
    this.work.rebuilds++;
    this.work.entriesRead += entries.length;
    const built = () => this.builtAt.set(author, version);
    const old = this.current.get(author);
    if (entries.length === 0) {
      this.builtAt.delete(author);
      if (old === undefined) return false;
      await this.d.seeder.unseed(old);
      this.current.delete(author);
      await rm(this.dataPath(old), { force: true });
      await rm(this.torrentPath(old), { force: true });
      return true;
    }
    const bytes = mediaListBytes(entries);
    const tmp = join(this.d.dir, `${author}.tmp`);
    await writeFile(tmp, bytes);
    const pieceLength = pieceLengthFor(bytes.length);
    const info = encodeBundleInfo({
      files: [{ pubkey: author, length: bytes.length }],
      name: mediaListName(author),
      pieceLength,
      pieces: await hashPieces(tmp, pieceLength, bytes.length),
    });
    const ih = createHash('sha1').update(info).digest('hex');
    if (ih === old) {
      await rm(tmp, { force: true });
      built();
      return false;
    }
    const torrent = Buffer.concat([Buffer.from('d4:info'), info, Buffer.from('e')]);
    await rename(tmp, this.dataPath(ih));
    await writeFile(this.torrentPath(ih), torrent);
    await this.d.seeder.seed({ infoHash: ih, torrent, dataPath: this.dataPath(ih) });
    this.current.set(author, ih);
    built();
    if (old !== undefined) {
      await this.d.seeder.unseed(old);
      await rm(this.dataPath(old), { force: true });
      await rm(this.torrentPath(old), { force: true });
    }
    return true;
  }

  private dataPath(ih: string): string {
    return join(this.d.dir, `${ih}.data`);
  }

  private torrentPath(ih: string): string {
    return join(this.d.dir, `${ih}.torrent`);
  }
}
