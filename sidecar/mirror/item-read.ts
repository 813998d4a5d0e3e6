// Reading one of a followed bridge's BEP-44 items and repairing the DHT on the way: the lookup
// (as sidecar/dht/mutable-get.ts, every reply's key, salt and signature checked) remembers which
// nodes answered with an older seq of the item, and the newest one is put on exactly those nodes
// (with the write token each gave in its reply). An origin's puts land on the nodes closest to
// the target in its own view; a later put can miss nodes that hold an earlier version, and a
// reader that takes the first answers may then get the older pointer.
import type DHT from 'bittorrent-dht';
import { targetOf } from '../formats/pointer-item.js';
import { checkItem, type ItemProblem } from '../formats/pointer-check.js';
import type { SignedItem } from '../dht/mutable-get.js';

type Closest = (
  target: Buffer,
  message: unknown,
  onreply: (m: { r?: Record<string, unknown> }, node: { host?: string; address?: string; port: number }) => boolean,
  done: (err: Error | null) => void,
) => void;
type Query = (node: { host: string; port: number; id?: Buffer }, message: unknown, cb: (err: Error | null) => void) => void;

export interface ReadOutcome {
  item: SignedItem | ItemProblem;
  /** Nodes that held an older version and were sent the newest. */
  repaired: number;
}

const MAX_TOKEN_BYTES = 64;

/** The newest valid item (k, salt) the lookup saw, bounded by `timeoutMs`; older copies it met are replaced. */
export function readAndRepair(dht: DHT, k: Buffer, salt: Buffer, timeoutMs: number): Promise<ReadOutcome> {
  return new Promise((resolve) => {
    const internals = dht as unknown as { _closest: Closest; _rpc: { id: Buffer; query: Query } };
    const target = targetOf(k, salt);
    let best: SignedItem | null = null;
    let worst: ItemProblem | null = null;
    const older: { node: { host: string; port: number; id?: Buffer }; token: Buffer; seq: number }[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const b = best;
      const stale = b ? older.filter((o) => o.seq < b.seq) : [];
      if (b) {
        for (const o of stale) {
          const a: Record<string, unknown> = { id: internals._rpc.id, token: o.token, k, seq: b.seq, sig: b.sig, v: b.v };
          if (salt.length > 0) a['salt'] = salt;
          try {
            internals._rpc.query(o.node, { q: 'put', a }, () => {});
          } catch {
            /* the node is shutting down */
          }
        }
      }
      resolve({ item: b ?? worst ?? 'absent', repaired: stale.length });
    };
    const timer = setTimeout(finish, timeoutMs);
    try {
      internals._closest(
        target,
        { q: 'get', a: { id: internals._rpc.id, target } },
        (message, node) => {
          const r = message?.r;
          if (settled || !r || r.v === undefined || (r.k === undefined && r.sig === undefined)) return true;
          const item = checkItem({ v: r.v, k: r.k as Uint8Array, salt, sig: r.sig as Uint8Array, seq: r.seq as number }, k, salt);
          if (typeof item === 'string') {
            worst ??= item;
            return true;
          }
          const token = r.token;
          const host = node?.host ?? node?.address;
          if (token instanceof Uint8Array && token.length > 0 && token.length <= MAX_TOKEN_BYTES && host)
            older.push({
              node: { host, port: node.port, id: r.id instanceof Uint8Array ? Buffer.from(r.id) : undefined },
              token: Buffer.from(token),
              seq: item.seq,
            });
          if (!best || item.seq > best.seq) best = { ...item, sig: Buffer.from(r.sig as Uint8Array) };
          return true;
        },
        () => finish(),
      );
    } catch {
      finish();
    }
  });
}
