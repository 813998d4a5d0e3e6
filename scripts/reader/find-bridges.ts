// Discovery for resolve and crawl: the bridges to ask, best first (those that had pointers
// before, from the cache; then bridges whose beacons answered now; then the rest of the cache),
// at most `maxBridges`; and afterwards the cache learns which of them had the author's pointer.
import type DHT from 'bittorrent-dht';
import { BridgeCache } from './bridge-cache.js';
import { discoverBridges, checkDiscoverLimits, type DiscoverLimits, type DiscoverySummary } from './discover.js';
import type { ResolveSummary } from './reader-types.js';

export interface BridgeChoice {
  bridges: Buffer[];
  /** What discovery did, and which bridges it chose and why. */
  discovery: DiscoverySummary;
}

export type { DiscoverySummary };

export async function chooseBridges(
  dht: DHT,
  cache: BridgeCache,
  limits: Partial<DiscoverLimits> | undefined,
  signal?: AbortSignal,
): Promise<BridgeChoice> {
  const l = checkDiscoverLimits(limits);
  const { bridges: found, report } = await discoverBridges(dht, { limits: l, signal });
  const now = Date.now();
  for (const b of found) cache.saw(b.key, b.addresses[0], b.gateway, now);
  const fresh = new Set(found.map((b) => b.key));
  const ranked = cache.ranked();
  const chosen: DiscoverySummary['chosen'] = [];
  const add = (key: string, from: DiscoverySummary['chosen'][number]['from'], gateway?: string) => {
    if (chosen.length < l.maxBridges && !chosen.some((c) => c.key === key)) chosen.push({ key, from, ...(gateway ? { gateway } : {}) });
  };
  for (const e of ranked) if (e.hits > 0) add(e.k, fresh.has(e.k) ? 'cache+beacon' : 'cache', e.g);
  for (const b of found) add(b.key, 'beacon', b.gateway);
  for (const e of ranked) add(e.k, 'cache', e.g);
  // Bridges that answered now and were already cached were added as 'beacon' above; say both.
  for (const c of chosen) if (c.from === 'beacon' && ranked.some((e) => e.k === c.key && e.first < now)) c.from = 'cache+beacon';
  return {
    bridges: chosen.map((c) => Buffer.from(c.key, 'hex')),
    discovery: { ...report, chosen, cache: { path: cache.path, entries: cache.size, error: cache.loadError } },
  };
}

/**
 * After a resolve: bridges whose pointer led to verified events rank first next time. A pointer
 * alone is not enough: anyone can sign pointers to junk under a key of their own.
 */
export function learnFromResolve(cache: BridgeCache, s: Pick<ResolveSummary, 'bridges' | 'bundles'>): void {
  const useful = new Set<string>();
  for (const b of s.bundles) if (b.ok && b.events > 0) for (const short of b.bridges) useful.add(short);
  for (const r of s.bridges) if (r.status === 'found' && useful.has(r.bridge.slice(0, 16))) cache.hit(r.bridge);
}
