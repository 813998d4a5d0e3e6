// The parts of bittorrent-tracker 11's server that nostr-bt uses (it ships no types).
declare module 'bittorrent-tracker' {
  import type { EventEmitter } from 'node:events';
  import type { WebSocketServer, ServerOptions as WsServerOptions } from 'ws';
  export interface TrackerServerOptions {
    http?: boolean | object;
    udp?: boolean | object;
    ws?: boolean | WsServerOptions;
    stats?: boolean;
    interval?: number;
    trustProxy?: boolean;
    filter?: (infoHash: string, params: unknown, cb: (err: Error | null) => void) => void;
    peersCacheLength?: number;
    peersCacheTtl?: number;
  }
  export class Server extends EventEmitter {
    constructor(opts?: TrackerServerOptions);
    ws: WebSocketServer | null;
    torrents: Record<string, unknown>;
    close(cb?: () => void): void;
  }
}
