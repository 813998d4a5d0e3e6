// Seeds bundles with WebTorrent over TCP and uTP, announcing through the sidecar's own DHT node.
// No LSD, no UPnP/NAT-PMP; TCP_NODELAY on every TCP peer socket. With WebRTC on, also to browsers
// through the bridge's own WebSocket tracker (webrtc-tracker.ts), and no other tracker.
import WebTorrent, { type Torrent, type Wire } from '../common/webtorrent.js';
import type DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import type { Seeder } from '../bundles/bundler.js';
import { BundleDataStore } from './data-store.js';
import { limitPeers } from './peer-limits.js';
import { torrentLayout } from '../formats/torrent-layout.js';
import { installNoDelay } from '../common/tcp-no-delay.js';
import { useFairThrottles } from '../common/fair-throttle.js';

/**
 * What client.add() gets for a bundle: a parsed torrent (the form parse-torrent returns) whose
 * file list is the single data file the store serves. Seeding never needs per-file objects, and
 * WebTorrent builds ~1.3 KB of them per file and spends ~15 µs per file parsing (a 50,000-author
 * bundle: ~65 MB and ~0.75 s of blocked event loop). Its `info` is a small stand-in: WebTorrent
 * bencodes `info` twice when it adds a torrent, which for a real 50,000-file dict allocated more
 * garbage than everything else the ingest thread does; `seed` gives it the real torrent file
 * instead (pinTorrentFile), which is what peers get over ut_metadata.
 */
export function seedingTorrent(infoHash: string, torrentFile: Uint8Array): object {
  const t = torrentLayout(torrentFile, infoHash);
  const pieces: string[] = [];
  for (let i = 0; i < t.pieces.length; i += 20) pieces.push(Buffer.from(t.pieces.buffer, t.pieces.byteOffset + i, 20).toString('hex'));
  return {
    info: { name: t.name, 'piece length': t.pieceLength, length: t.length },
    infoHash,
    infoHashBuffer: Buffer.from(infoHash, 'hex'),
    name: t.name,
    announce: [],
    urlList: [],
    files: [{ path: t.name, name: t.name, length: t.length, offset: 0 }],
    length: t.length,
    pieceLength: t.pieceLength,
    lastPieceLength: t.length % t.pieceLength || t.pieceLength,
    pieces,
  };
}

/**
 * Makes a torrent's `torrentFile` (and so its `metadata`, served over ut_metadata) the real
 * .torrent bytes, whatever WebTorrent encodes from the stand-in `info` it was given.
 */
function pinTorrentFile(t: Torrent, torrentFile: Uint8Array): void {
  Object.defineProperty(t, 'torrentFile', { get: () => torrentFile, set: () => {}, configurable: true, enumerable: true });
}

export interface SeederOptions {
  port: number;
  utp: boolean;
  maxConns: number;
  /**
   * Also seed to browsers over WebRTC, signalled through these WebSocket tracker URLs (the
   * gateway's own tracker, webrtc-tracker.ts), with at most `maxPeers` WebRTC peers in all.
   */
  webrtc?: { announce: string[]; maxPeers: number; maxPeersPerTorrent?: number };
}

export interface SeedStats {
  torrents: number;
  peers: number;
  /** Of which WebRTC peers (browsers), when WebRTC seeding is on. */
  webrtcPeers: number;
  /** WebRTC peers refused over the limit. */
  webrtcRefused: number;
  uploaded: number;
  downloaded: number;
}

export class WebTorrentSeeder implements Seeder {
  readonly client: WebTorrent;
  /** Bytes uploaded by torrents already removed (so totals only grow). */
  private uploadedGone = 0;
  private webrtcPeers = 0;
  private webrtcRefused = 0;

  private constructor(
    client: WebTorrent,
    private readonly log: Logger,
    private readonly webrtc: SeederOptions['webrtc'],
  ) {
    this.client = client;
  }

  static async start(opts: SeederOptions, dht: DHT | null, log: Logger): Promise<WebTorrentSeeder> {
    installNoDelay();
    const client = new WebTorrent({
      dht: false,
      // Trackers only for WebRTC, and only ours. A seed needs to make no offers of its own: it
      // answers the offers browsers send through the tracker (each offer is a peer connection
      // held for 50 s, per torrent and announce: with thousands of bundles, offers would cost
      // more than all the rest).
      // No STUN server: a bridge answers from its own (public) address, and asks no third party.
      tracker: opts.webrtc ? { getAnnounceOpts: () => ({ numwant: 0 }), rtcConfig: { iceServers: [] } } : false,
      lsd: false,
      utPex: false,
      natUpnp: false,
      natPmp: false,
      webSeeds: false,
      utp: opts.utp,
      torrentPort: opts.port,
      maxConns: opts.maxConns,
    });
    limitPeers(client, { maxIncoming: opts.maxConns });
    useFairThrottles(client);
    // WebTorrent treats a `dht` option as constructor options; give it our node afterwards.
    if (dht) client.dht = dht;
    client.on('error', (err: Error) => log.error({ err }, 'torrent client error'));
    await new Promise<void>((resolve) => (client.listening ? resolve() : client.once('listening', () => resolve())));
    return new WebTorrentSeeder(client, log, opts.webrtc);
  }

  get port(): number {
    return this.client.address()?.port ?? 0;
  }

  /**
   * Seeds a bundle from its data file. `verify` re-hashes it first (after an unclean shutdown);
   * a bundle whose data does not hash to its pieces is rejected so the bundler rebuilds it.
   */
  async seed(b: { infoHash: string; torrent: Buffer; dataPath: string; verify?: boolean }): Promise<void> {
    if (await this.client.get(b.infoHash)) return;
    const t = await new Promise<Torrent>((resolve, reject) => {
      const t = this.client.add(seedingTorrent(b.infoHash, b.torrent), {
        store: BundleDataStore,
        storeOpts: { dataPath: b.dataPath },
        // Reads are served from the page cache; a per-torrent piece cache would hold up to
        // 20 × 4 MiB per torrent for nothing.
        storeCacheSlots: 0,
        skipVerify: !b.verify,
        announce: this.webrtc?.announce ?? [],
      });
      pinTorrentFile(t, b.torrent);
      if (this.webrtc) t.on('wire', (wire: Wire) => this.countWebRtc(wire, t));
      const onError = (err: Error) => reject(err);
      t.once('error', onError);
      t.once('ready', () => {
        t.removeListener('error', onError);
        t.on('error', (err: Error) => this.log.error({ err, infoHash: b.infoHash }, 'torrent error'));
        resolve(t);
      });
    });
    if (!t.done) {
      await this.unseed(b.infoHash);
      throw new Error(`bundle ${b.infoHash}: data on disk does not match the torrent (${Math.round(t.progress * 100)}% verified)`);
    }
  }

  /** Keeps WebRTC peers within their limit: a peer connection costs far more than a TCP one. */
  private countWebRtc(wire: Wire, t: Torrent): void {
    if (wire.type !== 'webrtc') return;
    // Per bundle too: the bridge seeds a few browsers, which pass the pieces on to the others
    // (a tab without the bridge gets its first pieces from those within a second or so).
    const perTorrent = this.webrtc?.maxPeersPerTorrent ?? Infinity;
    const onThis = t.wires.filter((w) => w.type === 'webrtc' && w !== wire).length;
    if (this.webrtcPeers >= (this.webrtc?.maxPeers ?? 0) || onThis >= perTorrent) {
      this.webrtcRefused++;
      wire.destroy();
      return;
    }
    this.webrtcPeers++;
    wire.once('close', () => this.webrtcPeers--);
  }

  async unseed(infoHash: string): Promise<void> {
    const t = await this.client.get(infoHash);
    if (!t) return;
    this.uploadedGone += t.uploaded;
    await new Promise<void>((resolve) => this.client.remove(t, { destroyStore: false }, () => resolve()));
  }

  async torrent(infoHash: string): Promise<Torrent | null> {
    return this.client.get(infoHash);
  }

  stats(): SeedStats {
    let peers = 0;
    let uploaded = this.uploadedGone;
    let downloaded = 0;
    for (const t of this.client.torrents) {
      peers += t.numPeers;
      uploaded += t.uploaded;
      downloaded += t.downloaded;
    }
    return {
      torrents: this.client.torrents.length,
      peers,
      webrtcPeers: this.webrtcPeers,
      webrtcRefused: this.webrtcRefused,
      uploaded,
      downloaded,
    };
  }

  async stop(): Promise<void> {
    this.client.dht = null; // the DHT node is shared and stopped by its owner
    await new Promise<void>((resolve) => this.client.destroy(() => resolve()));
  }
}
