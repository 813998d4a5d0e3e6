// Discovery's limits and reports, apart from the code (no DHT or socket types), for the
// library's declarations.

export interface DiscoverLimits {
  /** Distinct announced peers probed at most. */
  maxPeers: number;
  /** Beacon connections at once. */
  concurrency: number;
  /** Per connection: connect, handshakes, answer. */
  connectTimeoutMs: number;
  /** The whole discovery (DHT lookup and probes). */
  timeoutMs: number;
  /** Stop once this many distinct bridge keys answered. */
  maxBridges: number;
}

export const DEFAULT_DISCOVER_LIMITS: DiscoverLimits = {
  maxPeers: 2000,
  concurrency: 128,
  connectTimeoutMs: 3000,
  timeoutMs: 30_000,
  maxBridges: 64,
};

export type ProbeFailure =
  | 'refused'
  | 'timeout'
  | 'closed'
  | 'malformed'
  | 'wrong-infohash'
  | 'no-extensions'
  | 'not-a-dict'
  | 'no-beacon'
  | 'bad-key'
  | 'bad-gateway'
  | 'bad-signature';

export interface DiscoveredBridge {
  /** The bridge's ed25519 key, 64 hex. */
  key: string;
  /** Its public gateway URL, if it signed one. */
  gateway?: string;
  /** Beacon addresses ("host:port") that answered with this key. */
  addresses: string[];
}

export interface DiscoveryReport {
  /** Distinct peers the DHT named for the discovery infohash. */
  peersSeen: number;
  probed: number;
  /** Peers that answered with a valid signed key. */
  answered: number;
  bridges: number;
  failures: Partial<Record<ProbeFailure, number>>;
  durationMs: number;
  /** What ended it early: the deadline, the peer budget, enough bridges, or an abort. */
  stoppedBy: 'time' | 'max-peers' | 'max-bridges' | 'aborted' | null;
}

/** Discovery as resolve and crawl report it: the probe report and the bridges chosen. */
export interface DiscoverySummary extends DiscoveryReport {
  /** Bridges chosen, in order: key (hex) and where it came from. */
  chosen: { key: string; from: 'cache' | 'beacon' | 'cache+beacon'; gateway?: string }[];
  cache: { path: string | null; entries: number; error: string | null };
}
