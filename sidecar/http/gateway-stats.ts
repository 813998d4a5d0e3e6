// The gateway's counters, for /status (`gateway`) and /metrics (nostr_bt_gateway_*): responses by
// route and status class, web seed bytes, refusals, other bridges' pointer lookups. Routes are a
// fixed set of names (the route table's), so the label sets stay bounded whatever clients ask.
import type { ServerResponse } from 'node:http';
import type { GatewayStatus } from '../ops/status.js';

export type LookupOutcome = keyof GatewayStatus['dhtLookups'];

export class GatewayStats {
  private readonly requests = new Map<string, Record<string, number>>();
  private webSeedBytes = 0;
  private rateLimited = 0;
  private refusedConnections = 0;
  private readonly lookups: GatewayStatus['dhtLookups'] = { hit: 0, miss: 0, fail: 0, cached: 0, busy: 0 };

  /** Counts the response to `req` under `route` once it is sent (or the client went away). */
  observe(route: string, res: ServerResponse): void {
    res.once('close', () => {
      const cls = `${Math.floor(res.statusCode / 100)}xx`;
      let byClass = this.requests.get(route);
      if (!byClass) this.requests.set(route, (byClass = {}));
      byClass[cls] = (byClass[cls] ?? 0) + 1;
    });
  }

  webSeedSent(bytes: number): void {
    this.webSeedBytes += bytes;
  }

  refused(why: 'rate' | 'connections'): void {
    if (why === 'rate') this.rateLimited++;
    else this.refusedConnections++;
  }

  lookup(outcome: LookupOutcome): void {
    this.lookups[outcome]++;
  }

  status(address: string, openConnections: number): GatewayStatus {
    return {
      address,
      openConnections,
      requests: Object.fromEntries([...this.requests].map(([route, byClass]) => [route, { ...byClass }])),
      webSeedBytes: this.webSeedBytes,
      rateLimited: this.rateLimited,
      refusedConnections: this.refusedConnections,
      dhtLookups: { ...this.lookups },
    };
  }
}
