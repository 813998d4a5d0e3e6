// One BEP-44 mutable item read from the DHT and checked here (key, salt, seq, size and the
// ed25519 signature): shared by the reader and the gateway's lookups of other bridges. A caller
// does not rely on bittorrent-dht's own check for trust.
import type DHT from 'bittorrent-dht';
import { targetOf } from '../formats/pointer-item.js';
import { checkItem, type ItemProblem, type VerifiedItem } from '../formats/pointer-check.js';

/** A verified item with its signature, as the DHT node that gave the highest seq sent it. */
export interface SignedItem extends VerifiedItem {
  sig: Buffer;
}

/**
 * After the first valid reply, how long at most to wait for the rest of the lookup: a node that
 * answers later may hold a newer seq (a put need not reach every storing node), so the lookup
 * runs to its end unless this budget passes first.
 */
export const SETTLE_MS = 4000;

type Closest = (
  target: Buffer,
  message: unknown,
  onreply: (m: { r?: Record<string, unknown> }) => boolean,
  done: (err: Error | null) => void,
) => void;

/**
 * One DHT get of the mutable item (k, salt), accepted only if it is signed by k for exactly this
 * salt; the highest valid seq among all answers wins (an invalid answer never does). Answers when
 * the lookup ends, or `settleMs` after the first valid reply, whichever comes first (a lookup ends
 * only once every queried node answered or timed out, dead ones included). Bounded by `timeoutMs`.
 */
export function getVerifiedItem(
  dht: DHT,
  k: Buffer,
  salt: Buffer,
  timeoutMs: number,
  settleMs = SETTLE_MS,
): Promise<SignedItem | ItemProblem> {
  return new Promise((resolve) => {
    let settled = false;
    let best: SignedItem | null = null;
    let worst: ItemProblem | null = null;
    let grace: NodeJS.Timeout | undefined;
    const finish = (r: SignedItem | ItemProblem) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      resolve(r);
    };
    const timer = setTimeout(() => finish(best ?? 'timeout'), timeoutMs);
    const internals = dht as unknown as { _closest: Closest; _rpc: { id: Buffer } };
    const target = targetOf(k, salt);
    try {
      internals._closest(
        target,
        { q: 'get', a: { id: internals._rpc.id, target } },
        (message) => {
          const r = message?.r;
          if (settled || !r || r.v === undefined || (r.k === undefined && r.sig === undefined)) return true;
          const item = checkItem({ v: r.v, k: r.k as Uint8Array, salt, sig: r.sig as Uint8Array, seq: r.seq as number }, k, salt);
          if (typeof item === 'string') worst ??= item;
          else if (!best || item.seq > best.seq) {
            best = { ...item, sig: Buffer.from(r.sig as Uint8Array) };
            grace ??= setTimeout(() => finish(best!), settleMs);
          }
          return true;
        },
        () => finish(best ?? worst ?? 'absent'),
      );
    } catch {
      finish('absent');
    }
  });
}
