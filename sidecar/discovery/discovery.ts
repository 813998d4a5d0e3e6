// The discovery stage: the beacon and its announcer, started together when `discovery.enabled`
// and the DHT is on, with one status for /status and /metrics.
import type DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { DISCOVERY_INFOHASH } from '../formats/bridge-beacon.js';
import { DiscoveryAnnouncer, type AnnouncerStats } from './announcer.js';
import { BeaconServer, type BeaconIdentity, type BeaconStats } from './beacon.js';

export type DiscoveryStatus = BeaconStats & AnnouncerStats & { infoHash: string };

export class Discovery {
  private constructor(
    private readonly beacon: BeaconServer,
    private readonly announcer: DiscoveryAnnouncer,
  ) {}

  static async start(cfg: Config['discovery'], gatewayUrl: string, dht: DHT, identity: BeaconIdentity, log: Logger): Promise<Discovery> {
    const [host, port] = splitHostPort(cfg.listen);
    const beacon = await BeaconServer.start(
      identity,
      { host, port, maxConnections: cfg.maxConnections, timeoutMs: cfg.handshakeTimeoutMs, gatewayUrl },
      log,
    );
    const announcer = new DiscoveryAnnouncer(dht, () => beacon.port, cfg.announceIntervalSeconds * 1000, log);
    announcer.start();
    log.info({ beaconPort: beacon.port }, 'discovery beacon listening; announcing it in the DHT');
    return new Discovery(beacon, announcer);
  }

  get port(): number {
    return this.beacon.port;
  }

  status(): DiscoveryStatus {
    return { ...this.beacon.status(), ...this.announcer.stats(), infoHash: DISCOVERY_INFOHASH.toString('hex') };
  }

  async stop(): Promise<void> {
    await this.announcer.stop();
    await this.beacon.close();
  }
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}
