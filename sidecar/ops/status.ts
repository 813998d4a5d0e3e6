// The status document served at /status and printed by `nostr-bt status`.
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleSummary } from '../bundles/bundler.js';
import { Store, type Counters } from '../index/store.js';
import type { Config } from '../common/config.js';
import { readLock } from './data-dir-lock.js';
import { isOpenSpoolName, isReadySpoolName } from '../formats/spool-names.js';
import type { SpoolDepth } from '../ingest/spool-drain.js';
import type { PublisherStats } from '../publishing/publisher.js';
import type { ReconcileStatus } from '../backfill/reconcile.js';
import type { MediaStatus } from '../media/media-archiver.js';
import type { DiscoveryStatus } from '../discovery/discovery.js';
import type { CatalogStatus } from '../bundles/catalog.js';
import type { MirrorStatus } from '../mirror/mirror.js';

export interface Status {
  /**
   * up: it answered. starting: a live sidecar holds the data directory but has not finished
   * starting (no status endpoint yet). unreachable: a live sidecar holds it, started, but its
   * status endpoint does not answer. down: no sidecar runs on this data directory.
   */
  sidecar: 'up' | 'down' | 'starting' | 'unreachable';
  /** The sidecar process (when one runs). */
  process?: { pid: number; startedAt: string };
  /** What an operator should act on (spool that nothing drains, no index yet, ...). */
  warnings?: string[];
  dataDir: string;
  socket: string;
  uptimeSec: number | null;
  events: { received: number; indexed: number; duplicates: number; stored: number };
  skippedByPolicy: Counters;
  removed: Counters;
  invalid: Counters;
  /** `draining`: a running sidecar drains this spool (false: events pile up in it). */
  spool: SpoolDepth & { draining?: boolean; drainedFiles?: number; drainedLines?: number };
  ingest?: {
    backlog: number;
    connections: number;
    error: string | null;
    latency?: Observed;
    /** Lines received but not yet acknowledged (committed), and the age in seconds of the oldest of them. */
    unacknowledged?: number;
    lagSeconds?: number;
    /** strfry's accept → commit of the oldest line of the last committed batch of strfry lines, in seconds. */
    acceptLagSeconds?: number;
  };
  bundles?: BundleSummary & { built?: number; retired?: number };
  seeding?: {
    torrents: number;
    peers: number;
    uploaded: number;
    downloaded: number;
    port: number;
    webrtcPeers?: number;
    webrtcRefused?: number;
  };
  dht?: { nodes: number; ready: boolean };
  bridge?: { publicKey: string };
  pointers?: PublisherStats & { republishLagSec?: number | null; putNodes?: Observed };
  reconcile?: ReconcileStatus;
  /** Media archiving (when `media.enabled`). */
  media?: MediaStatus;
  /** The discovery beacon and its announces (when `discovery.enabled`). */
  discovery?: DiscoveryStatus;
  /** The bridge catalog (when `catalog.enabled`). */
  catalog?: CatalogStatus;
  /** Followed bridges (when `mirror.bridges` is set). */
  mirror?: MirrorStatus;
  /** The HTTP gateway (when `gateway.listen` is set); counts are since start. */
  gateway?: GatewayStatus;
  memory?: MemoryStatus;
}

/** The gateway's counters (sidecar/http/gateway-stats.ts keeps them). */
export interface GatewayStatus {
  address: string;
  openConnections: number;
  /** Responses by route (`webseed`, `pointer`, ..., `unmatched`) and status class (`2xx` ...). */
  requests: Record<string, Record<string, number>>;
  /** Body bytes the web seed handed to clients' connections. */
  webSeedBytes: number;
  /** Requests answered 429 (per-client rate), connections closed at once (per-address or total cap). */
  rateLimited: number;
  refusedConnections: number;
  /** DHT lookups for other bridges' pointers: hit (a valid item), miss (none, or none in time), fail (only invalid ones); answers from the cache; refusals (503) because lookups were busy. */
  dhtLookups: { hit: number; miss: number; fail: number; cached: number; busy: number };
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
  return {
    rss: mb(m.rss),
    heapUsed: mb(m.heapUsed),
    heapTotal: mb(m.heapTotal),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
  };
}

/** Observations since the sidecar started: ingest latency (ms), DHT nodes storing each put. */
export interface Observed {
  count: number;
  mean: number | null;
  max: number | null;
}

function group(counts: Counters, prefix: string): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(counts)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

export function statusFromStore(store: Store, base: Omit<Status, 'events' | 'skippedByPolicy' | 'removed' | 'invalid'>): Status {
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
      if (!isReadySpoolName(name) && !isOpenSpoolName(name)) continue;
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

/** Nothing to report: no sidecar, no index, no spool at the configured data directory. */
export class NoDataError extends Error {
  override name = 'NoDataError';
}

/**
 * The status read from disk, for `nostr-bt status` when the sidecar does not answer: who holds
 * the data directory's lock, the index (read-only, if there is one) and the spool. Creates
 * nothing. NoDataError when there is nothing at all (most likely the wrong data directory).
 */
export async function statusFromDisk(c: Config): Promise<Status> {
  const lock = readLock(c.dataDir);
  const live = lock !== null && lock.state !== 'dead';
  let runtimePid: unknown = null;
  try {
    runtimePid = (JSON.parse(await readFile(join(c.dataDir, 'sidecar.json'), 'utf8')) as { pid?: unknown }).pid;
  } catch {
    /* not started (or stopped) */
  }
  const sidecar: Status['sidecar'] = !live ? 'down' : runtimePid === lock.pid ? 'unreachable' : 'starting';
  const spool = await measureSpool(c.spool.dir);
  const warnings: string[] = [];
  if (live) {
    const who = `pid ${lock.pid}${lock.state === 'unknown' ? ` on host ${lock.host}` : ''}, started ${lock.startedAt}`;
    warnings.push(
      sidecar === 'starting'
        ? `a sidecar (${who}) is starting on ${c.dataDir}: its status endpoint is not up yet (re-seeding bundles can take minutes)`
        : `a sidecar (${who}) runs on ${c.dataDir} but its status endpoint does not answer`,
    );
  } else if (spool.files > 0) {
    warnings.push(
      `${spool.files} spool file${spool.files === 1 ? '' : 's'} (${spool.bytes} bytes) in ${c.spool.dir} and no running sidecar drains them: events are piling up. Start the sidecar (systemctl start nostr-bt-sidecar)`,
    );
  }
  const base: Omit<Status, 'events' | 'skippedByPolicy' | 'removed' | 'invalid'> = {
    sidecar,
    ...(live ? { process: { pid: lock.pid, startedAt: lock.startedAt } } : {}),
    warnings,
    dataDir: c.dataDir,
    socket: c.socket.path,
    uptimeSec: null,
    spool: { ...spool, draining: live },
  };
  // Opening a missing index read-only would create its directory: look first.
  if (!existsSync(join(c.indexDir, 'data.mdb'))) {
    if (!live && spool.files === 0) {
      throw new NoDataError(
        `no running sidecar and nothing at ${c.dataDir} (no index, no spool files): is this the right data directory (--config, --data-dir)?`,
      );
    }
    warnings.push(`no index at ${c.indexDir} yet: no sidecar has run with this data directory`);
    return { ...base, events: { received: 0, indexed: 0, duplicates: 0, stored: 0 }, skippedByPolicy: {}, removed: {}, invalid: {} };
  }
  const store = Store.open(c.indexDir, { readOnly: true });
  try {
    return statusFromStore(store, base);
  } finally {
    await store.close();
  }
}
