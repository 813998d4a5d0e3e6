// Prometheus metrics (prom-client) served at /metrics on the status listener. Almost every figure
// is read at scrape time from one status snapshot (the same document `nostr-bt status` prints), so
// the two never disagree and nothing is counted twice; only the histograms (ingest latency, nodes
// storing each DHT put) and the bundle build/retire counts are observed as they happen.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Observed, Status } from './status.js';
import { CountedHistogram } from './counted-histogram.js';

const P = 'nostr_bt_';

class Tally {
  count = 0;
  private sum = 0;
  private max: number | null = null;

  add(v: number, times = 1): void {
    this.count += times;
    this.sum += v * times;
    if (this.max === null || v > this.max) this.max = v;
  }

  summary(digits: number): Observed {
    const round = (v: number) => Math.round(v * 10 ** digits) / 10 ** digits;
    return { count: this.count, mean: this.count ? round(this.sum / this.count) : null, max: this.max === null ? null : round(this.max) };
  }
}

/** How often the event-loop delay is sampled (prom-client's default is 10 ms). */
export const EVENT_LOOP_SAMPLE_MS = 100;

export class SidecarMetrics {
  readonly registry = new Registry();
  bundlesBuilt = 0;
  bundlesRetired = 0;
  private readonly latency = new Tally();
  private readonly nodes = new Tally();
  private readonly latencyHist: CountedHistogram;
  private readonly putNodesHist: Histogram<'result'>;
  private current: Status | null = null;

  constructor(private readonly snapshot: () => Status) {
    const r = this.registry;
    // The event-loop delay monitor samples on a timer: prom-client's 10 ms woke an idle sidecar
    // 100 times a second (most of its idle CPU; on a relay host, CPU taken from strfry). 100 ms
    // still shows a stalled loop in nodejs_eventloop_lag_*.
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    dropMisnamedDefaults(r);
    const snap = () => (this.current ??= this.snapshot());

    this.latencyHist = new CountedHistogram(
      `${P}ingest_latency_seconds`,
      'Time from a line reaching the ingest queue (socket or spool) to its LMDB commit',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      r,
    );
    this.putNodesHist = new Histogram({
      name: `${P}pointer_put_nodes`,
      help: 'DHT nodes that stored each BEP-44 put (result="ok"), or answered a failed one',
      labelNames: ['result'],
      buckets: [0, 1, 2, 4, 8, 12, 16, 20],
      registers: [r],
    });

    counter(r, 'events_received_total', 'Lines received from the plugin, the spool or backfill', () => snap().events.received);
    counter(r, 'events_indexed_total', 'Events newly indexed', () => snap().events.indexed);
    counter(r, 'events_duplicate_total', 'Events already indexed (deduplicated)', () => snap().events.duplicates);
    labeledCounter(r, 'events_skipped_total', 'Events skipped by the content policy', () => snap().skippedByPolicy);
    labeledCounter(r, 'events_invalid_total', 'Lines rejected as invalid (quarantined)', () => snap().invalid);
    labeledCounter(r, 'events_removed_total', 'Indexed events removed later (deletion, vanish, expiry, replaced)', () => snap().removed);
    gauge(r, 'events_stored', 'Events in the index now', () => snap().events.stored);

    gauge(r, 'spool_files', 'Spool files waiting to be drained', () => snap().spool.files);
    gauge(r, 'spool_bytes', 'Bytes in spool files waiting to be drained', () => snap().spool.bytes);
    counter(r, 'spool_drained_lines_total', 'Lines drained from the spool since start', () => snap().spool.drainedLines ?? 0);
    gauge(r, 'ingest_backlog', 'Lines queued for the next LMDB commit', () => snap().ingest?.backlog ?? 0);
    counter(r, 'ingest_connections_total', 'Connections accepted on the ingest socket since start', () => snap().ingest?.connections ?? 0);
    gauge(
      r,
      'ingest_unacknowledged_lines',
      'Lines received from the plugin, the spool or backfill and not yet committed and acknowledged',
      () => snap().ingest?.unacknowledged ?? 0,
    );
    gauge(
      r,
      'ingest_lag_seconds',
      'Age of the oldest line received and not yet committed (0: caught up). Alert when above 30 for 5 minutes: the sidecar is starved of CPU or its commits fail; the plugin keeps the lines meanwhile, then spools them',
      () => snap().ingest?.lagSeconds ?? 0,
    );
    gauge(
      r,
      'ingest_accept_lag_seconds',
      "Seconds from strfry's accept (the plugin line's receivedAt, whole seconds) to the commit of the oldest line of the last committed batch: how far the index is behind the relay, time in the plugin and the socket included. Alert when above 30 for 5 minutes",
      () => snap().ingest?.acceptLagSeconds ?? 0,
    );
    gauge(r, 'ingest_stalled', '1 while index commits fail (disk or map full), else 0', () => (snap().ingest?.error ? 1 : 0));

    new Gauge({
      name: `${P}bundles_active`,
      help: 'Bundles seeded now, by level (window, hour, day, month, year)',
      labelNames: ['level'],
      registers: [r],
      collect() {
        this.reset();
        for (const [level, n] of Object.entries(snap().bundles?.byLevel ?? {})) this.set({ level }, n);
      },
    });
    gauge(r, 'bundles_bytes', 'Bytes in the bundles seeded now', () => snap().bundles?.bytes ?? 0);
    gauge(r, 'bundles_events', 'Events in the bundles seeded now', () => snap().bundles?.events ?? 0);
    gauge(
      r,
      'bundles_pending_rewrites',
      'Bundles waiting to be rewritten without removed events',
      () => snap().bundles?.pendingRewrites ?? 0,
    );
    counter(r, 'bundles_built_total', 'Bundles built since start (windows, merges, rewrites)', () => this.bundlesBuilt);
    counter(
      r,
      'bundles_retired_total',
      'Bundles unseeded and deleted since start (replaced by a merge or rewrite)',
      () => this.bundlesRetired,
    );

    gauge(r, 'torrents_active', 'Torrents seeded now', () => snap().seeding?.torrents ?? 0);
    gauge(r, 'peers', 'Peers connected to the seeded torrents', () => snap().seeding?.peers ?? 0);
    counter(r, 'uploaded_bytes_total', 'Bytes uploaded to peers since start', () => snap().seeding?.uploaded ?? 0);
    gauge(
      r,
      'downloaded_bytes',
      'Bytes downloaded by the torrents seeded now (a seeder downloads nothing)',
      () => snap().seeding?.downloaded ?? 0,
    );
    gauge(r, 'dht_nodes', 'Nodes in the DHT routing table', () => snap().dht?.nodes ?? 0);

    gauge(r, 'pointer_items', 'BEP-44 items kept (author pages and the bridge item)', () => snap().pointers?.items ?? 0);
    gauge(r, 'pointer_dirty_authors', 'Authors whose pointer waits to be re-signed', () => snap().pointers?.dirtyAuthors ?? 0);
    counter(r, 'pointers_published_total', 'New or changed items stored in the DHT since start', () => snap().pointers?.published ?? 0);
    counter(r, 'pointers_republished_total', 'Unchanged items re-put since start', () => snap().pointers?.republished ?? 0);
    counter(r, 'pointers_failed_total', 'Puts that no node stored, since start', () => snap().pointers?.failed ?? 0);
    gauge(r, 'pointers_stale', 'Items not stored for over 2 h (they may have expired from the DHT)', () => snap().pointers?.stale ?? 0);
    gauge(r, 'pointer_oldest_put_age_seconds', 'Age of the least recently stored item', () => snap().pointers?.oldestPutAgeSec ?? 0);
    const media = () => snap().media;
    gauge(r, 'media_queued', 'Media fetches waiting in the queue', () => media()?.queue.queued ?? 0);
    gauge(
      r,
      'media_queued_bytes',
      "Bytes of the waiting media fetches (URLs and names: the queue's memory)",
      () => media()?.queue.queuedBytes ?? 0,
    );
    gauge(r, 'media_in_flight', 'Media fetches running now', () => media()?.queue.inFlight ?? 0);
    counter(
      r,
      'media_fetched_total',
      'Media blobs fetched and verified since start (or already stored)',
      () => media()?.queue.fetched ?? 0,
    );
    counter(
      r,
      'media_fetched_bytes_total',
      'Bytes of media blobs fetched and verified since start',
      () => media()?.queue.fetchedBytes ?? 0,
    );
    labeledCounter(
      r,
      'media_refused_total',
      'Media fetches that failed or were refused since start, by reason (hash-mismatch, too-large, blocked-address, author-quota, ...)',
      () => media()?.queue.failures ?? {},
    );
    labeledCounter(
      r,
      'media_dropped_total',
      'Media fetches not queued since start: queue full, or the author over their share',
      (): Record<string, number> => {
        const q = media()?.queue;
        return q ? { full: q.droppedFull, author: q.droppedAuthor } : {};
      },
    );
    gauge(r, 'media_blobs', 'Media blobs on disk', () => media()?.blobs ?? 0);
    gauge(r, 'media_bytes', 'Bytes of the media blobs on disk', () => media()?.bytes ?? 0);
    gauge(r, 'media_seeded', 'Media blobs seeded now', () => media()?.seeded ?? 0);
    gauge(r, 'media_references', 'Archived event to media blob references kept', () => media()?.references ?? 0);
    counter(
      r,
      'media_removed_total',
      'Media blobs unseeded and deleted since start (no archived event references them)',
      () => media()?.removed ?? 0,
    );
    counter(
      r,
      'discovery_announces_total',
      'Announces of the discovery beacon a DHT node took, since start',
      () => snap().discovery?.announced ?? 0,
    );
    counter(
      r,
      'discovery_beacon_answered_total',
      'Readers the discovery beacon answered with the bridge key, since start',
      () => snap().discovery?.answered ?? 0,
    );
    labeledCounter(
      r,
      'discovery_beacon_refused_total',
      'Beacon connections closed unanswered since start, by reason (timeout, malformed, wrong-infohash, busy, ...)',
      () => snap().discovery?.refused ?? {},
    );
    const mirrored = () => snap().mirror?.bridges ?? [];
    bridgeMetric(r, Gauge, 'mirror_bundles_listed', "Bundles the followed bridge's catalog lists", () =>
      mirrored().map((b) => [b.bridge, b.bundles.listed]),
    );
    bridgeMetric(r, Gauge, 'mirror_bundles_held', 'Bundles of the followed bridge downloaded, verified and seeded here', () =>
      mirrored().map((b) => [b.bridge, b.bundles.held]),
    );
    bridgeMetric(r, Gauge, 'mirror_bytes', "Bytes of the followed bridge's bundles held here (its disk quota counts these)", () =>
      mirrored().map((b) => [b.bridge, b.bundles.bytes]),
    );
    bridgeMetric(r, Gauge, 'mirror_lag_seconds', 'Seconds since the followed bridge listed a bundle not held here yet (0: caught up)', () =>
      mirrored().map((b) => [b.bridge, b.lagSec]),
    );
    bridgeMetric(r, Gauge, 'mirror_items', 'Signed BEP-44 items of the followed bridge kept for re-putting', () =>
      mirrored().map((b) => [b.bridge, b.items.held]),
    );
    bridgeMetric(
      r,
      Counter,
      'mirror_items_reput_total',
      'Items of the followed bridge re-put unchanged and stored by some node, since start',
      () => mirrored().map((b) => [b.bridge, b.items.reput]),
    );
    bridgeMetric(
      r,
      Counter,
      'mirror_bundles_refused_total',
      'Bundles of the followed bridge not held, since start, by reason (over-quota, too-large, forged, refused, timeout, no-peers, ...)',
      () =>
        mirrored().flatMap((b) =>
          Object.entries(b.bundles.refused).map(([reason, n]) => [b.bridge, n, reason] as [string, number, string]),
        ),
    );
    const gw = () => snap().gateway;
    new Counter({
      name: `${P}gateway_requests_total`,
      help: 'HTTP gateway responses since start, by route (webseed, torrent, pointer, remote-pointer, well-known, preflight, unmatched, ...) and status class (2xx, 3xx, 4xx, 5xx)',
      labelNames: ['route', 'status'],
      registers: [r],
      collect() {
        this.reset();
        for (const [route, byClass] of Object.entries(gw()?.requests ?? {})) {
          for (const [status, n] of Object.entries(byClass)) this.inc({ route, status }, n);
        }
      },
    });
    counter(
      r,
      'gateway_webseed_bytes_total',
      "Bytes the web seed handed to clients' connections since start",
      () => gw()?.webSeedBytes ?? 0,
    );
    counter(
      r,
      'gateway_rate_limited_total',
      'Gateway requests answered 429 (a client over gateway.requestsPerSecondPerIp) since start',
      () => gw()?.rateLimited ?? 0,
    );
    counter(
      r,
      'gateway_refused_connections_total',
      'Gateway connections closed at once (over gateway.maxConnectionsPerIp or maxConnections) since start',
      () => gw()?.refusedConnections ?? 0,
    );
    gauge(r, 'gateway_open_connections', 'Connections open to the gateway now', () => gw()?.openConnections ?? 0);
    labeledCounter(
      r,
      'gateway_dht_lookups_total',
      'Lookups of other bridges\' pointers since start: result="hit" (a valid item), "miss" (none, or none in time), "fail" (only invalid items), "cached" (answered from memory), "busy" (refused with 503)',
      () => gw()?.dhtLookups ?? {},
      'result',
    );
    gauge(
      r,
      'pointer_republish_lag_seconds',
      'How far the least recently stored item is past its republish interval (0: on time)',
      () => snap().pointers?.republishLagSec ?? 0,
    );
  }

  /** Ingest latencies of committed lines: `lines` lines waited `ms` each. */
  observeIngest(latencies: readonly { ms: number; lines: number }[]): void {
    for (const { ms, lines } of latencies) {
      this.latency.add(ms, lines);
      this.latencyHist.observe(ms / 1000, lines);
    }
  }

  observePut(ok: boolean, nodes: number): void {
    if (ok) this.nodes.add(nodes);
    this.putNodesHist.observe({ result: ok ? 'ok' : 'failed' }, nodes);
  }

  /** Ingest latency in ms since start (for /status). */
  ingestLatency(): Observed {
    return this.latency.summary(2);
  }

  /** Nodes that stored each successful put since start (for /status). */
  putNodes(): Observed {
    return this.nodes.summary(1);
  }

  /** The Prometheus text exposition, from one fresh status snapshot. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.current = null;
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.current = null;
    }
  }
}

/**
 * prom-client's defaults include gauges named `_total` (nodejs_active_handles_total,
 * nodejs_active_requests_total, nodejs_active_resources_total), which `promtool check metrics`
 * rejects (the suffix means a counter). Each is the sum of a labelled gauge that stays
 * (`sum(nodejs_active_handles)`), so they are dropped; any other such default would be too.
 */
function dropMisnamedDefaults(r: Registry): void {
  for (const m of r.getMetricsAsArray()) {
    if (m.name.endsWith('_total') && !(m instanceof Counter)) r.removeSingleMetric(m.name);
  }
}

function gauge(r: Registry, name: string, help: string, value: () => number): void {
  new Gauge({
    name: P + name,
    help,
    registers: [r],
    collect() {
      this.set(value());
    },
  });
}

/** A counter whose running total already lives elsewhere (LMDB counts, component stats). */
function counter(r: Registry, name: string, help: string, value: () => number): void {
  new Counter({
    name: P + name,
    help,
    registers: [r],
    collect() {
      this.reset();
      this.inc(value());
    },
  });
}

/** A counter with one label (`reason` unless named), its values read at scrape time. */
function labeledCounter(r: Registry, name: string, help: string, values: () => Record<string, number>, label = 'reason'): void {
  new Counter({
    name: P + name,
    help,
    labelNames: [label],
    registers: [r],
    collect() {
      this.reset();
      for (const [value, n] of Object.entries(values())) this.inc({ [label]: value }, n);
    },
  });
}

/** A metric per followed bridge (label `bridge`; `reason` too when the value says one). */
function bridgeMetric(
  r: Registry,
  Kind: typeof Gauge | typeof Counter,
  name: string,
  help: string,
  values: () => ([string, number] | [string, number, string])[],
): void {
  const labelNames = name.endsWith('_refused_total') ? ['bridge', 'reason'] : ['bridge'];
  const labels = (bridge: string, reason?: string) => (reason === undefined ? { bridge } : { bridge, reason });
  if (Kind === Counter) {
    new Counter({
      name: P + name,
      help,
      labelNames,
      registers: [r],
      collect() {
        this.reset();
        for (const [bridge, n, reason] of values()) this.inc(labels(bridge, reason), n);
      },
    });
    return;
  }
  new Gauge({
    name: P + name,
    help,
    labelNames,
    registers: [r],
    collect() {
      this.reset();
      for (const [bridge, n, reason] of values()) this.set(labels(bridge, reason), n);
    },
  });
}
