// Reading one of a followed bridge's BEP-44 items and repairing the DHT on the way: an iterative
// `get` lookup (dht/lookup.ts: a few queries in flight, through the per-node pacer, every reply's
// key, salt and signature checked) remembers which nodes answered with an older seq of the item,
// and the newest one is put on exactly those nodes (with the write token each gave in its reply).
// An origin's puts land on the nodes closest to the target in its own view; a later put can miss
// nodes that hold an earlier version, and a reader that takes the first answers may then get the
// older pointer.
//
// When the caller knows what to expect (an author page that agrees with the catalog), the lookup
// ends as soon as two nodes answered with it: with thousands of authors to read, a full walk of
// the 20 closest nodes per item spends most of the DHT's packet budget on nodes that only repeat
// the answer. Anything else (no expectation, or an answer that disagrees, perhaps an older copy
// the origin's later put missed) walks the 20 closest, so a newer copy further on is found.
import type DHT from 'bittorrent-dht';
import { targetOf } from '../formats/pointer-item.js';
import { checkItem, type ItemProblem } from '../formats/pointer-check.js';
import type { SignedItem } from '../dht/mutable-get.js';
import { lookupClosest, rpcOf, type Contact } from '../dht/lookup.js';
import { pacerOf } from '../dht/harden.js';

export interface ReadOutcome {
  item: SignedItem | ItemProblem;
  /** Nodes that held an older version and were sent the newest. */
  repaired: number;
  /** `get` queries the lookup sent. */
  queries: number;
}

export interface ReadOptions {
  timeoutMs: number;
  /**
   * Whether the newest item seen is the one expected (e.g. the author page lists the catalog's
   * bundles): then `AGREEING` nodes holding it end the lookup.
   */
  expected?: (item: SignedItem) => boolean;
}

const MAX_TOKEN_BYTES = 64;
/** Nodes answering with the expected item that end a lookup (BEP-44 items live on the 8 closest). */
const AGREEING = 2;
/** The closest nodes a lookup walks (as k-rpc's), and its bounds. */
const K = 20;
const ALPHA = 4;
const MAX_QUERIES = 48;
/** A node whose next packet would wait this long in our pacer is passed over (up to MAX_SKIPS of them). */
const BUSY_MS = 400;
const MAX_SKIPS = 4;

/** The newest valid item (k, salt) the lookup saw, bounded by `timeoutMs`; older copies it met are replaced. */
export function readAndRepair(dht: DHT, k: Buffer, salt: Buffer, opts: ReadOptions): Promise<ReadOutcome> {
  return new Promise((resolve) => {
    const rpc = rpcOf(dht);
    const target = targetOf(k, salt);
    const pacer = pacerOf(dht);
    const via = pacer ? (c: Contact, send: (open: boolean) => void) => pacer.whenFree(c.host, c.port, send) : undefined;
    const busy = pacer ? (c: Contact) => pacer.delayMs(c.host, c.port) > BUSY_MS : undefined;
    let best: SignedItem | null = null;
    let worst: ItemProblem | null = null;
    let agreeing = 0;
    let queries = 0;
    const seen: { node: Contact; token: Buffer; seq: number }[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const b = best;
      const stale = b ? seen.filter((o) => o.seq < b.seq) : [];
      if (b) {
        for (const o of stale) {
          const a: Record<string, unknown> = { id: rpc.id, token: o.token, k, seq: b.seq, sig: b.sig, v: b.v };
          if (salt.length > 0) a['salt'] = salt;
          const send = (open: boolean) => {
            if (!open) return;
            try {
              rpc.query(o.node, { q: 'put', a }, () => {});
            } catch {
              /* the node is shutting down */
            }
          };
          if (via) via(o.node, send);
          else send(true);
        }
      }
      resolve({ item: b ?? worst ?? 'absent', repaired: stale.length, queries });
    };
    const timer = setTimeout(finish, opts.timeoutMs);
    const onReply = (node: Contact, r: Record<string, unknown>): boolean => {
      queries++;
      if (settled) return false;
      if (r.v === undefined || (r.k === undefined && r.sig === undefined)) return true;
      const item = checkItem({ v: r.v, k: r.k as Uint8Array, salt, sig: r.sig as Uint8Array, seq: r.seq as number }, k, salt);
      if (typeof item === 'string') {
        worst ??= item;
        return true;
      }
      const token = r.token;
      if (token instanceof Uint8Array && token.length > 0 && token.length <= MAX_TOKEN_BYTES)
        seen.push({ node, token: Buffer.from(token), seq: item.seq });
      if (!best || item.seq > best.seq) {
        best = { ...item, sig: Buffer.from(r.sig as Uint8Array) };
        agreeing = 1;
      } else if (item.seq === best.seq) agreeing++;
      return !(agreeing >= AGREEING && opts.expected?.(best));
    };
    lookupClosest(rpc, target, {
      k: K,
      alpha: ALPHA,
      seeds: rpc.nodes.closest(target, K),
      maxQueries: MAX_QUERIES,
      busy,
      maxSkips: MAX_SKIPS,
      via,
      onReply,
    }).then(finish, finish);
  });
}
