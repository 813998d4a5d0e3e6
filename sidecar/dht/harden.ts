// Makes a bittorrent-dht 11 node safe on a public network (measured here, see docs/protocol.md §7):
// - how it answers queries (BEP-5 / BEP-44 errors, its own items): dht/queries.ts;
// - at most `maxNodesPerIp` routing-table entries per IP: dht/routing-limit.ts;
// - k-rpc-socket throws inside the UDP 'message' handler on bencode-valid but mistyped packets
//   (an integer `target`, token, key...): an uncaught exception that would kill the sidecar;
// - a reply whose r.id is not a byte string leaves the lookup waiting forever;
// - a reply to no query of ours still put its sender in the routing table;
// - stock nodes store BEP-44 dict values of any size (only raw strings are size-checked), and
//   libtorrent then treats their replies as invalid (now error 205, in dht/queries.ts);
// - k-bucket's closest() is called without a count, so every reply carries the whole routing
//   table (> 1500 bytes past ~55 nodes: libtorrent drops it) and put() goes to every node known.
import bencode from 'bencode';
import type DHT from 'bittorrent-dht';
import { patchable, patchableObject } from './patch.js';
import { answerQueriesStrictly, type OwnItems } from './queries.js';
import { limitNodesPerIp } from './routing-limit.js';

// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).
type Internals = {
  _rpc: { socket: { socket: import('node:dgram').Socket }; nodes: { closest(id: any, n?: number): any[] } };
  _tables: { set(key: any, table: any): any };
  emit(event: string, ...args: unknown[]): boolean;
};

const Y_R = Buffer.from('1:y1:r');

type Outstanding = { _ids: number[]; _reqs: ({ peer?: { host?: string } } | null)[] };

/**
 * Why k-rpc must not see this reply (null: let it through): a node id that is not a byte string
 * (the lookup would wait forever), or no query of ours that it answers. k-rpc-socket hands such
 * an unsolicited reply on anyway, and k-rpc adds its sender to the routing table: anyone could
 * insert contacts without ever being asked, from any (spoofed) source address.
 */
function replyProblem(buf: Buffer, from: string, outstanding: Outstanding): string | null {
  if (buf.indexOf(Y_R) === -1) return null;
  let m: any;
  try {
    m = bencode.decode(buf);
  } catch {
    return null; // k-rpc-socket ignores undecodable packets itself
  }
  const id = m?.r?.id;
  if (id !== undefined && !(id instanceof Uint8Array)) return 'dropped a reply with a malformed node id';
  const y = m?.y;
  const t = m?.t;
  if (!(y instanceof Uint8Array) || y.length !== 1 || y[0] !== 0x72 /* r */) return null;
  if (!(t instanceof Uint8Array) || t.length < 2) return null; // k-rpc-socket drops it
  const tid = (t[0]! << 8) | t[1]!;
  const i = tid === 0 ? -1 : outstanding._ids.indexOf(tid);
  if (i === -1 || outstanding._reqs[i]?.peer?.host !== from) return 'dropped an unsolicited reply';
  return null;
}

export interface HardenOptions {
  replyNodes?: number;
  putNodes?: number;
  /** Pace packets to any one node (host:port) to this many per second (libtorrent bans > 5/s). */
  maxPacketsPerSecondPerNode?: number;
  /** Routing-table entries per IP address (default 1, as libtorrent; 0: no limit). */
  maxNodesPerIp?: number;
  /** Apply `maxNodesPerIp` to loopback addresses too (default: exempt; tests of the limit). */
  limitLoopback?: boolean;
  /** The items the node's owner signed: never stored or served older than these (dht/queries.ts). */
  ownItems?: OwnItems;
}

export function hardenDht(dht: DHT, opts: HardenOptions = {}): DHT {
  const d = dht as unknown as Internals;
  const rpc = patchableObject(d, '_rpc', 'bittorrent-dht DHT');
  const krpcSocket = patchableObject(rpc, 'socket', 'k-rpc RPC');
  const sock = patchableObject(krpcSocket, 'socket', 'k-rpc-socket RPC') as import('node:dgram').Socket;
  if (!Array.isArray(krpcSocket._ids) || !Array.isArray(krpcSocket._reqs)) {
    throw new Error(
      'cannot harden the DHT node: k-rpc-socket RPC._ids / _reqs are not arrays (bittorrent-dht internals changed; see sidecar/dht-*.ts)',
    );
  }
  const outstanding = krpcSocket as Outstanding;
  patchable(sock, 'send', 'dgram Socket');
  patchable(patchableObject(rpc, 'nodes', 'k-rpc RPC'), 'closest', 'k-bucket KBucket');
  patchable(patchableObject(d, '_tables', 'bittorrent-dht DHT'), 'set', 'bittorrent-dht DHT._tables (lru)');
  answerQueriesStrictly(dht, opts.ownItems);
  limitNodesPerIp(dht, { maxNodesPerIp: opts.maxNodesPerIp ?? 1, limitLoopback: opts.limitLoopback });
  const listeners = sock.listeners('message') as ((buf: Buffer, rinfo: unknown) => void)[];
  sock.removeAllListeners('message');
  for (const l of listeners) {
    sock.on('message', (buf: Buffer, rinfo: { address: string }) => {
      const problem = replyProblem(buf, rinfo.address, outstanding);
      if (problem) {
        d.emit('warning', new Error(problem));
        return;
      }
      try {
        l(buf, rinfo);
      } catch (err) {
        d.emit('warning', err);
      }
    });
  }
  if (opts.maxPacketsPerSecondPerNode) pacers.set(dht, pacePerDestination(sock, opts.maxPacketsPerSecondPerNode));
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

export interface Pacer {
  /** How long (ms) a packet sent to this node now would wait in the pacer. */
  delayMs(host: string, port: number): number;
  /**
   * Calls `send(true)` when one packet may go to this node, and lets the packet `send` puts on
   * the socket right then go through: a query made there starts its timeout when it leaves, not
   * while it waits here. `send(false)` when the node closed first.
   */
  whenFree(host: string, port: number, send: (open: boolean) => void): void;
}

const pacers = new WeakMap<DHT, Pacer>();

/** The node's per-destination pacer (none: packets never wait). */
export function pacerOf(dht: DHT): Pacer | null {
  return pacers.get(dht) ?? null;
}

/** Packets waiting for one destination, beyond which packets are dropped (and counted). */
const MAX_QUEUED_PER_DEST = 64;

/** Process-wide: packets delayed / dropped by the pacer, and the most sent to one node in one calendar second. */
export const pacingStats = { delayed: 0, dropped: 0, peakPerDestSecond: 0 };

/**
 * Per destination, at most `rate` packets in any window of 1 s plus a margin (receivers count
 * arrivals, which jitter): a sliding window over the last `rate` send times, the rest wait their
 * turn (a k-rpc query times out after 2 s, so a short wait costs little).
 */
const WINDOW_MS = 1000 + 100;

function pacePerDestination(sock: import('node:dgram').Socket, rate: number): Pacer {
  /** A packet to send, or a caller waiting for a free slot (whenFree). */
  type Entry = { args: unknown[] } | { grant: (open: boolean) => void };
  type Dest = { sent: number[]; queue: Entry[]; packets: number; timer: NodeJS.Timeout | null; second: number; inSecond: number };
  const dests = new Map<string, Dest>();
  const rawSend = sock.send.bind(sock) as (...a: unknown[]) => void;
  let closed = false;
  /** The destination whose slot a whenFree caller holds right now. */
  let granted: Dest | null = null;
  const dest = (key: string) => {
    let d = dests.get(key);
    if (!d) dests.set(key, (d = { sent: [], queue: [], packets: 0, timer: null, second: 0, inSecond: 0 }));
    return d;
  };
  // A paced packet may come due after the socket closed (the node was destroyed): drop it.
  const send = (d: Dest, args: unknown[]) => {
    if (closed) return;
    const now = Date.now();
    d.sent.push(now);
    if (d.sent.length > rate) d.sent.shift();
    const second = Math.floor(now / 1000);
    d.inSecond = d.second === second ? d.inSecond + 1 : 1;
    d.second = second;
    if (d.inSecond > pacingStats.peakPerDestSecond) pacingStats.peakPerDestSecond = d.inSecond;
    try {
      rawSend(...args);
    } catch {
      pacingStats.dropped++;
    }
  };
  const grant = (d: Dest, g: (open: boolean) => void) => {
    granted = d;
    try {
      g(true);
    } catch {
      // the caller's own failure; it must not escape a pacer timer
    } finally {
      granted = null;
    }
  };
  /** ms until one more packet may go (0: now). */
  const wait = (d: { sent: number[] }) => (d.sent.length < rate ? 0 : Math.max(0, d.sent[0]! + WINDOW_MS - Date.now()));
  const schedule = (key: string, d: Dest) => {
    if (d.timer || d.queue.length === 0) return;
    d.timer = setTimeout(() => drain(key), wait(d));
    d.timer.unref();
  };
  const drain = (key: string) => {
    const d = dests.get(key);
    if (!d || closed) return;
    d.timer = null;
    while (d.queue.length > 0 && wait(d) === 0) {
      const e = d.queue.shift()!;
      if ('args' in e) {
        d.packets--;
        send(d, e.args);
      } else grant(d, e.grant); // sends nothing (the query could not go): the slot stays free
    }
    schedule(key, d);
  };
  (sock as unknown as { send: (...a: unknown[]) => void }).send = (...args: unknown[]) => {
    const key = `${String(args[4])}:${String(args[3])}`;
    const d = dest(key);
    if (granted === d) {
      granted = null;
      send(d, args);
      return;
    }
    if (d.queue.length === 0 && wait(d) === 0) {
      send(d, args);
      return;
    }
    if (d.packets >= MAX_QUEUED_PER_DEST) {
      pacingStats.dropped++;
      return;
    }
    pacingStats.delayed++;
    d.packets++;
    d.queue.push({ args });
    schedule(key, d);
  };
  // Forget idle destinations now and then (the map only holds destinations with a deficit).
  const sweep = setInterval(() => {
    for (const [key, d] of dests)
      if (d.queue.length === 0 && wait(d) === 0 && Date.now() - (d.sent.at(-1) ?? 0) > WINDOW_MS) dests.delete(key);
  }, 10_000);
  sweep.unref();
  sock.once('close', () => {
    closed = true;
    clearInterval(sweep);
    for (const d of dests.values()) {
      if (d.timer) clearTimeout(d.timer);
      for (const e of d.queue) if ('grant' in e) e.grant(false);
    }
    dests.clear();
  });
  return {
    delayMs(host, port) {
      const d = dests.get(`${host}:${port}`);
      if (!d) return 0;
      return wait(d) + (d.queue.length * 1000) / rate;
    },
    whenFree(host, port, g) {
      if (closed) return g(false);
      const key = `${host}:${port}`;
      const d = dest(key);
      if (d.queue.length === 0 && wait(d) === 0) return grant(d, g);
      pacingStats.delayed++;
      d.queue.push({ grant: g });
      schedule(key, d);
    },
  };
}
