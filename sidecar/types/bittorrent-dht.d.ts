// The parts of bittorrent-dht 11 that nostr-bt uses (it ships no types).
declare module 'bittorrent-dht' {
  import type { EventEmitter } from 'node:events';
  export interface DhtOptions {
    bootstrap?: string[] | false;
    host?: string | false;
    nodeId?: Buffer | Uint8Array | string;
    verify?: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean;
    concurrency?: number;
    maxAge?: number;
    timeBucketOutdated?: number;
    krpc?: unknown;
  }
  export interface PutOptions {
    k?: Uint8Array;
    v: unknown;
    salt?: Uint8Array;
    seq?: number;
    cas?: number;
    sig?: Uint8Array;
    sign?: (buf: Uint8Array) => Uint8Array;
  }
  export interface GetResult {
    v: unknown;
    k?: Uint8Array;
    salt?: Uint8Array;
    sig?: Uint8Array;
    seq?: number;
    id?: Uint8Array;
  }
  export default class DHT extends EventEmitter {
    constructor(opts?: DhtOptions);
    nodeId: Uint8Array;
    ready: boolean;
    destroyed: boolean;
    nodes: { count(): number; toArray(): { host: string; port: number }[] };
    listen(port?: number, address?: string, cb?: () => void): void;
    address(): { address: string; family: string; port: number };
    addNode(node: { host: string; port: number }): void;
    announce(infoHash: string | Uint8Array, port?: number, cb?: (err?: Error) => void): void;
    lookup(infoHash: string | Uint8Array, cb?: (err: Error | null, n: number) => void): () => void;
    put(opts: PutOptions, cb?: (err: Error | null, hash: Uint8Array, n: number) => void): Uint8Array;
    get(
      hash: string | Uint8Array,
      opts: { salt?: Uint8Array; cache?: boolean } | ((err: Error | null, res: GetResult | null) => void),
      cb?: (err: Error | null, res: GetResult | null) => void,
    ): void;
    toJSON(): { nodes: { host: string; port: number }[]; values: unknown };
    destroy(cb?: () => void): void;
  }
}
