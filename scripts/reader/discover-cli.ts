// The command line of discovery for `nostr-bt resolve` and `crawl` without --bridge: its
// options, the cache file, and the line it writes on stderr.
import type { Command } from 'commander';
import type DHT from 'bittorrent-dht';
import { BridgeCache, defaultBridgeCachePath } from './bridge-cache.js';
import { parseCount, parseSeconds } from './cli-options.js';
import { DEFAULT_DISCOVER_LIMITS, type DiscoverLimits } from './discover.js';
import { learnFromResolve, streamBridges, type DiscoverySummary } from './find-bridges.js';
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

/** Discovery for the CLI with its bridges handed over as they are found; `ended` when it is over (the stderr line written). */
export function discoverStreamForCli(
  dht: DHT,
  o: DiscoveryCliOpts,
  log: (line: string) => void,
): { bridges: AsyncIterable<Buffer>; ended: Promise<CliDiscovery> } {
  const limits = parseDiscoveryLimits(o);
  const cache = BridgeCache.load(o.bridgeCache === false ? null : (o.bridgeCache ?? defaultBridgeCachePath()));
  if (cache.loadError) log(`bridge cache: ${cache.loadError}`);
  const feed = streamBridges(dht, cache, limits);
  const ended = feed.done.then(({ bridges, discovery }): CliDiscovery => {
    const fromCache = discovery.chosen.filter((c) => c.from !== 'beacon').length;
    log(
      `discovery: ${discovery.peersSeen} peers announced, ${discovery.probed} probed, ${discovery.bridges} bridges answered` +
        ` (${
          Object.entries(discovery.failures)
            .map(([k, n]) => `${n} ${k}`)
            .join(', ') || 'no failures'
        }) in ${(discovery.durationMs / 1000).toFixed(1)} s` +
        `${discovery.stoppedBy ? `, stopped by ${discovery.stoppedBy}` : ''}; asked ${bridges.length} bridges (${fromCache} from the cache)`,
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
  });
  ended.catch(() => {}); // the feed fails too; whoever awaits `ended` still gets the error
  return { bridges: feed.bridges, ended };
}

/** Discovery to its end, then the bridges to ask. */
export function discoverForCli(dht: DHT, o: DiscoveryCliOpts, log: (line: string) => void): Promise<CliDiscovery> {
  return discoverStreamForCli(dht, o, log).ended;
}
