// Finding bridges from the DHT alone (docs/protocol.md §10): get_peers for the discovery infohash,
// then a beacon exchange with each peer it names (BEP-3 handshake, BEP-10 extended handshakes,
// the bridge's key signed over our nonce). Every part is bounded: peers considered, connections
// at once, time per connection and in all, bridges kept. Peers are probed in random order, so an
// announcer cannot put itself first; what fails is counted by reason, never thrown.
import { randomBytes, randomInt } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { connect, type Socket } from 'node:net';
import type DHT from 'bittorrent-dht';
import {
  BeaconFrameError,
  BeaconFrames,
  DISCOVERY_INFOHASH,
  encodeExtendedHandshake,
  encodeHandshake,
  readerHello,
  verifyBeaconAnswer,
  BEACON_NONCE_BYTES,
} from '../../sidecar/formats/bridge-beacon.js';
import { InputError } from './keys.js';
import {
  DEFAULT_DISCOVER_LIMITS,
  type DiscoverLimits,
  type DiscoveredBridge,
  type DiscoveryReport,
  type ProbeFailure,
} from './discover-types.js';

export { DEFAULT_DISCOVER_LIMITS };
export type { DiscoverLimits, DiscoveredBridge, DiscoveryReport, DiscoverySummary, ProbeFailure } from './discover-types.js';

export function checkDiscoverLimits(l: Partial<DiscoverLimits> | undefined): DiscoverLimits {
  const out = { ...DEFAULT_DISCOVER_LIMITS, ...l };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v < 1 || v > 1_000_000)
      throw new InputError(`discovery ${k}: a whole number from 1 to 1000000, not ${JSON.stringify(v)}`);
  }
  return out;
}

/** One beacon exchange. */
export function probeBeacon(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ ok: true; key: Buffer; gateway?: string } | { ok: false; reason: ProbeFailure }> {
  return new Promise((resolve) => {
    const nonce = randomBytes(BEACON_NONCE_BYTES);
    const peerId = Buffer.concat([Buffer.from('-NR0100-'), randomBytes(12)]);
    let s: Socket;
    let settled = false;
    const finish = (r: { ok: true; key: Buffer; gateway?: string } | { ok: false; reason: ProbeFailure }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.destroy();
      resolve(r);
    };
    const onAbort = () => finish({ ok: false, reason: 'timeout' });
    const timer = setTimeout(onAbort, timeoutMs);
    s = connect({ host, port, noDelay: true });
    signal?.addEventListener('abort', onAbort, { once: true });
    s.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: err.code === 'ECONNREFUSED' ? 'refused' : 'closed' }));
    s.on('close', () => finish({ ok: false, reason: 'closed' }));
    s.on('connect', () => {
      s.write(Buffer.concat([encodeHandshake(DISCOVERY_INFOHASH, peerId), encodeExtendedHandshake(readerHello(nonce))]));
    });
    const frames = new BeaconFrames();
    s.on('data', (chunk: Buffer) => {
      try {
        frames.push(chunk);
        for (let item = frames.next(); item && !settled; item = frames.next()) {
          if ('handshake' in item) {
            if (!item.handshake.infoHash.equals(DISCOVERY_INFOHASH)) return finish({ ok: false, reason: 'wrong-infohash' });
            if (!item.handshake.extended) return finish({ ok: false, reason: 'no-extensions' });
          } else if ('extended' in item && item.extended.id === 0) {
            const v = verifyBeaconAnswer(item.extended.payload, nonce);
            return finish(v.ok ? v : { ok: false, reason: v.reason });
          }
        }
      } catch (err) {
        if (err instanceof BeaconFrameError) return finish({ ok: false, reason: 'malformed' });
        throw err;
      }
    });
  });
}

export interface DiscoverRequest {
  limits?: Partial<DiscoverLimits>;
  signal?: AbortSignal;
  /** Each bridge the first time one of its beacons answers. */
  onBridge?: (b: DiscoveredBridge) => void;
}

/**
 * Asks the DHT for the peers of the discovery infohash and probes them (random order, bounded);
 * resolves with the bridges that proved their key, in the order they answered.
 */
export async function discoverBridges(
  dht: DHT,
  req: DiscoverRequest = {},
): Promise<{ bridges: DiscoveredBridge[]; report: DiscoveryReport }> {
  const limits = checkDiscoverLimits(req.limits);
  const t0 = Date.now();
  const seen = new Set<string>();
  const pending: { host: string; port: number }[] = [];
  const bridges = new Map<string, DiscoveredBridge>();
  const report: DiscoveryReport = { peersSeen: 0, probed: 0, answered: 0, bridges: 0, failures: {}, durationMs: 0, stoppedBy: null };
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per probe in flight
  const onOuter = () => {
    report.stoppedBy ??= 'aborted';
    stop.abort();
  };
  if (req.signal?.aborted) onOuter();
  req.signal?.addEventListener('abort', onOuter, { once: true });
  const deadline = setTimeout(() => {
    report.stoppedBy ??= 'time';
    stop.abort();
  }, limits.timeoutMs);

  let lookupDone = false;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onPeer = (peer: { host: string; port: number }, infoHash: Buffer) => {
    if (!Buffer.isBuffer(infoHash) || !infoHash.equals(DISCOVERY_INFOHASH)) return;
    const id = `${peer.host}:${peer.port}`;
    if (seen.has(id) || peer.port <= 0) return;
    if (seen.size >= limits.maxPeers) {
      report.stoppedBy ??= 'max-peers';
      return;
    }
    seen.add(id);
    pending.push(peer);
    poke();
  };
  dht.on('peer', onPeer);
  let abortLookup: (() => void) | undefined;
  abortLookup = (dht as unknown as { lookup(ih: Buffer, cb: (err?: Error | null) => void): () => void }).lookup(DISCOVERY_INFOHASH, () => {
    lookupDone = true;
    poke();
  });
  stop.signal.addEventListener('abort', poke, { once: true });

  const probeOne = async (peer: { host: string; port: number }) => {
    inFlight++;
    report.probed++;
    try {
      const r = await probeBeacon(peer.host, peer.port, limits.connectTimeoutMs, stop.signal);
      if (stop.signal.aborted && !r.ok) return; // cut short by the end, not the peer's fault
      if (!r.ok) {
        report.failures[r.reason] = (report.failures[r.reason] ?? 0) + 1;
        return;
      }
      report.answered++;
      const key = r.key.toString('hex');
      const addr = `${peer.host}:${peer.port}`;
      const known = bridges.get(key);
      if (known) {
        if (known.addresses.length < 8) known.addresses.push(addr);
        return;
      }
      if (bridges.size >= limits.maxBridges) return;
      const b: DiscoveredBridge = { key, addresses: [addr], ...(r.gateway ? { gateway: r.gateway } : {}) };
      bridges.set(key, b);
      req.onBridge?.(b);
      if (bridges.size >= limits.maxBridges) {
        report.stoppedBy ??= 'max-bridges';
        stop.abort();
      }
    } finally {
      inFlight--;
      poke();
    }
  };

  try {
    const probes = new Set<Promise<void>>();
    while (!stop.signal.aborted) {
      while (pending.length > 0 && inFlight < limits.concurrency && !stop.signal.aborted) {
        // A random pending peer: the order announcers or storing nodes chose does not matter.
        const i = randomInt(pending.length);
        const peer = pending[i]!;
        pending[i] = pending[pending.length - 1]!;
        pending.pop();
        const p = probeOne(peer);
        probes.add(p);
        void p.finally(() => probes.delete(p));
      }
      if (lookupDone && pending.length === 0 && inFlight === 0) break;
      await new Promise<void>((r) => (wake = r));
    }
    stop.abort();
    await Promise.all(probes);
  } finally {
    clearTimeout(deadline);
    abortLookup?.();
    dht.off('peer', onPeer);
    req.signal?.removeEventListener('abort', onOuter);
  }
  report.peersSeen = seen.size;
  report.bridges = bridges.size;
  report.durationMs = Date.now() - t0;
  return { bridges: [...bridges.values()], report };
}
