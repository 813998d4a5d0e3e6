// GET /pointer/<author> (this bridge's item, from the index, exactly as signed) and
// GET /pointer/<bridge>/<author> (any bridge's, looked up in the DHT, verified, cached no longer
// than gateway.remoteCacheSeconds, with a global pace of DHT lookups). docs/protocol.md §9.
import type DHT from 'bittorrent-dht';
import bencode from 'bencode';
import { LRUCache } from 'lru-cache';
import { getVerifiedItem, type SignedItem } from '../dht/mutable-get.js';
import { authorSalt, MAX_PAGES } from '../formats/pointer-item.js';
import type { BundleLookup } from './bundle-lookup.js';
import { notModified } from './conditional.js';
import type { GatewayStats } from './gateway-stats.js';
import { authorKey, bridgeKey } from './keys.js';
import { TokenBuckets } from './rate-limit.js';
import { sendText, type Route, type RouteRequest } from './routes.js';

export interface PointerItem {
  k: Buffer;
  salt: Buffer;
  seq: number;
  v: unknown;
  sig: Buffer;
}

export interface PointerRouteOptions {
  bridgeKey: Buffer;
  bundles: BundleLookup;
  /** null: DHT off (remote lookups answer 503). */
  dht: () => DHT | null;
  /** How long clients may keep this bridge's pointer (it changes at most once per window). */
  localMaxAgeSec: number;
  lookupsPerSecond: number;
  lookupTimeoutMs: number;
  cacheSeconds: number;
  cacheEntries: number;
  stats: GatewayStats;
}

type Lookup = { item: SignedItem } | { problem: string };

/** How long a miss (absent, timeout) is remembered: a flood for unknown keys stays one lookup. */
const MISS_CACHE_MS = 10_000;
/** Lookups in flight at once, whatever the pace allows. */
const MAX_IN_FLIGHT = 32;

export function pointerRoutes(o: PointerRouteOptions): Route[] {
  const cache = new LRUCache<string, { result: Lookup; expires: number }>({ max: Math.max(1, o.cacheEntries) });
  const inFlight = new Map<string, Promise<Lookup>>();
  const pace = new TokenBuckets(o.lookupsPerSecond, Math.max(1, Math.ceil(o.lookupsPerSecond * 2)), 1);

  const page = (r: RouteRequest): number | null => {
    const p = r.query.get('page');
    if (p === null) return 0;
    return /^\d{1,2}$/.test(p) && Number(p) < MAX_PAGES ? Number(p) : null;
  };

  const local = (r: RouteRequest, author: string, pg: number) => {
    const rec = o.bundles.pointer(authorSalt(author, pg).toString('hex'));
    if (!rec) return sendText(r.res, 404, `this bridge has no pointer for author ${author}${pg ? ` page ${pg}` : ''}\n`);
    send(r, { k: o.bridgeKey, ...rec }, o.localMaxAgeSec);
  };

  const lookup = (dht: DHT, k: Buffer, salt: Buffer): Promise<Lookup> => {
    const key = `${k.toString('hex')}:${salt.toString('hex')}`;
    const running = inFlight.get(key);
    if (running) return running;
    const p = getVerifiedItem(dht, k, salt, o.lookupTimeoutMs)
      .then((got): Lookup => {
        o.stats.lookup(typeof got !== 'string' ? 'hit' : got === 'absent' || got === 'timeout' ? 'miss' : 'fail');
        return typeof got === 'string' ? { problem: got } : { item: got };
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    void p.then((result) => {
      const ms = 'item' in result ? o.cacheSeconds * 1000 : Math.min(MISS_CACHE_MS, o.cacheSeconds * 1000);
      if (ms > 0 && o.cacheEntries > 0) cache.set(key, { result, expires: Date.now() + ms });
    });
    return p;
  };

  const remote = async (r: RouteRequest, k: Buffer, author: string, pg: number) => {
    const dht = o.dht();
    if (!dht) return sendText(r.res, 503, 'this gateway has no DHT node (dht.enabled = false)\n');
    const salt = authorSalt(author, pg);
    const key = `${k.toString('hex')}:${salt.toString('hex')}`;
    const hit = cache.get(key);
    let result: Lookup;
    let maxAge: number;
    if (hit && hit.expires > Date.now()) {
      o.stats.lookup('cached');
      result = hit.result;
      maxAge = Math.floor((hit.expires - Date.now()) / 1000);
    } else {
      if (!inFlight.has(key) && (inFlight.size >= MAX_IN_FLIGHT || !pace.take(''))) {
        o.stats.lookup('busy');
        return sendText(r.res, 503, 'DHT lookups are busy; try again shortly\n', { 'retry-after': 1 });
      }
      result = await lookup(dht, k, salt);
      maxAge = 'item' in result ? o.cacheSeconds : Math.min(MISS_CACHE_MS / 1000, o.cacheSeconds);
    }
    if ('item' in result) return send(r, { k, salt, ...result.item }, maxAge);
    if (result.problem === 'absent' || result.problem === 'timeout') {
      return sendText(r.res, 404, `no item for this bridge and author in the DHT (${result.problem})\n`, {
        'cache-control': `public, max-age=${maxAge}`,
      });
    }
    sendText(r.res, 502, `the DHT gave no valid item: ${result.problem}\n`, { 'cache-control': `public, max-age=${maxAge}` });
  };

  return [
    {
      name: 'pointer',
      methods: ['GET', 'HEAD'],
      pattern: /^\/pointer\/(?<author>[^/]+)$/,
      handler: (r) => {
        const author = authorKey(r.params.author!);
        if (!author) return sendText(r.res, 400, 'not an author key: expected 64 hex characters or npub1…\n');
        const pg = page(r);
        if (pg === null) return sendText(r.res, 400, `page must be an integer 0 to ${MAX_PAGES - 1}\n`);
        local(r, author, pg);
      },
    },
    {
      name: 'remote-pointer',
      methods: ['GET', 'HEAD'],
      pattern: /^\/pointer\/(?<bridge>[^/]+)\/(?<author>[^/]+)$/,
      handler: (r) => {
        const k = bridgeKey(r.params.bridge!);
        if (!k) return sendText(r.res, 400, 'not a bridge key: expected 64 hex or 52 z-base-32 characters\n');
        const author = authorKey(r.params.author!);
        if (!author) return sendText(r.res, 400, 'not an author key: expected 64 hex characters or npub1…\n');
        const pg = page(r);
        if (pg === null) return sendText(r.res, 400, `page must be an integer 0 to ${MAX_PAGES - 1}\n`);
        if (k.equals(o.bridgeKey)) return local(r, author, pg);
        return remote(r, k, author, pg);
      },
    },
  ];
}

/** The item as JSON: k, salt and sig in hex, v as the base64 of its bencoded bytes. */
export function pointerJson(item: PointerItem): string {
  return JSON.stringify({
    k: item.k.toString('hex'),
    salt: item.salt.toString('hex'),
    seq: item.seq,
    v: Buffer.from(bencode.encode(item.v)).toString('base64'),
    sig: item.sig.toString('hex'),
  });
}

function send(r: RouteRequest, item: PointerItem, maxAgeSec: number): void {
  const headers = {
    etag: `"${item.seq}-${item.sig.subarray(0, 8).toString('hex')}"`,
    'cache-control': `public, max-age=${Math.max(0, maxAgeSec)}`,
  };
  if (notModified(r.req, r.res, headers)) return;
  const body = pointerJson(item) + '\n';
  r.res.writeHead(200, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  r.res.end(r.req.method === 'HEAD' ? undefined : body);
}
