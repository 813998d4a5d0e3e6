// Discovery for resolve and crawl: the bridges to ask, best first (those that had pointers
// before, from the cache; then bridges whose beacons answered now; then the rest of the cache),
// at most `maxBridges`, handed over as each becomes known so a resolve need not wait for the
// end of discovery; and afterwards the cache learns which of them had the author's pointer.
import type DHT from 'bittorrent-dht';
import { BridgeCache } from './bridge-cache.js';
import { ItemStream } from './item-stream.js';
import { discoverBridges, checkDiscoverLimits, type DiscoverLimits, type DiscoverySummary } from './discover.js';
import type { ResolveSummary } from './reader-types.js';

export interface BridgeChoice {
  bridges: Buffer[];
  /** What discovery did, and which bridges it chose and why. */
  discovery: DiscoverySummary;
}

export type { DiscoverySummary };

/** Bridges handed over while discovery runs, and discovery's outcome once it ended. */
export interface BridgeFeed {
  /**
   * The bridges to ask, best first, each as soon as it is known: those that had pointers before
   * (from the cache) at once, then each bridge whose beacon answers as it answers, then (when
   * discovery has ended) the rest of the cache; at most `maxBridges`, each once.
   */
  bridges: AsyncIterable<Buffer>;
  /** Resolves when discovery has ended and the feed is complete. */
  done: Promise<BridgeChoice>;
}

export function streamBridges(dht: DHT, cache: BridgeCache, limits: Partial<DiscoverLimits> | undefined, signal?: AbortSignal): BridgeFeed {
  const l = checkDiscoverLimits(limits);
  // Not consumed (a resolve that ended early) is fine: the feed only queues keys.
  const feed = new ItemStream<Buffer>(() => {});
  const cachedBefore = new Set(cache.ranked().map((e) => e.k));
  const chosen: DiscoverySummary['chosen'] = [];
  const add = (key: string, from: DiscoverySummary['chosen'][number]['from'], gateway?: string) => {
    if (chosen.length >= l.maxBridges || chosen.some((c) => c.key === key)) return;
    chosen.push({ key, from, ...(gateway ? { gateway } : {}) });
    void feed.push(Buffer.from(key, 'hex'));
  };
  for (const e of cache.ranked()) if (e.hits > 0) add(e.k, 'cache', e.g);
  const done = discoverBridges(dht, {
    limits: l,
    signal,
    onBridge: (b) => {
      cache.saw(b.key, b.addresses[0], b.gateway);
      const known = chosen.find((c) => c.key === b.key);
      if (known) known.from = 'cache+beacon';
      else add(b.key, cachedBefore.has(b.key) ? 'cache+beacon' : 'beacon', b.gateway);
    },
  }).then(
    ({ report }): BridgeChoice => {
      for (const e of cache.ranked()) add(e.k, 'cache', e.g);
      feed.end();
      return {
        bridges: chosen.map((c) => Buffer.from(c.key, 'hex')),
        discovery: { ...report, chosen, cache: { path: cache.path, entries: cache.size, error: cache.loadError } },
      };
    },
    (err: unknown) => {
      feed.fail(err);
      throw err;
    },
  );
  done.catch(() => {}); // the feed carries the failure; a caller awaiting `done` still gets it
  return { bridges: feed, done };
}

/** Discovery to its end, then the bridges to ask (as streamBridges orders them). */
export function chooseBridges(
  dht: DHT,
  cache: BridgeCache,
  limits: Partial<DiscoverLimits> | undefined,
  signal?: AbortSignal,
): Promise<BridgeChoice> {
  return streamBridges(dht, cache, limits, signal).done;
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
