// WebTorrent has no end game: a block asked of a peer stays reserved for that peer until the
// peer answers, rejects or the wire's 30 s request timeout destroys the connection (and that
// timer restarts with every new request on the wire). A peer can accept requests and not answer
// them for minutes: in bench/media-offload-bench.ts a reader sat at 636 of 640 pieces, its last 4
// reserved by two peers that had not answered for minutes while 12 other unchoked peers holding
// them sat idle. The cause there: WebTorrent's upload limit (speed-limiter over limiter 1.1.5)
// is not fair — a throttle waiting for tokens sleeps on a timer while other wires' synchronous
// tryRemoveTokens take every token that drips in, so one wire's outgoing stream can starve while
// the peer serves others. Any slow or hostile peer does the same. Here a request unanswered for
// `staleMs` is cancelled (BEP 3 `cancel`; WebTorrent's error path releases the block's
// reservation) and the torrent asks again, now of any peer that has the block.
import type { Torrent } from '../../sidecar/common/webtorrent.js';

interface WireRequests {
  destroyed?: boolean;
  requests: { piece: number; offset: number; length: number }[];
  cancel(index: number, offset: number, length: number): void;
}

export interface StaleRequestOptions {
  /** A request unanswered this long is cancelled (default 5 s). */
  staleMs?: number;
  /** How often requests are looked at (default 1 s). */
  intervalMs?: number;
}

/** Starts watching `torrent`'s outstanding requests; returns the stop, and counts cancellations. */
export function cancelStaleRequests(torrent: Torrent, opts: StaleRequestOptions = {}): { stop(): void; readonly cancelled: number } {
  const staleMs = opts.staleMs ?? 5000;
  const firstSeen = new WeakMap<object, number>();
  let cancelled = 0;
  const timer = setInterval(() => {
    const t = torrent as unknown as { destroyed?: boolean; done?: boolean; wires: WireRequests[]; _update?: () => void };
    if (t.destroyed || t.done) return;
    const now = Date.now();
    let any = false;
    for (const wire of t.wires) {
      if (wire.destroyed) continue;
      for (const req of [...wire.requests]) {
        const seen = firstSeen.get(req);
        if (seen === undefined) firstSeen.set(req, now);
        else if (now - seen >= staleMs) {
          wire.cancel(req.piece, req.offset, req.length);
          cancelled++;
          any = true;
        }
      }
    }
    if (any) t._update?.();
  }, opts.intervalMs ?? 1000);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    get cancelled() {
      return cancelled;
    },
  };
}

/**
 * What a reader's wires tell WebTorrent their download speed is: the same for every peer, so no
 * peer is preferred or passed over for being faster (WebTorrent leaves pieces to faster peers
 * even after they choked us, and hotswaps requests away from slower ones), and above WebTorrent's
 * speed threshold (3 blocks/s) so that its speed ranker and hotswap stand aside. It also sets the
 * request pipeline: 2 + ⌈duration × speed / 16 KiB⌉, 10 to 18 blocks in flight per peer. A speed
 * of 0 (what readers used before) left 2 blocks per peer: 32 KiB per round trip, and in a
 * 20-reader swarm on a busy machine (event loops lagging ~1 s) each reader got ~25 KiB/s and
 * none finished a 10 MiB blob in 300 s (bench/media-offload-bench.ts).
 */
export const EVEN_WIRE_SPEED = 256 * 1024;

/** Gives a wire the even speed above (call on the torrent's 'wire' event). */
export function evenWireSpeed(wire: unknown): void {
  (wire as { downloadSpeed: () => number }).downloadSpeed = () => EVEN_WIRE_SPEED;
}
