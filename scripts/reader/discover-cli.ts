// The command line of discovery for `nostr-bt resolve` and `crawl` without --bridge: its
// options, the cache file, and the line it writes on stderr.
import type { Command } from 'commander';
import type DHT from 'bittorrent-dht';
import { BridgeCache, defaultBridgeCachePath } from './bridge-cache.js';
import { parseCount, parseSeconds } from './cli-options.js';
import { DEFAULT_DISCOVER_LIMITS, type DiscoverLimits } from './discover.js';
import { chooseBridges, learnFromResolve, type DiscoverySummary } from './find-bridges.js';
import type { ResolveSummary } from './reader-types.js';

export interface DiscoveryCliOpts {
  bridgeCache?: string | false;
  discoveryTimeout?: string;
  discoveryPeers?: string;
  discoveryConcurrency?: string;
  beaconTimeout?: string;
  maxBridges?: string;
}

export function addDiscoveryOptions(cmd: Command): Command {
  const d = DEFAULT_DISCOVER_LIMITS;
  return cmd
    .option(
      '--bridge-cache <file>',
      'bridges seen before, tried first when no --bridge is given (default $XDG_CACHE_HOME/nostr-bt/bridges.json or ~/.cache/nostr-bt/bridges.json)',
    )
    .option('--no-bridge-cache', 'neither read nor write the bridge cache')
    .option('--discovery-timeout <s>', `without --bridge: how long to look for bridges in the DHT (default ${d.timeoutMs / 1000})`)
    .option('--discovery-peers <n>', `without --bridge: announced peers probed at most (default ${d.maxPeers})`)
    .option('--discovery-concurrency <n>', `without --bridge: beacon connections at once (default ${d.concurrency})`)
    .option('--beacon-timeout <s>', `without --bridge: per beacon connection (default ${d.connectTimeoutMs / 1000})`)
    .option('--max-bridges <n>', `without --bridge: bridges asked at most (default ${d.maxBridges})`);
}

export interface CliDiscovery {
  bridges: Buffer[];
  summary: DiscoverySummary;
  /** Records which bridges' pointers led to an author's verified events. */
  learn(summary: Pick<ResolveSummary, 'bridges' | 'bundles'>): void;
  /** Saves the cache. */
  save(): void;
  /** learn, then save. */
  finish(summary: Pick<ResolveSummary, 'bridges' | 'bundles'>): void;
}

/** The discovery limits from the options (InputError naming the option when one is bad). */
export function parseDiscoveryLimits(o: DiscoveryCliOpts): Partial<DiscoverLimits> {
  const limits: Partial<DiscoverLimits> = {};
  if (o.discoveryTimeout) limits.timeoutMs = parseSeconds('--discovery-timeout', o.discoveryTimeout);
  if (o.discoveryPeers) limits.maxPeers = Math.max(1, parseCount('--discovery-peers', o.discoveryPeers));
  if (o.discoveryConcurrency) limits.concurrency = Math.max(1, parseCount('--discovery-concurrency', o.discoveryConcurrency, 1024));
  if (o.beaconTimeout) limits.connectTimeoutMs = parseSeconds('--beacon-timeout', o.beaconTimeout);
  if (o.maxBridges) limits.maxBridges = Math.max(1, parseCount('--max-bridges', o.maxBridges, 1024));
  return limits;
}

export async function discoverForCli(dht: DHT, o: DiscoveryCliOpts, log: (line: string) => void): Promise<CliDiscovery> {
  const limits = parseDiscoveryLimits(o);
  const cache = BridgeCache.load(o.bridgeCache === false ? null : (o.bridgeCache ?? defaultBridgeCachePath()));
  if (cache.loadError) log(`bridge cache: ${cache.loadError}`);
  const { bridges, discovery } = await chooseBridges(dht, cache, limits);
  const fromCache = discovery.chosen.filter((c) => c.from !== 'beacon').length;
  log(
    `discovery: ${discovery.peersSeen} peers announced, ${discovery.probed} probed, ${discovery.bridges} bridges answered` +
      ` (${
        Object.entries(discovery.failures)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ') || 'no failures'
      }) in ${(discovery.durationMs / 1000).toFixed(1)} s` +
      `${discovery.stoppedBy ? `, stopped by ${discovery.stoppedBy}` : ''}; asking ${bridges.length} bridges (${fromCache} from the cache)`,
  );
  const save = () => {
    const err = cache.save();
    if (err) log(`bridge cache: ${err}`);
  };
  return {
    bridges,
    summary: discovery,
    learn: (summary) => learnFromResolve(cache, summary),
    save,
    finish: (summary) => {
      learnFromResolve(cache, summary);
      save();
    },
  };
}
