// The WebSocket tracker browsers use to reach the bridge's bundles over WebRTC (browsers have no
// UDP and no TCP peers: a WebSocket tracker that relays WebRTC offers is how a tab finds a seed and
// other tabs). bittorrent-tracker's server does the signalling; this module bounds it for a public
// endpoint:
// - it tracks only the bundles this bridge seeds (an announce for any other infohash is refused),
//   so it is not an open tracker whose memory strangers fill;
// - WebSocket connections are capped in total and per address, and frames are small (an announce
//   with offers is a few KB);
// - it shares the gateway's HTTP server: `handleUpgrade` takes the upgrade of its one path.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { TrackerServer } from '../common/webtorrent.js';
import type { Logger } from 'pino';

export interface WebRtcTrackerOptions {
  /** Path of the announce URL on the gateway (ws://host/<path>). */
  path: string;
  /** Whether this bridge seeds the infohash (hex); only those are tracked. */
  isSeeded: (infoHash: string) => boolean;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Seconds between a client's announces (the tracker tells clients). */
  announceIntervalSeconds: number;
  /** Largest WebSocket message accepted, in bytes. */
  maxMessageBytes: number;
}

export const WEBRTC_TRACKER_DEFAULTS: Omit<WebRtcTrackerOptions, 'isSeeded'> = {
  path: '/announce',
  maxConnections: 2000,
  maxConnectionsPerAddress: 16,
  announceIntervalSeconds: 120,
  maxMessageBytes: 64 * 1024,
};

export interface WebRtcTrackerStats {
  connections: number;
  refusedConnections: number;
  refusedAnnounces: number;
  torrents: number;
}

export class WebRtcTracker {
  private readonly server: InstanceType<typeof TrackerServer>;
  private readonly perAddress = new Map<string, number>();
  private connections = 0;
  private refusedConnections = 0;
  private refusedAnnounces = 0;
  private closed = false;

  constructor(
    private readonly opts: WebRtcTrackerOptions,
    private readonly log: Logger,
  ) {
    this.server = new TrackerServer({
      http: false,
      udp: false,
      stats: false,
      ws: { noServer: true, maxPayload: opts.maxMessageBytes, perMessageDeflate: false },
      interval: opts.announceIntervalSeconds * 1000,
      filter: (infoHash: string, _params: unknown, cb: (err: Error | null) => void) => {
        if (opts.isSeeded(infoHash)) return cb(null);
        this.refusedAnnounces++;
        cb(new Error('not a bundle of this bridge'));
      },
    });
    // The server reports client errors (bad messages, refused announces) as 'warning'; they are
    // the clients' problem, not the bridge's.
    this.server.on('warning', () => {});
    this.server.on('error', (err: Error) => this.log.warn({ err }, 'WebRTC tracker error'));
  }

  /** The announce path this tracker answers (for magnets' `tr=`). */
  get path(): string {
    return this.opts.path;
  }

  /**
   * Takes an HTTP upgrade if it is for the tracker's path: returns false (and leaves the socket
   * alone) otherwise. A connection over the limits is answered 503 and closed.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path !== this.opts.path) return false;
    const address = req.socket.remoteAddress ?? '?';
    const mine = this.perAddress.get(address) ?? 0;
    if (this.closed) {
      // Clients reconnect while the listener closes: a lingering socket would hold its close.
      socket.destroy();
      return true;
    }
    if (this.connections >= this.opts.maxConnections || mine >= this.opts.maxConnectionsPerAddress) {
      this.refusedConnections++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      // A client that never closes its side does not keep the socket.
      setTimeout(() => socket.destroy(), 5000).unref();
      return true;
    }
    this.connections++;
    this.perAddress.set(address, mine + 1);
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      this.connections--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n > 0) this.perAddress.set(address, n);
      else this.perAddress.delete(address);
    };
    socket.once('close', release);
    const wss = this.server.ws!;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.once('close', release);
      wss.emit('connection', ws, req);
    });
    return true;
  }

  stats(): WebRtcTrackerStats {
    return {
      connections: this.connections,
      refusedConnections: this.refusedConnections,
      refusedAnnounces: this.refusedAnnounces,
      torrents: Object.keys(this.server.torrents).length,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ws of this.server.ws?.clients ?? []) ws.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
