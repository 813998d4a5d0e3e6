// Makes a bittorrent-dht 11 node safe on a public network (measured here, see docs/protocol.md §7):
// - k-rpc-socket throws inside the UDP 'message' handler on bencode-valid but mistyped packets
//   (an integer `target`, token, key...): an uncaught exception that would kill the sidecar;
// - a reply whose r.id is not a byte string leaves the lookup waiting forever;
// - stock nodes store BEP-44 dict values of any size (only raw strings are size-checked), and
//   libtorrent then treats their replies as invalid;
// - k-bucket's closest() is called without a count, so every reply carries the whole routing
//   table (> 1500 bytes past ~55 nodes: libtorrent drops it) and put() goes to every node known.
import bencode from 'bencode';
import type DHT from 'bittorrent-dht';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Internals = {
  _onput(query: any, peer: any): void;
  _rpc: { error(peer: any, query: any, e: [number, string]): void; socket: { socket: import('node:dgram').Socket }; nodes: { closest(id: any, n?: number): any[] } };
  _tables: { set(key: any, table: any): any };
  emit(event: string, ...args: unknown[]): boolean;
};

const Y_R = Buffer.from('1:y1:r');

function hasBadReplyId(buf: Buffer): boolean {
  if (buf.indexOf(Y_R) === -1) return false;
  let m: any;
  try {
    m = bencode.decode(buf);
  } catch {
    return false; // k-rpc-socket ignores undecodable packets itself
  }
  const id = m?.r?.id;
  return id !== undefined && !(id instanceof Uint8Array);
}

export interface HardenOptions {
  replyNodes?: number;
  putNodes?: number;
  /** Pace packets to any one node (host:port) to this many per second (libtorrent bans > 5/s). */
  maxPacketsPerSecondPerNode?: number;
}

export function hardenDht(dht: DHT, opts: HardenOptions = {}): DHT {
  const d = dht as unknown as Internals;
  const onput = d._onput;
  d._onput = function (query: any, peer: any) {
    const v = query?.a?.v;
    let size = 0;
    try {
      size = v === undefined || v === null ? 0 : bencode.encode(v).length;
    } catch {
      size = Infinity;
    }
    if (size > 1000) return d._rpc.error(peer, query, [205, 'message (v field) too big']);
    return onput.call(this, query, peer);
  };
  const sock = d._rpc.socket.socket;
  const listeners = sock.listeners('message') as ((buf: Buffer, rinfo: unknown) => void)[];
  sock.removeAllListeners('message');
  for (const l of listeners) {
    sock.on('message', (buf: Buffer, rinfo: unknown) => {
      if (hasBadReplyId(buf)) {
        d.emit('warning', new Error('dropped a reply with a malformed node id'));
        return;
      }
      try {
        l(buf, rinfo);
      } catch (err) {
        d.emit('warning', err);
      }
    });
  }
  if (opts.maxPacketsPerSecondPerNode) pacePerDestination(sock, opts.maxPacketsPerSecondPerNode);
  const replyNodes = opts.replyNodes ?? 8;
  const putNodes = opts.putNodes ?? 20;
  const kb = d._rpc.nodes;
  const closest = kb.closest.bind(kb);
  kb.closest = (id: any, n: number = replyNodes) => closest(id, n);
  const tables = d._tables;
  const set = tables.set.bind(tables);
  tables.set = (key: any, table: any) => {
    const c = table.closest.bind(table);
    table.closest = (id: any, n: number = putNodes) => c(id, n);
    return set(key, table);
  };
  return dht;
}

/** Bytes of packets waiting for one destination, beyond which packets are dropped (and counted). */
const MAX_QUEUED_PER_DEST = 64;

export const pacingStats = { delayed: 0, dropped: 0 };

/**
 * Per destination, packets are spaced at least 1/rate s apart (a bucket of one token), so no one
 * node gets more than `rate` in any second; the rest wait their turn (a k-rpc query times out after
 * 2 s, so a short wait costs nothing).
 */
function pacePerDestination(sock: import('node:dgram').Socket, rate: number): void {
  type Pending = unknown[];
  const buckets = new Map<string, { tokens: number; at: number; queue: Pending[]; timer: NodeJS.Timeout | null }>();
  const rawSend = sock.send.bind(sock) as (...a: unknown[]) => void;
  let closed = false;
  // A paced packet may come due after the socket closed (the node was destroyed): drop it.
  const send = (...args: unknown[]) => {
    if (closed) return;
    try {
      rawSend(...args);
    } catch {
      pacingStats.dropped++;
    }
  };
  const refill = (b: { tokens: number; at: number }) => {
    const now = Date.now();
    b.tokens = Math.min(1, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
  };
  const drain = (key: string) => {
    const b = buckets.get(key);
    if (!b || closed) return;
    b.timer = null;
    refill(b);
    while (b.queue.length > 0 && b.tokens >= 1) {
      b.tokens -= 1;
      send(...b.queue.shift()!);
    }
    if (b.queue.length > 0) {
      b.timer = setTimeout(() => drain(key), Math.ceil(((1 - b.tokens) / rate) * 1000));
      b.timer.unref();
    } else if (b.tokens >= 1) buckets.delete(key);
  };
  (sock as unknown as { send: (...a: unknown[]) => void }).send = (...args: unknown[]) => {
    const key = `${String(args[4])}:${String(args[3])}`;
    let b = buckets.get(key);
    if (!b) buckets.set(key, (b = { tokens: 1, at: Date.now(), queue: [], timer: null }));
    refill(b);
    if (b.queue.length === 0 && b.tokens >= 1) {
      b.tokens -= 1;
      send(...args);
      return;
    }
    if (b.queue.length >= MAX_QUEUED_PER_DEST) {
      pacingStats.dropped++;
      return;
    }
    pacingStats.delayed++;
    b.queue.push(args);
    if (!b.timer) {
      b.timer = setTimeout(() => drain(key), Math.ceil(((1 - b.tokens) / rate) * 1000));
      b.timer.unref();
    }
  };
  // Forget idle destinations now and then (the map only holds destinations with a deficit).
  const sweep = setInterval(() => {
    for (const [key, b] of buckets) {
      refill(b);
      if (b.queue.length === 0 && b.tokens >= 1) buckets.delete(key);
    }
  }, 10_000);
  sweep.unref();
  sock.once('close', () => {
    closed = true;
    clearInterval(sweep);
    for (const b of buckets.values()) if (b.timer) clearTimeout(b.timer);
    buckets.clear();
  });
}
