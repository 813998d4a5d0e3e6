// Announces the bridge's beacon port under the discovery infohash (BEP-5 announce_peer) on its
// DHT node, at start and then every interval; a failed announce (no node reachable yet) is
// retried sooner, with backoff, so a bridge that starts offline becomes findable soon after.
import type DHT from 'bittorrent-dht';
import type { Logger } from 'pino';
import { DISCOVERY_INFOHASH } from '../formats/bridge-beacon.js';

export interface AnnouncerStats {
  announced: number;
  failed: number;
  /** Seconds since the last announce a node took (null: none yet). */
  lastAnnounceAgeSec: number | null;
}

const RETRY_FIRST_MS = 2000;

export class DiscoveryAnnouncer {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;
  private announced = 0;
  private failed = 0;
  private lastOkAt: number | null = null;
  private retryMs = RETRY_FIRST_MS;

  constructor(
    private readonly dht: DHT,
    private readonly port: () => number,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.announceOnce().finally(() => (this.running = null));
    }, ms);
    this.timer.unref();
  }

  /** One announce; resolves when it is over (never rejects). */
  announceOnce(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.stopped || (this.dht as unknown as { destroyed?: boolean }).destroyed) return resolve();
      this.dht.announce(DISCOVERY_INFOHASH, this.port(), (err?: Error | null) => {
        if (this.stopped) return resolve();
        if (err) {
          this.failed++;
          this.log.debug({ err: err.message, retryMs: this.retryMs }, 'discovery announce failed');
          this.schedule(this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, this.intervalMs);
        } else {
          this.announced++;
          this.lastOkAt = Date.now();
          this.retryMs = RETRY_FIRST_MS;
          this.schedule(this.intervalMs);
        }
        resolve();
      });
    });
  }

  stats(): AnnouncerStats {
    return {
      announced: this.announced,
      failed: this.failed,
      lastAnnounceAgeSec: this.lastOkAt === null ? null : Math.round((Date.now() - this.lastOkAt) / 1000),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
