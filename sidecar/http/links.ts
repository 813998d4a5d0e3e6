// The gateway's public URLs (from gateway.publicUrl, the address clients see behind a TLS proxy)
// and the magnet links that carry them.
export class GatewayLinks {
  /** `base`: publicUrl without a trailing slash, or http://<listen address> (set once listening). */
  constructor(
    public base: string,
    readonly isPublic: boolean,
  ) {}

  torrent(ih: string): string {
    return `${this.base}/torrent/${ih}.torrent`;
  }

  /** The BEP-19 url-list entry: clients append `<torrent name>/<file path>` (a single-file torrent: nothing). */
  webSeed(ih: string): string {
    return `${this.base}/webseed/${ih}/`;
  }

  /** The WebSocket tracker path on the gateway (seeding/webrtc-tracker.ts), or null when WebRTC is off. */
  trackerPath: string | null = null;

  /** The tracker's announce URL: the base with ws:// for http://, wss:// for https://. */
  tracker(): string | null {
    return this.trackerPath === null ? null : `${this.base.replace(/^http/, 'ws')}${this.trackerPath}`;
  }

  /**
   * xs= (the .torrent), ws= (the web seed) and tr= (the WebSocket tracker) only when publicUrl is
   * set: a loopback URL helps no one.
   */
  magnet(ih: string, name: string): string {
    let m = `magnet:?xt=urn:btih:${ih}&dn=${encodeURIComponent(name)}`;
    if (this.isPublic) m += `&xs=${encodeURIComponent(this.torrent(ih))}&ws=${encodeURIComponent(this.webSeed(ih))}`;
    const tr = this.tracker();
    if (this.isPublic && tr) m += `&tr=${encodeURIComponent(tr)}`;
    return m;
  }
}

/** `d4:info<info>e` (how the bundler writes a torrent) with `url-list` added after `info` (keys stay sorted). */
export function withUrlList(torrent: Buffer, url: string): Buffer {
  if (torrent.subarray(0, 7).toString('latin1') !== 'd4:info' || torrent[torrent.length - 1] !== 0x65) {
    throw new Error('not a torrent as the bundler writes them');
  }
  const u = Buffer.from(url);
  return Buffer.concat([torrent.subarray(0, torrent.length - 1), Buffer.from(`8:url-listl${u.length}:`), u, Buffer.from('ee')]);
}
