// The parts of webtorrent 3 that nostr-bt uses (it ships no types).
declare module 'webtorrent' {
  import type { EventEmitter } from 'node:events';
  export interface TorrentFile extends EventEmitter {
    name: string;
    path: string;
    length: number;
    downloaded: number;
    progress: number;
    done: boolean;
    select(priority?: number): void;
    deselect(): void;
  }
  export interface Wire extends EventEmitter {
    remoteAddress?: string;
    type?: string;
    destroy(): void;
  }
  export interface Torrent extends EventEmitter {
    infoHash: string;
    magnetURI: string;
    name: string;
    files: TorrentFile[];
    length: number;
    pieceLength: number;
    done: boolean;
    ready: boolean;
    progress: number;
    downloaded: number;
    uploaded: number;
    /** Bytes received from peers (downloaded counts only verified pieces). */
    received: number;
    numPeers: number;
    wires: Wire[];
    path: string;
    addPeer(peer: string): boolean;
    destroy(opts?: { destroyStore?: boolean }, cb?: (err?: Error | null) => void): void;
  }
  export interface AddOptions {
    path?: string;
    skipVerify?: boolean;
    deselect?: boolean;
    announce?: string[];
    maxWebConns?: number;
    strategy?: string;
    /** abstract-chunk-store constructor: new store(chunkLength, { ...storeOpts, length, files, ... }) */
    store?: new (
      chunkLength: number,
      opts: any,
    ) => unknown;
    storeOpts?: Record<string, unknown>;
    storeCacheSlots?: number;
  }
  export interface ClientOptions {
    dht?: boolean | object;
    tracker?: boolean | object;
    lsd?: boolean;
    utPex?: boolean;
    natUpnp?: boolean | string;
    natPmp?: boolean;
    webSeeds?: boolean;
    utp?: boolean;
    torrentPort?: number;
    dhtPort?: number;
    maxConns?: number;
    secure?: number | boolean;
    nodeId?: string | Buffer;
    peerId?: string | Buffer;
  }
  export default class WebTorrent extends EventEmitter {
    constructor(opts?: ClientOptions);
    torrents: Torrent[];
    dht: unknown;
    listening: boolean;
    torrentPort: number;
    uploadSpeed: number;
    downloadSpeed: number;
    add(torrentId: string | Buffer | Uint8Array | object, opts?: AddOptions, onTorrent?: (t: Torrent) => void): Torrent;
    remove(torrentId: string | Torrent, opts?: { destroyStore?: boolean }, cb?: (err?: Error | null) => void): void;
    get(torrentId: string | Buffer): Promise<Torrent | null>;
    address(): { address: string; family: string; port: number } | null;
    destroy(cb?: (err?: Error | null) => void): void;
  }
}

declare module 'webtorrent/lib/peer.js' {
  const Peer: { prototype: { onConnect(this: { conn?: { setNoDelay?: (v: boolean) => void } }): void } };
  export default Peer;
}
