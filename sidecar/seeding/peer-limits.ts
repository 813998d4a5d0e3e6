// Bounds what remote BitTorrent peers can make the seeder hold, measured with hostile peers
// (test/peer-abuse.test.ts):
// - WebTorrent accepts any number of incoming connections, and one that never sends its handshake
//   is kept for 25 s: incoming connections are capped (`maxIncoming`); at the cap, the oldest one
//   still waiting for its handshake makes room, else the new one is refused.
// - bittorrent-protocol answers every block request as soon as the store has read it, and ignores
//   backpressure: one peer that requests everything and never reads made the sidecar grow by
//   ~450 MB/s (170 MB → 2.8 GB in 6 s). Per peer, requests are served only while less than
//   MAX_BUFFERED_BYTES wait to be sent; later ones wait in a queue of at most MAX_QUEUED_REQUESTS
//   (beyond it they are rejected, as BEP 6 allows, or dropped for peers without the fast extension).
import { ConnPool, webtorrentOwner } from '../common/webtorrent.js';
import Wire from 'bittorrent-protocol';
import { patchableFunction, type PatchOwner } from '../common/monkey-patch.js';

export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
export const MAX_QUEUED_REQUESTS = 2000;
const RETRY_MS = 20;

export const peerLimitStats = { refused: 0, evicted: 0, requestsDeferred: 0, requestsRejected: 0 };

type Conn = { destroy(): void; on(e: string, f: () => void): void; once(e: string, f: () => void): void };
type Block = [index: number, offset: number, length: number];

// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).
interface LimitedWire {
  peerRequests: { piece: number; offset: number; length: number }[];
  amChoking: boolean;
  hasFast: boolean;
  destroyed: boolean;
  _readableState?: { buffered: number };
  reject(index: number, offset: number, length: number): void;
  once(event: string, f: () => void): void;
  nbtWaiting?: Block[];
  nbtTimer?: NodeJS.Timeout | null;
}

const LIMITS = Symbol('nostr-bt peer limits');
const LIVE = Symbol('nostr-bt incoming connections');

let installed = false;

/** Caps incoming connections of this WebTorrent client (every client gets the per-peer bounds). */
export function limitPeers(client: object, opts: { maxIncoming: number }): void {
  install();
  (client as any)[LIMITS] = opts;
}

function install(): void {
  if (installed) return;
  installed = true;

  // Every member is checked before any is replaced: a failed check leaves nothing half-patched.
  const pool = ConnPool.prototype as any;
  const proto = Wire.prototype as any;
  const wire: PatchOwner = { pkg: 'bittorrent-protocol', object: 'Wire.prototype' };
  const onConnection = patchableFunction(pool, '_onConnection', webtorrentOwner('ConnPool.prototype'));
  const onRequest = patchableFunction<(this: LimitedWire, ...b: Block) => void>(proto, '_onRequest', wire);
  const onCancel = patchableFunction<(this: LimitedWire, ...b: Block) => void>(proto, '_onCancel', wire);

  pool._onConnection = function (this: any, conn: Conn, type: string) {
    const limits = this._client?.[LIMITS] as { maxIncoming: number } | undefined;
    if (limits) {
      const live: Set<Conn> = (this[LIVE] ??= new Set());
      if (live.size >= limits.maxIncoming) {
        // Set order is arrival order: the first pending one has waited longest for a handshake.
        const stale = (this._pendingConns as Set<Conn> | null)?.values().next().value as Conn | undefined;
        if (stale) {
          peerLimitStats.evicted++;
          live.delete(stale);
          stale.destroy();
        } else {
          peerLimitStats.refused++;
          conn.on('error', () => {});
          conn.destroy();
          return;
        }
      }
      live.add(conn);
      conn.once('close', () => live.delete(conn));
    }
    return onConnection.call(this, conn, type);
  };

  proto._onRequest = function (this: LimitedWire, index: number, offset: number, length: number) {
    if (this.amChoking) return onRequest.call(this, index, offset, length); // refused there as before
    const waiting = this.nbtWaiting;
    if (this.peerRequests.length + (waiting?.length ?? 0) >= MAX_QUEUED_REQUESTS) {
      peerLimitStats.requestsRejected++;
      if (this.hasFast) this.reject(index, offset, length);
      return;
    }
    if ((waiting && waiting.length > 0) || outstandingBytes(this) >= MAX_BUFFERED_BYTES) {
      peerLimitStats.requestsDeferred++;
      (this.nbtWaiting ??= []).push([index, offset, length]);
      scheduleWaiting(this, onRequest);
      return;
    }
    onRequest.call(this, index, offset, length);
  };

  proto._onCancel = function (this: LimitedWire, index: number, offset: number, length: number) {
    const waiting = this.nbtWaiting;
    if (waiting) {
      const i = waiting.findIndex((b) => b[0] === index && b[1] === offset && b[2] === length);
      if (i >= 0) waiting.splice(i, 1);
    }
    return onCancel.call(this, index, offset, length);
  };
}

/** Bytes this peer will be sent and has not taken yet: queued in the wire plus being read for it. */
function outstandingBytes(wire: LimitedWire): number {
  let n = wire._readableState?.buffered ?? 0;
  for (const r of wire.peerRequests) n += r.length;
  return n;
}

function scheduleWaiting(wire: LimitedWire, onRequest: (this: LimitedWire, ...b: Block) => void): void {
  if (wire.nbtTimer) return;
  if (wire.nbtTimer === undefined)
    wire.once('close', () => {
      if (wire.nbtTimer) clearTimeout(wire.nbtTimer);
      wire.nbtWaiting = [];
    });
  wire.nbtTimer = setTimeout(() => {
    wire.nbtTimer = null;
    const waiting = wire.nbtWaiting ?? [];
    if (wire.destroyed) {
      waiting.length = 0;
      return;
    }
    while (waiting.length > 0 && outstandingBytes(wire) < MAX_BUFFERED_BYTES) onRequest.call(wire, ...waiting.shift()!);
    if (waiting.length > 0) scheduleWaiting(wire, onRequest);
  }, RETRY_MS);
  wire.nbtTimer.unref();
}
