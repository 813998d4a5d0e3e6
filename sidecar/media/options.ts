// Every media setting in one flat object: the fields of the fetch policy, the queue, the store and
// the reference limits do not overlap, so a `[media]` config section maps onto it key for key
// (docs/protocol.md "Media" lists them).
import { DEFAULT_BLOB_STORE_OPTIONS, type BlobStoreOptions } from './blob-store.js';
import { DEFAULT_FETCH_QUEUE_OPTIONS, type FetchQueueOptions } from './fetch-queue.js';
import { DEFAULT_REFERENCE_LIMITS, type ReferenceLimits } from './references.js';
import { DEFAULT_FETCH_POLICY, type FetchPolicy } from './safe-fetch.js';

export interface MediaOptions extends FetchPolicy, FetchQueueOptions, BlobStoreOptions, ReferenceLimits {
  /** Archive media at all (off by default: fetching is an attack surface and uses disk and bandwidth). */
  enabled: boolean;
  /** Event kinds whose media is archived; empty = every archived kind. */
  kinds: readonly number[];
}

export const DEFAULT_MEDIA_OPTIONS: MediaOptions = {
  enabled: false,
  kinds: [],
  ...DEFAULT_REFERENCE_LIMITS,
  ...DEFAULT_FETCH_POLICY,
  ...DEFAULT_FETCH_QUEUE_OPTIONS,
  ...DEFAULT_BLOB_STORE_OPTIONS,
};

/** The `[media]` section as MediaOptions (its keys are MediaOptions' fields; test/media-config.test.ts checks they match). */
export function mediaOptionsOf(section: MediaOptions): MediaOptions {
  const out = { ...DEFAULT_MEDIA_OPTIONS };
  for (const k of Object.keys(DEFAULT_MEDIA_OPTIONS) as (keyof MediaOptions)[]) (out as Record<string, unknown>)[k] = section[k];
  return out;
}
