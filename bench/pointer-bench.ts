// Pointer publishing on a local DHT of ≥ 200 bittorrent-dht nodes (127.0.0.1 only):
// pointers published per second, DHT packets per item, peak packets/s sent to any one node, and
// from those the time to republish 100,000 authors at the default rate.
//
//   node dist/bench/pointer-bench.js [--quick] [--n=AUTHORS]
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Socket } from 'node:dgram';
import { loadConfig } from '../sidecar/config.js';
import { createLogger } from '../sidecar/log.js';
import { Store } from '../sidecar/store.js';
import { Publisher } from '../sidecar/publisher.js';
import { startDhtNode, stopDhtNode } from '../sidecar/dht-node.js';
import { pacingStats } from '../sidecar/dht-harden.js';
import { loadIdentity } from '../sidecar/identity.js';
import { startLocalDht } from '../test/support/local-dht.js';
import { pubkeyN } from '../test/support/events.js';
import { figure, fmt, log, makeTempDir, median, parseArgs, printFigures, runMain, sleep } from './common.js';

const TARGET_AUTHORS = 100_000;

interface SendLog {
  sends: number;
  perDestSecond: Map<string, number>;
  peakPerDest: number;
}

/**
 * Counts, at every receiving node, the packets that arrive from the publisher's node (what a
 * libtorrent node's rate limit sees), and the most any one node got within one second.
 */
function instrument(receivers: Socket[], fromPort: number): SendLog {
  const stats: SendLog = { sends: 0, perDestSecond: new Map(), peakPerDest: 0 };
  receivers.forEach((sock, i) => {
    sock.on('message', (_buf: Buffer, rinfo: { port: number }) => {
      if (rinfo.port !== fromPort) return;
      stats.sends++;
      const key = `${Math.floor(Date.now() / 1000)}|${i}`;
      const n = (stats.perDestSecond.get(key) ?? 0) + 1;
      stats.perDestSecond.set(key, n);
      if (n > stats.peakPerDest) stats.peakPerDest = n;
    });
  });
  return stats;
}

async function publishRound(label: string, authors: number, putsPerSecond: number, maxInFlight: number, nodes: number): Promise<{ rate: number; packetsPerItem: number; peakPerNode: number; peakSent: number; nodesStored: number; putMsP50: number }> {
  const dir = makeTempDir('nostr-bt-ptr-bench-');
  const dht = await startLocalDht(nodes);
  const store = Store.open(join(dir, 'index'));
  const config = loadConfig({ dataDir: dir, env: {}, overrides: { dht: { port: 0, host: '127.0.0.1', bootstrap: dht.bootstrap } } });
  const log0 = createLogger('bench', 'silent');
  const node = await startDhtNode(config.dht, log0);
  try {
    const deadline = Date.now() + 10_000;
    while (node.nodes.count() < 8 && Date.now() < deadline) await sleep(20);
    const identity = loadIdentity({ generatedKeyFile: join(dir, 'bridge.key') });
    // Authors with a few bundles each, as the bundler would leave them.
    await store.root.transaction(() => {
      for (let a = 0; a < authors; a++) {
        const pk = pubkeyN(a);
        for (let b = 0; b < 3; b++) {
          const ih = createHash('sha1').update(`${a}:${b}`).digest('hex');
          store.authorBundles.put([pk, 1_700_000_000_000 + b, ih], null);
        }
      }
    });
    const publisher = new Publisher(
      store,
      node,
      identity,
      { putsPerSecond, maxInFlight, republishIntervalMs: 3600_000, coalesceMs: 0 },
      log0,
      () => ({ relayUrl: '', authors, events: 0, bundles: 0, newest: null }),
    );
    const socketOf = (d: unknown) => (d as { _rpc: { socket: { socket: Socket } } })._rpc.socket.socket;
    const sends = instrument(dht.nodes.map(socketOf), node.address().port);
    let stored = 0;
    let puts = 0;
    const putMs: number[] = [];
    publisher.on('put', (p: { ok: boolean; nodes: number; ms: number }) => {
      puts++;
      stored += p.nodes;
      putMs.push(p.ms);
    });
    pacingStats.peakPerDestSecond = 0;
    const t0 = Date.now();
    publisher.start();
    await publisher.authorsChanged(Array.from({ length: authors }, (_, a) => pubkeyN(a)));
    const ok = await publisher.idle(Math.max(60_000, (authors / putsPerSecond) * 3000));
    const seconds = (Date.now() - t0) / 1000;
    await publisher.stop();
    const rate = authors / seconds;
    const putMsP50 = median(putMs);
    log(
      `${label}: ${authors} authors on ${nodes} nodes at ≤ ${putsPerSecond} puts/s, ${maxInFlight} in flight: ${fmt(rate, 1)} pointers/s, ` +
        `${fmt(sends.sends / Math.max(1, puts), 1)} packets per item, peak ${pacingStats.peakPerDestSecond} packets/s sent to one node ` +
        `(${sends.peakPerDest} as the receivers' event loops saw them arrive), stored on ${fmt(stored / Math.max(1, puts), 1)} nodes per put, ` +
        `put latency p50 ${fmt(putMsP50)} ms${ok ? '' : ' (did not finish in time)'}`,
    );
    return { rate, packetsPerItem: sends.sends / Math.max(1, puts), peakPerNode: sends.peakPerDest, peakSent: pacingStats.peakPerDestSecond, nodesStored: stored / Math.max(1, puts), putMsP50 };
  } finally {
    await stopDhtNode(node);
    await store.close();
    await dht.stop();
  }
}

runMain(async () => {
  const args = parseArgs();
  const nodes = 200;
  const defaults = loadConfig({ env: {}, configPath: undefined, cwd: '/' }).dht;
  const defaultRate = defaults.putsPerSecond;
  const authors = args.n ?? (args.quick ? 200 : 2000);
  log(`pointer bench: local DHT of ${nodes} bittorrent-dht nodes on 127.0.0.1`);
  // Unpaced (8 puts in flight, no pace) against the defaults (pace and puts in flight), same run.
  const burst = await publishRound('unpaced', authors, 1000, 8, nodes);
  const paced = await publishRound('default pace', Math.min(authors, args.quick ? 100 : 600), defaultRate, defaults.maxInFlightPuts, nodes);
  // What a DHT of this size can take at 5 packets/s per node, and the time at the default pace
  // where that is not the limit (Mainline: millions of nodes, so a put's ~50 packets land on
  // nodes that see ~one packet each); puts in flight needed = pace × put latency.
  const capacity = (nodes * 5) / paced.packetsPerItem;
  const hoursHere = TARGET_AUTHORS / paced.rate / 3600;
  const hoursAtPace = TARGET_AUTHORS / defaultRate / 3600;
  const inFlightNeeded = (defaultRate * paced.putMsP50) / 1000;
  log(`→ this ${nodes}-node DHT takes at most ${fmt(capacity, 1)} items/s at 5 packets/s per node; measured ${fmt(paced.rate, 1)} items/s: ${fmt(TARGET_AUTHORS, 0)} authors in ${fmt(hoursHere, 2)} h here`);
  log(
    `→ at the default pace (${defaultRate} puts/s) ${fmt(TARGET_AUTHORS, 0)} authors take ${fmt(hoursAtPace, 2)} h where the per-node limit is not binding; ` +
      `that needs ${fmt(inFlightNeeded, 0)} puts in flight at this put latency (default dht.maxInFlightPuts ${defaults.maxInFlightPuts})`,
  );
  printFigures('pointer', [
    figure('pointers published/s (unpaced, 8 in flight)', burst.rate, 'items/s'),
    figure('pointers published/s (defaults)', paced.rate, 'items/s', burst.rate),
    figure('DHT packets per item', paced.packetsPerItem, 'packets'),
    figure('nodes storing each put', paced.nodesStored, 'nodes'),
    figure('put latency p50 (defaults)', paced.putMsP50, 'ms'),
    figure('peak packets sent to one node in one second (defaults)', paced.peakSent, 'packets/s', null, '≤ 5'),
    figure('peak packets to one node in one second, as received (defaults)', paced.peakPerNode, 'packets/s'),
    figure('peak packets sent to one node in one second (unpaced)', burst.peakSent, 'packets/s', null, '≤ 5'),
    figure(`capacity of this ${nodes}-node DHT at 5 packets/s per node`, capacity, 'items/s'),
    figure(`time to republish ${TARGET_AUTHORS} authors on this ${nodes}-node DHT`, hoursHere, 'h'),
    figure(`time to republish ${TARGET_AUTHORS} authors at the default pace (per-node limit not binding)`, hoursAtPace, 'h', null, '≤ 1 h'),
    figure('puts in flight needed for the default pace at this latency', inFlightNeeded, 'puts', defaults.maxInFlightPuts, `≤ ${defaults.maxInFlightPuts} (dht.maxInFlightPuts)`),
  ]);
});
