// WebTorrent has no end game: a block asked of a peer stays reserved for that peer until the
// peer answers, rejects or the wire's 30 s request timeout destroys the connection. In a swarm of
// readers some peers stop answering requests they accepted (measured in
// bench/media-offload-bench.ts: a reader at 636 of 640 pieces, its last 4 pieces reserved by two
// peers that had not answered for minutes, 12 other unchoked peers holding them idle), and the
// download stalls near its end. Here a request unanswered for `staleMs` is cancelled (BEP 3
// `cancel`; the block's reservation is released by WebTorrent's own error path), and the torrent
// asks again, now of any peer that has the block.
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
