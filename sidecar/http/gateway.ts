// The read-only HTTP gateway (gateway.listen): the well-known document, signed pointers, .torrent
// files and BEP-19 web seeds, open to any origin (browsers read it with fetch). Wire format:
// docs/protocol.md §9. It holds no state a restart would lose: every answer comes from the index,
// the bundle files or the DHT.
import type DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { zbase32 } from '../formats/zbase32.js';
import type { Store } from '../index/store.js';
import { blossomRoutes, type BlobSource } from './blossom-routes.js';
import type { GatewayStatus } from '../ops/status.js';
import { BundleLookup } from './bundle-lookup.js';
import { bundleRoutes } from './bundle-routes.js';
import { DataFiles } from './data-files.js';
import { GatewayStats } from './gateway-stats.js';
import { GatewayLinks } from './links.js';
import { pageRoutes } from './page-routes.js';
import { pointerRoutes } from './pointer-routes.js';
import { RouteTable, type Route } from './routes.js';
import { HttpServer } from './server.js';
import { WebRtcTracker, WEBRTC_TRACKER_DEFAULTS } from '../seeding/webrtc-tracker.js';
import type { CatalogFiles } from '../bundles/catalog.js';

export interface GatewayDeps {
  config: Config;
  store: Store;
  bridgeKey: Buffer;
  dht: () => DHT | null;
  log: Logger;
  /** The media archive, when media archiving is on (Blossom reads). */
  media?: () => BlobSource | null;
  /** Whether the seeder seeds an infohash (hex): the WebSocket tracker tracks only those. */
  isSeeded?: (infoHash: string) => boolean;
  /** The current catalog's files (its `.torrent` and web seed are served too). */
  catalog?: () => CatalogFiles | null;
}

/** The well-known document is rebuilt at most this often (its counts walk the index). */
const WELL_KNOWN_MS = 5_000;

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'content-length, content-range, accept-ranges, etag',
};

export class Gateway {
  private constructor(
    private readonly server: HttpServer,
    readonly links: GatewayLinks,
    /** The WebSocket tracker on `/announce` (gateway.webrtc), or null. */
    readonly tracker: WebRtcTracker | null,
    private readonly stats: GatewayStats,
    private readonly files: DataFiles,
  ) {}

  status(): GatewayStatus {
    return this.stats.status(this.server.address, this.server.openConnections);
  }

  get address(): string {
    return this.server.address;
  }

  /** The tracker's URL on the listening address, for the bridge's own seeder (no proxy in between). */
  get localTrackerUrl(): string | null {
    if (!this.tracker) return null;
    return `ws://${hostForUrl(this.server.address.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^::(?=:\d+$)/, '::1'))}${this.tracker.path}`;
  }

  static async start(d: GatewayDeps): Promise<Gateway> {
    const g = d.config.gateway;
    const bundles = new BundleLookup(d.store, d.config.bundle.dir, d.catalog);
    // Without publicUrl the base is the listening address, known only once listening (port 0).
    const links = new GatewayLinks(g.publicUrl, g.publicUrl !== '');
    const isSeeded = d.isSeeded;
    // Behind a trusted proxy every WebSocket comes from the proxy's address: the per-address cap
    // cannot tell clients apart there, so only the total applies.
    const perAddress = g.trustedProxies.length > 0 ? g.maxConnections : WEBRTC_TRACKER_DEFAULTS.maxConnectionsPerAddress;
    const tracker =
      g.webrtc && isSeeded
        ? new WebRtcTracker(
            { ...WEBRTC_TRACKER_DEFAULTS, maxConnections: g.maxConnections, maxConnectionsPerAddress: perAddress, isSeeded },
            d.log,
          )
        : null;
    if (tracker) links.trackerPath = tracker.path;
    const stats = new GatewayStats();
    const files = new DataFiles();
    const routes: Route[] = [
      wellKnownRoute(d, bundles, links),
      ...pointerRoutes({
        bridgeKey: d.bridgeKey,
        bundles,
        dht: d.dht,
        localMaxAgeSec: Math.min(60, d.config.bundle.windowSeconds),
        lookupsPerSecond: g.dhtLookupsPerSecond,
        lookupTimeoutMs: g.dhtLookupTimeoutMs,
        cacheSeconds: g.remoteCacheSeconds,
        cacheEntries: g.remoteCacheEntries,
        stats,
      }),
      ...bundleRoutes(bundles, links, { files, stats }),
      ...blossomRoutes(d.media ?? (() => null), links),
      ...pageRoutes(),
    ];
    const table = new RouteTable(routes, d.log, {
      headers: CORS,
      preflight: ({ res }) => {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, HEAD, OPTIONS',
          // Blossom clients may send Authorization (BUD-01); reads here ignore it.
          'access-control-allow-headers': 'range, if-none-match, if-range, authorization',
          'access-control-max-age': '86400',
        });
        res.end();
      },
    });
    const server = await HttpServer.start({
      listen: g.listen,
      log: d.log,
      table,
      limits: {
        maxConnections: g.maxConnections,
        maxConnectionsPerIp: g.maxConnectionsPerIp,
        headersTimeoutMs: g.headersTimeoutMs,
        requestTimeoutMs: g.requestTimeoutMs,
        idleTimeoutMs: g.idleTimeoutMs,
        requestsPerSecondPerIp: g.requestsPerSecondPerIp,
        burstPerIp: g.burstPerIp,
        trustedProxies: g.trustedProxies,
        stallTimeoutMs: g.stallTimeoutMs,
      },
      onRefused: (why) => stats.refused(why),
      onRequest: (req, res) => stats.observe(table.routeName(req), res),
      onUpgrade: tracker ? (req, socket, head) => tracker.handleUpgrade(req, socket, head) : undefined,
    });
    if (g.publicUrl === '') links.base = `http://${hostForUrl(server.address)}`;
    return new Gateway(server, links, tracker, stats, files);
  }

  /** The tracker first: the listener's close waits for the upgraded connections to end. */
  async close(): Promise<void> {
    await this.tracker?.close();
    await this.server.close();
    this.files.close();
  }
}

function hostForUrl(address: string): string {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  return host.includes(':') ? `[${host}]:${address.slice(i + 1)}` : address;
}

function wellKnownRoute(d: GatewayDeps, bundles: BundleLookup, l: GatewayLinks): Route {
  let cached: { body: string; at: number } | null = null;
  const build = (): string => {
    const newest = bundles.newest();
    const counts = bundles.counts();
    return (
      JSON.stringify({
        v: 1,
        bridge: { hex: d.bridgeKey.toString('hex'), z32: zbase32(d.bridgeKey) },
        relay: d.config.policy.relayUrl || null,
        counts: { authors: bundles.pointerAuthors(), events: counts.events, bundles: counts.bundles },
        endpoints: {
          pointer: `${l.base}/pointer/{author}`,
          remotePointer: `${l.base}/pointer/{bridge}/{author}`,
          torrent: `${l.base}/torrent/{infohash}.torrent`,
          webSeed: `${l.base}/webseed/{infohash}/`,
          tracker: l.tracker(),
        },
        newest: newest ? { infohash: newest.ih, name: newest.name, magnet: l.magnet(newest.ih, newest.name) } : null,
      }) + '\n'
    );
  };
  return {
    name: 'well-known',
    methods: ['GET', 'HEAD'],
    pattern: /^\/\.well-known\/nostr-bt$/,
    handler: ({ req, res }) => {
      const now = Date.now();
      if (!cached || now - cached.at > WELL_KNOWN_MS) cached = { body: build(), at: now };
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(cached.body),
        'cache-control': 'public, max-age=10',
      });
      res.end(req.method === 'HEAD' ? undefined : cached.body);
    },
  };
}
