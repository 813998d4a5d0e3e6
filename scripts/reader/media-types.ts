// The media reader's public types (docs/reader.md "Media"), apart from the fetcher so the
// library's declarations reach no module that needs the DHT's or WebTorrent's types.
import type { MediaListEntry } from '../../sidecar/formats/media-list.js';

export interface MediaFetchOptions {
  /** The blob's sha256, 64 hex. */
  sha256: string;
  /** Where the verified bytes go (renamed into place). */
  out: string;
  /** The blob torrent's infohash (swarm); without it the swarm is skipped. */
  infoHash?: string;
  /** The .torrent (from a gateway): its metadata is then not fetched from peers. Its web seeds are not used here; pass them in `urls`. */
  torrent?: Buffer;
  /** HTTP sources after the swarm, in order (web seeds, origins). */
  urls?: string[];
  /** Largest blob taken (default 1 GiB). */
  maxBytes?: number;
  /** Deadline of the swarm part (default 120 s) and the longest it may go without a new piece (default 20 s). */
  swarmTimeoutMs?: number;
  stallTimeoutMs?: number;
  /** Deadline per HTTP URL (default 120 s). */
  httpTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface MediaAttempt {
  /** `swarm`, or the URL tried. */
  source: string;
  ok: boolean;
  /** Why it failed: no-peers, stalled, timeout, bad-metadata, too-large, hash-mismatch, http-<status>, redirects, scheme, network, aborted. */
  reason?: string;
  detail?: string;
  bytes: number;
  ms: number;
  peers?: number;
}

export type MediaFetchResult =
  | { ok: true; sha256: string; bytes: number; source: 'swarm' | 'http'; url?: string; infoHash?: string; attempts: MediaAttempt[] }
  | { ok: false; sha256: string; attempts: MediaAttempt[] };

export type { MediaListEntry };

export interface MediaListLimits {
  maxListBytes: number;
  timeoutMs: number;
}

export type MediaListResult =
  | { ok: true; bridge: string; infoHash: string; entries: MediaListEntry[] }
  | { ok: false; bridge: string; reason: string; detail: string };
