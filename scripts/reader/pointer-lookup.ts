// Reading a bridge's author pointer from the DHT (docs/protocol.md §7): page 0, then pages
// 1 … pg−1, each a BEP-44 mutable item whose key, salt and ed25519 signature are checked here
// (bittorrent-dht checks them too; a reader does not rely on one library's check for trust).
import type DHT from 'bittorrent-dht';
import { authorSalt, BadItem, decodeAuthorPage } from '../../sidecar/formats/pointer-item.js';
import { getVerifiedItem } from '../../sidecar/dht/mutable-get.js';
import { checkItem, type AuthorPointer, type ItemProblem, type PointerLookup, type VerifiedItem } from './pointer-verify.js';

export { checkItem, getVerifiedItem };
export type { AuthorPointer, ItemProblem, PointerLookup, VerifiedItem };

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
    pointer: {
      infoHashes: unique,
      n: page0.n,
      pages: page0.pg,
      seq: first.seq,
      complete: problems.length === 0,
      problems,
      ...(page0.mediaList ? { mediaList: page0.mediaList } : {}),
    },
  };
}
