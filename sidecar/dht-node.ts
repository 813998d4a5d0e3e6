// The sidecar's one Mainline DHT node: WebTorrent announces bundles through it and the pointer
// publisher puts BEP-44 items with it. Its bootstrap list comes from the config (Mainline routers
// in production; local nodes in tests, demo and benchmarks).
import DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { verifyEd25519 } from './ed25519.js';
import { hardenDht } from './dht-harden.js';

export async function startDhtNode(cfg: Config['dht'], log: Logger): Promise<DHT> {
  // An empty list must mean "none": k-rpc falls back to the public routers on a falsy value.
  const dht = new DHT({
    bootstrap: cfg.bootstrap.length > 0 ? cfg.bootstrap : false,
    host: false,
    verify: verifyEd25519,
    concurrency: cfg.concurrency,
  });
  hardenDht(dht, { maxPacketsPerSecondPerNode: cfg.maxPacketsPerSecondPerNode });
  dht.setMaxListeners(0); // every seeded torrent's discovery adds a listener
  dht.on('error', (err: Error) => log.error({ err }, 'DHT error'));
  dht.on('warning', (err: Error) => log.debug({ err: err.message }, 'DHT warning'));
  await new Promise<void>((resolve) => dht.listen(cfg.port, cfg.host, () => resolve()));
  dht.once('ready', () => log.info({ nodes: dht.nodes.count() }, 'DHT bootstrapped'));
  return dht;
}

export function stopDhtNode(dht: DHT): Promise<void> {
  return new Promise((resolve) => dht.destroy(() => resolve()));
}
