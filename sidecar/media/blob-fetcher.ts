// The fetch queue's worker for the blob store: a referenced blob already stored only gains a
// reference; a new one is fetched within what the author's and the total quota leave, verified,
// stored and given its torrent, with the URL that gave the right bytes as its web seed.
import { BlobStore, QuotaError, type StoredBlob } from './blob-store.js';
import type { FetchJob, FetchWorker } from './fetch-queue.js';
import { FetchError, fetchFromAny, type FetchPolicy, type Resolver } from './safe-fetch.js';

export interface BlobFetcherHooks {
  /** A new blob is on disk with its torrent (to index and seed it). */
  onStored?: (job: FetchJob, blob: StoredBlob) => void;
  /** Tests inject a resolver; the system resolver otherwise. */
  resolve?: Resolver;
}

export function blobFetchWorker(store: BlobStore, policy: FetchPolicy, hooks: BlobFetcherHooks = {}): FetchWorker {
  return async (job, ctx) => {
    if (store.has(job.sha256)) {
      store.reference(job.author, job.sha256);
      return { bytes: 0 };
    }
    if (job.size !== undefined && job.size > policy.maxBlobBytes) {
      throw new FetchError('too-large', `the event states ${job.size} bytes, over ${policy.maxBlobBytes}`, job.urls[0] ?? '');
    }
    const room = store.room(job.author);
    if (room < 1 || (job.size !== undefined && job.size > room))
      throw new QuotaError(quotaKind(store, job.author), `no room for blob ${job.sha256} of ${job.author}`);
    const maxBlobBytes = Math.min(policy.maxBlobBytes, room);
    let source: string;
    let mime: string | null;
    try {
      const r = await fetchFromAny(
        job.urls,
        {
          sha256: job.sha256,
          dest: store.pathOf(job.sha256),
          pace: ctx.pace,
          signal: ctx.signal,
          ...(hooks.resolve ? { resolve: hooks.resolve } : {}),
        },
        { ...policy, maxBlobBytes },
      );
      source = r.source;
      mime = r.mime;
    } catch (err) {
      // Over what the quotas left (not over the size limit itself): a quota refusal.
      if (err instanceof FetchError && err.code === 'too-large' && maxBlobBytes < policy.maxBlobBytes)
        throw new QuotaError(quotaKind(store, job.author), err.message);
      throw err;
    }
    const blob: StoredBlob = await store.add(job.author, job.sha256, [source]);
    if (mime !== null) blob.mime = mime;
    hooks.onStored?.(job, blob);
    return { bytes: blob.bytes };
  };
}

/** Which quota is the tighter one for `author` now. */
function quotaKind(store: BlobStore, author: string): 'author-quota' | 'total-quota' {
  return store.authorRoom(author) <= store.totalRoom() ? 'author-quota' : 'total-quota';
}
