// Reading a bridge's author pointer from the DHT (docs/protocol.md §7): page 0, then pages
// 1 … pg−1, each a BEP-44 mutable item whose key, salt and ed25519 signature are checked here
// (bittorrent-dht checks them too; a reader does not rely on one library's check for trust).
import type DHT from 'bittorrent-dht';
import { authorSalt, BadItem, decodeAuthorPage, targetOf } from '../../sidecar/formats/pointer-item.js';
import { checkItem, type AuthorPointer, type ItemProblem, type PointerLookup, type VerifiedItem } from './pointer-verify.js';

export { checkItem };
export type { AuthorPointer, ItemProblem, PointerLookup, VerifiedItem };

/** After the first valid reply, how long to wait for a newer seq before answering. */
const GRACE_MS = 300;

type Closest = (target: Buffer, message: unknown, onreply: (m: { r?: Record<string, unknown> }) => boolean, done: (err: Error | null) => void) => void;

/**
 * One DHT get of the mutable item (k, salt), accepted only if it is signed by k for exactly this
 * salt; the highest seq wins. Answers shortly after the first valid reply instead of waiting for
 * the whole lookup (bittorrent-dht's get waits for every queried node, dead ones included, to
 * time out). Bounded by `timeoutMs`.
 */
export function getVerifiedItem(dht: DHT, k: Buffer, salt: Buffer, timeoutMs: number): Promise<VerifiedItem | ItemProblem> {
  return new Promise((resolve) => {
    let settled = false;
    let best: VerifiedItem | null = null;
    let worst: ItemProblem | null = null;
    let grace: NodeJS.Timeout | undefined;
    const finish = (r: VerifiedItem | ItemProblem) => {
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
            best = item;
            grace ??= setTimeout(() => finish(best!), GRACE_MS);
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

/** Page 0, then the further pages in parallel; checks they agree on n and pg. */
export async function lookupAuthorPointer(dht: DHT, bridgeKey: Buffer, author: string, timeoutMs: number): Promise<PointerLookup> {
  const first = await getVerifiedItem(dht, bridgeKey, authorSalt(author, 0), timeoutMs);
  if (first === 'absent' || first === 'timeout') return { status: first };
  if (typeof first === 'string') return { status: 'invalid', reason: first };
  let page0: ReturnType<typeof decodeAuthorPage>;
  try {
    page0 = decodeAuthorPage(first.v);
  } catch (err) {
    return { status: 'invalid', reason: err instanceof BadItem ? err.message : String(err) };
  }
  const problems: string[] = [];
  const infoHashes = [...page0.infoHashes];
  const rest = await Promise.all(
    Array.from({ length: page0.pg - 1 }, (_, i) => getVerifiedItem(dht, bridgeKey, authorSalt(author, i + 1), timeoutMs)),
  );
  rest.forEach((item, i) => {
    const p = i + 1;
    if (typeof item === 'string') {
      problems.push(`page ${p}: ${item}`);
      return;
    }
    try {
      const page = decodeAuthorPage(item.v);
      if (page.n !== page0.n || page.pg !== page0.pg) problems.push(`page ${p}: n/pg differ from page 0 (an older or newer version)`);
      infoHashes.push(...page.infoHashes);
    } catch (err) {
      problems.push(`page ${p}: ${(err as Error).message}`);
    }
  });
  const unique = [...new Set(infoHashes)];
  if (unique.length !== page0.n && problems.length === 0) problems.push(`pages list ${unique.length} bundles, n says ${page0.n}`);
  return {
    status: 'found',
    pointer: { infoHashes: unique, n: page0.n, pages: page0.pg, seq: first.seq, complete: problems.length === 0, problems },
  };
}
