// The sidecar's one Mainline DHT node: WebTorrent announces bundles through it and the pointer
// publisher puts BEP-44 items with it. Its bootstrap list comes from the config (Mainline routers
// in production; local nodes in tests, demo and benchmarks).
import DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { verifyEd25519 } from '../formats/ed25519.js';
import { hardenDht } from '../dht/harden.js';
import type { OwnItems } from '../dht/queries.js';
import type { Store } from '../index/store.js';

export interface DhtNodeOptions {
  /** The bridge's signed items: its node never stores or serves older ones of its key. */
  ownItems?: OwnItems;
  /** Count loopback addresses against `dht.maxNodesPerIp` too (tests of the limit). */
  limitLoopback?: boolean;
}

/** The bridge's items as the publisher keeps them in LMDB (pointers, by salt). */
export function storedOwnItems(store: Store, publicKey: Uint8Array): OwnItems {
  return {
    publicKey,
    current: (salt) => {
      if (salt.length === 0) return null; // every item the bridge signs has a salt (and LMDB keys are never empty)
      const rec = store.pointers.get(salt.toString('hex'));
      return rec ? { seq: rec.seq, v: rec.v, sig: rec.sig } : null;
    },
  };
}

export async function startDhtNode(cfg: Config['dht'], log: Logger, opts: DhtNodeOptions = {}): Promise<DHT> {
  // An empty list must mean "none": k-rpc falls back to the public routers on a falsy value.
  const dht = new DHT({
    bootstrap: cfg.bootstrap.length > 0 ? cfg.bootstrap : false,
    host: false,
    verify: verifyEd25519,
    concurrency: cfg.concurrency,
  });
  hardenDht(dht, {
    maxPacketsPerSecondPerNode: cfg.maxPacketsPerSecondPerNode,
    maxNodesPerIp: cfg.maxNodesPerIp,
    limitLoopback: opts.limitLoopback,
    ownItems: opts.ownItems,
  });
  dht.setMaxListeners(0); // every seeded torrent's discovery adds a listener
  dht.on('error', (err: Error) => log.error({ err }, 'DHT error'));
  dht.on('warning', (err: Error) => log.debug({ err: err.message }, 'DHT warning'));
  await new Promise<void>((resolve) => dht.listen(cfg.port, cfg.host, () => resolve()));
  dht.once('ready', () => log.info({ nodes: dht.nodes.count() }, 'DHT bootstrapped'));
  if (cfg.bootstrap.length > 0) rejoinWhenIsolated(dht, log);
  return dht;
}

const REJOIN_FIRST_MS = 1000;
const REJOIN_MAX_MS = 60_000;
const HEALTHY_CHECK_MS = 5000;

/**
 * bittorrent-dht bootstraps once; with no node answering (network down, firewall), it only tries
 * again after its 15-minute bucket check. While the routing table is empty, ask the bootstrap
 * nodes again (after 1 s, doubling to every 60 s), so pointers queued meanwhile go out soon after
 * the DHT is reachable.
 */
function rejoinWhenIsolated(dht: DHT, log: Logger): void {
  let retry = REJOIN_FIRST_MS;
  let isolatedSince: number | null = null;
  const check = () => {
    if ((dht as unknown as { destroyed: boolean }).destroyed) return;
    if (dht.nodes.count() === 0) {
      if (isolatedSince === null) {
        isolatedSince = Date.now();
        log.debug('no DHT node reachable yet: asking the bootstrap nodes again');
      }
      (dht as unknown as { _bootstrap(populate: boolean): void })._bootstrap(true);
      setTimeout(check, retry).unref();
      retry = Math.min(retry * 2, REJOIN_MAX_MS);
      return;
    }
    if (isolatedSince !== null)
      log.info({ nodes: dht.nodes.count(), isolatedSec: Math.round((Date.now() - isolatedSince) / 1000) }, 'DHT reachable again');
    isolatedSince = null;
    retry = REJOIN_FIRST_MS;
    setTimeout(check, HEALTHY_CHECK_MS).unref();
  };
  setTimeout(check, REJOIN_FIRST_MS).unref();
}

export function stopDhtNode(dht: DHT): Promise<void> {
  return new Promise((resolve) => dht.destroy(() => resolve()));
}
