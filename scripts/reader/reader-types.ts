// The reader's result and limit types, apart from the code that fills them, so that the
// library's declarations (scripts/reader/index.ts) reach none of the untyped torrent and DHT
// packages the reader runs on.
import type { DiscoverySummary } from './discover-types.js';
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import type { MergeCounts } from './event-merge.js';
import type { RejectReason } from './verify-events.js';

export type FetchFailure =
  | 'timeout'
  | 'no-peers'
  | 'metadata-too-large'
  | 'bad-metadata'
  | 'not-in-bundle'
  | 'file-too-large'
  | 'error'
  | 'aborted';

export interface ResolveLimits {
  /** Per DHT get of a pointer page. */
  pointerTimeoutMs: number;
  /** Per bundle (metadata and the author's file). */
  bundleTimeoutMs: number;
  /** The whole swarm phase (pointers and bundles). */
  swarmTimeoutMs: number;
  /** Per relay, all pages. */
  relayTimeoutMs: number;
  maxMetadataBytes: number;
  maxFileBytes: number;
  /** Longest event line accepted from a bundle. */
  maxEventBytes: number;
  /** Bytes downloaded for this author over all bundles. */
  maxBytes: number;
  /** Bundles fetched at once. */
  concurrency: number;
}

export const DEFAULT_LIMITS: ResolveLimits = {
  pointerTimeoutMs: 20_000,
  bundleTimeoutMs: 60_000,
  swarmTimeoutMs: 120_000,
  relayTimeoutMs: 20_000,
  maxMetadataBytes: 4 * 1024 * 1024,
  maxFileBytes: 256 * 1024 * 1024,
  maxEventBytes: 1024 * 1024,
  maxBytes: 1024 * 1024 * 1024,
  concurrency: 4,
};

/** `fallback`: relays are asked for what is newer than the archive, or for everything if the swarm fell short. `full`: always everything. */
export type RelayMode = 'fallback' | 'full';

/** Where a verified event came from. */
export type EventOrigin =
  | {
      from: 'swarm';
      /** The bundle it was read from. */
      infoHash: string;
      /** Bridges (hex keys) whose pointer lists that bundle. */
      bridges: string[];
      /** Peers ("host:port") that sent the piece completing the event; empty when the piece was already held. */
      peers: string[];
    }
  | { from: 'relay'; url: string };

export interface BridgeReport {
  bridge: string;
  status: 'found' | 'absent' | 'timeout' | 'invalid';
  reason?: string;
  bundles?: number;
  n?: number;
  pages?: number;
  seq?: number;
  complete?: boolean;
  problems?: string[];
}

export interface BundleReport {
  infoHash: string;
  /** Bridges whose pointer lists it (first 16 hex of their key). */
  bridges: string[];
  ok: boolean;
  reason?: FetchFailure | 'budget' | 'deadline';
  detail?: string;
  fileBytes: number;
  events: number;
  rejected: number;
  ms: number;
  /** Metadata in, first byte of the author's file (ms from the start of this bundle's fetch). */
  metadataMs?: number | null;
  firstByteMs?: number | null;
}

export interface RelayReport {
  url: string;
  ok: boolean;
  error?: string;
  /** `newer-than-archive` (since = the newest archived event) or `full`. */
  asked: 'newer-than-archive' | 'full';
  since?: number;
  received: number;
  alreadyHad: number;
  newEvents: number;
  rejected: number;
}

export interface ResolveSummary {
  author: string;
  ms: number;
  /** At least one event is output. */
  found: boolean;
  /** Every bridge answered, every pointer was complete and every bundle it lists was read. */
  swarmComplete: boolean;
  bridges: BridgeReport[];
  /** How the bridges were found, when none were given (discovery). */
  discovery?: DiscoverySummary;
  bundles: BundleReport[];
  relays: RelayReport[];
  events: { output: number } & MergeCounts;
  rejected: Partial<Record<RejectReason, number>>;
  /** Output events by the source that served them first: "swarm" or a relay URL. */
  sources: Record<string, number>;
  /** files: the author's file bytes; received: piece bytes off the wire (≥ files when nothing was cached); relays: event JSON from relays. */
  bytes: { files: number; received: number; metadata: number; relays: number };
  firstEventMs: number | null;
  /** Time spent looking up pointers, reading bundles and asking relays. */
  phasesMs: { pointers: number; bundles: number; relays: number };
}

export interface ResolveResult {
  events: NostrEvent[];
  summary: ResolveSummary;
}

export interface CrawlBudget {
  maxAuthors: number;
  maxBytes: number;
  timeoutMs: number;
  /** Authors resolved at once. */
  concurrency: number;
}

export const DEFAULT_CRAWL_BUDGET: CrawlBudget = { maxAuthors: 1000, maxBytes: 1024 ** 3, timeoutMs: 600_000, concurrency: 4 };

export interface CrawlProgress {
  done: number;
  queued: number;
  active: number;
  bytes: number;
  events: number;
  elapsedMs: number;
}

export interface CrawlSummary {
  root: string;
  depth: number;
  ms: number;
  /** Authors resolved, by depth. */
  authorsByDepth: number[];
  authors: { resolved: number; found: number; notFound: number; failed: number; leftInQueue: number };
  events: number;
  bytes: number;
  rejected: Partial<Record<RejectReason, number>>;
  /** Contact lists followed (one per author that has one, below the last depth). */
  contactListsFollowed: number;
  rootContactList: { id: string; created_at: number; follows: number } | null;
  stoppedBy: 'max-authors' | 'max-bytes' | 'timeout' | 'aborted' | null;
  /** How the bridges were found, when none were given (discovery). */
  discovery?: DiscoverySummary;
}
