// The status document served at /status and printed by `nostr-bt status`.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Counters, Store } from './store.js';
import type { SpoolDepth } from './spool-drain.js';
import type { PublisherStats } from './publisher.js';
import type { ReconcileStatus } from './reconcile.js';

export interface Status {
  sidecar: 'up' | 'down';
  dataDir: string;
  socket: string;
  uptimeSec: number | null;
  events: { received: number; indexed: number; duplicates: number; stored: number };
  skippedByPolicy: Counters;
  removed: Counters;
  invalid: Counters;
  spool: SpoolDepth & { drainedFiles?: number; drainedLines?: number };
  ingest?: {
    backlog: number;
    connections: number;
    error: string | null;
    latency?: Observed;
    /** Lines received but not yet acknowledged (committed), and the age in seconds of the oldest of them. */
    unacknowledged?: number;
    lagSeconds?: number;
  };
  bundles?: BundleSummary & { built?: number; retired?: number };
  seeding?: { torrents: number; peers: number; uploaded: number; downloaded: number; port: number };
  dht?: { nodes: number; ready: boolean };
  bridge?: { publicKey: string };
  pointers?: PublisherStats & { republishLagSec?: number | null; putNodes?: Observed };
  reconcile?: ReconcileStatus;
  memory?: MemoryStatus;
}

/** The process's memory (MB): resident set, V8 heap in use / reserved, memory outside the heap. */
export interface MemoryStatus {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export function memoryStatus(): MemoryStatus {
  const m = process.memoryUsage();
  const mb = (b: number) => Math.round(b / 1e5) / 10;
  return { rss: mb(m.rss), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) };
}

/** Observations since the sidecar started: ingest latency (ms), DHT nodes storing each put. */
export interface Observed {
  count: number;
  mean: number | null;
  max: number | null;
}

export interface BundleSummary {
  active: number;
  byLevel: Record<string, number>;
  bytes: number;
  events: number;
  /** Events indexed but not yet in a bundle (the next window's). */
  pendingEvents: number;
  /** Bundles waiting to be rewritten without removed events. */
  pendingRewrites: number;
  newest: string | null;
}

function group(counts: Counters, prefix: string): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(counts)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

export function statusFromStore(
  store: Store,
  base: Pick<Status, 'sidecar' | 'dataDir' | 'socket' | 'uptimeSec' | 'spool' | 'ingest' | 'bundles' | 'seeding' | 'dht' | 'bridge' | 'pointers' | 'reconcile' | 'memory'>,
): Status {
  const c = store.counts();
  return {
    ...base,
    events: {
      received: c.received ?? 0,
      indexed: c.indexed ?? 0,
      duplicates: c.duplicate ?? 0,
      stored: store.eventCount(),
    },
    skippedByPolicy: group(c, 'skipped.'),
    removed: group(c, 'removed.'),
    invalid: group(c, 'invalid.'),
  };
}

/** Spool depth measured from the directory (for the CLI when the sidecar is down). */
export async function measureSpool(dir: string): Promise<SpoolDepth> {
  let files = 0;
  let bytes = 0;
  try {
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.ready') && !name.endsWith('.open')) continue;
      try {
        bytes += (await stat(join(dir, name))).size;
        files++;
      } catch {
        /* drained meanwhile */
      }
    }
  } catch {
    /* no spool yet */
  }
  return { files, bytes };
}
