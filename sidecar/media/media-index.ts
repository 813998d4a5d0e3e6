// What the media archive knows beyond the blob files: each blob's torrent (sha256 ↔ infohash),
// the events that reference it (and their authors), the fetches queued but not finished, and how
// far the archiver has read the event index. Its own LMDB environment,
// `<dataDir>/media/index.mdb`, owned by this module alone (the event index is not touched), so the
// references survive a restart and the per-author quotas can be rebuilt from them.
//
// Tables (all keys lowercase hex):
//   blobs   sha256            → { ih, bytes, urls }     a blob on disk and its torrent
//   refs    [sha256, eventId] → author                  who references a blob (stored or pending)
//   byEvent [eventId, sha256] → null                    the same, by event (for removals)
//   pending sha256            → FetchJob                a fetch queued or in flight (re-queued on start)
//   meta    'cursor'          → sequence number         the next indexed event to read
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { FetchJob } from './fetch-queue.js';

export interface MediaBlobRecord {
  ih: string;
  bytes: number;
  /** The web seeds in its torrent (the URL that gave the right bytes). */
  urls: string[];
  /** Content-Type the gateway serves it with: the origin's, or the event's `m` when the origin said none or octet-stream. */
  mime?: string;
}

export interface Reference {
  eventId: string;
  author: string;
}

/** What dropping an event's references left: the blobs nothing references any more, and the (blob, author) pairs that lost their last reference. */
export interface Unreferenced {
  orphanBlobs: string[];
  released: { sha256: string; author: string }[];
}

const MAP_SIZE = 1024 ** 3;

export function mediaIndexPath(dataDir: string): string {
  return join(dataDir, 'media', 'index.mdb');
}

export class MediaIndex {
  private readonly root: RootDatabase;
  private readonly blobs: Database<MediaBlobRecord, string>;
  private readonly refs: Database<string, [string, string]>;
  private readonly byEvent: Database<null, [string, string]>;
  private readonly pending: Database<FetchJob, string>;
  private readonly meta: Database<number, string>;

  private constructor(path: string) {
    this.root = open({ path, maxDbs: 8, compression: false, mapSize: MAP_SIZE });
    this.blobs = this.root.openDB({ name: 'blobs', compression: false });
    this.refs = this.root.openDB({ name: 'refs', compression: false });
    this.byEvent = this.root.openDB({ name: 'byEvent', compression: false });
    this.pending = this.root.openDB({ name: 'pending', compression: false });
    this.meta = this.root.openDB({ name: 'meta', compression: false });
  }

  static open(dataDir: string): MediaIndex {
    mkdirSync(join(dataDir, 'media'), { recursive: true, mode: 0o750 });
    return new MediaIndex(mediaIndexPath(dataDir));
  }

  /** The next event sequence number to read, or undefined before the first run. */
  get cursor(): number | undefined {
    return this.meta.get('cursor');
  }

  setCursor(seq: number): Promise<boolean> {
    return this.meta.put('cursor', seq);
  }

  blob(sha256: string): MediaBlobRecord | undefined {
    return this.blobs.get(sha256);
  }

  *allBlobs(): Generator<[string, MediaBlobRecord]> {
    for (const { key, value } of this.blobs.getRange()) yield [key, value];
  }

  blobCount(): number {
    return this.blobs.getKeysCount();
  }

  refCount(): number {
    return this.refs.getKeysCount();
  }

  pendingCount(): number {
    return this.pending.getKeysCount();
  }

  *allPending(): Generator<FetchJob> {
    for (const { value } of this.pending.getRange()) yield value;
  }

  /** The events referencing a blob. */
  referencesOf(sha256: string): Reference[] {
    const out: Reference[] = [];
    for (const { key, value } of this.refs.getRange({ start: [sha256, ''], end: [sha256, '~'] }))
      out.push({ eventId: key[1], author: value });
    return out;
  }

  /** Blobs an event references. */
  blobsOf(eventId: string): string[] {
    const out: string[] = [];
    for (const key of this.byEvent.getKeys({ start: [eventId, ''], end: [eventId, '~'] })) out.push(key[1]);
    return out;
  }

  /** Distinct event ids with references, in id order, from `after` (exclusive), at most `limit`. */
  eventIdsAfter(after: string, limit: number): string[] {
    const out: string[] = [];
    let last = '';
    for (const key of this.byEvent.getKeys({ start: [after, '~'] })) {
      if (key[0] === last) continue;
      last = key[0];
      out.push(key[0]);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Records that `eventId` by `author` references each blob, and the fetch jobs queued for some of them (idempotent: an event read twice after a crash adds nothing). */
  async addReferences(eventId: string, author: string, shas: readonly string[], jobs: readonly FetchJob[] = []): Promise<void> {
    await this.root.transaction(() => {
      for (const sha of shas) {
        this.refs.put([sha, eventId], author);
        this.byEvent.put([eventId, sha], null);
      }
      for (const j of jobs)
        this.pending.put(j.sha256, {
          sha256: j.sha256,
          urls: [...j.urls],
          author: j.author,
          ...(j.mime ? { mime: j.mime } : {}),
          ...(j.size !== undefined ? { size: j.size } : {}),
        });
    });
  }

  /** A fetched blob: recorded, its fetch no longer pending. */
  async putBlob(sha256: string, rec: MediaBlobRecord): Promise<void> {
    await this.root.transaction(() => {
      this.blobs.put(sha256, rec);
      this.pending.remove(sha256);
    });
  }

  /** A fetch that failed: no longer pending, and the references of a blob that is not there go (nothing to seed). */
  async fetchFailed(sha256: string): Promise<void> {
    await this.root.transaction(() => {
      this.pending.remove(sha256);
      if (this.blobs.get(sha256) !== undefined) return;
      for (const r of this.referencesOf(sha256)) {
        this.refs.remove([sha256, r.eventId]);
        this.byEvent.remove([r.eventId, sha256]);
      }
    });
  }

  /** Drops the references of events no longer archived; says which blobs and (blob, author) pairs lost their last one. */
  async removeEvents(eventIds: readonly string[]): Promise<Unreferenced> {
    const touched = new Map<string, Set<string>>();
    await this.root.transaction(() => {
      for (const id of eventIds) {
        for (const sha of this.blobsOf(id)) {
          const author = this.refs.get([sha, id]);
          this.refs.remove([sha, id]);
          this.byEvent.remove([id, sha]);
          if (author === undefined) continue;
          let s = touched.get(sha);
          if (!s) touched.set(sha, (s = new Set()));
          s.add(author);
        }
      }
    });
    const out: Unreferenced = { orphanBlobs: [], released: [] };
    for (const [sha, authors] of touched) {
      const left = this.referencesOf(sha);
      if (left.length === 0) {
        out.orphanBlobs.push(sha);
        continue;
      }
      for (const a of authors) if (!left.some((r) => r.author === a)) out.released.push({ sha256: sha, author: a });
    }
    return out;
  }

  /** Forgets a blob and every reference to it (it was deleted from disk). */
  async dropBlob(sha256: string): Promise<void> {
    await this.root.transaction(() => {
      this.blobs.remove(sha256);
      this.pending.remove(sha256);
      for (const r of this.referencesOf(sha256)) {
        this.refs.remove([sha256, r.eventId]);
        this.byEvent.remove([r.eventId, sha256]);
      }
    });
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
