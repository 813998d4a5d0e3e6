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
import { loadIdentity } from '../sidecar/identity.js';
import { startLocalDht } from '../test/support/local-dht.js';
import { pubkeyN } from '../test/support/events.js';
import { figure, fmt, log, makeTempDir, parseArgs, printFigures, runMain, sleep } from './common.js';

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

async function publishRound(label: string, authors: number, putsPerSecond: number, nodes: number): Promise<{ rate: number; packetsPerItem: number; peakPerNode: number; nodesStored: number }> {
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
      { putsPerSecond, maxInFlight: 8, republishIntervalMs: 3600_000, coalesceMs: 0 },
      log0,
      () => ({ relayUrl: '', authors, events: 0, bundles: 0, newest: null }),
    );
    const socketOf = (d: unknown) => (d as { _rpc: { socket: { socket: Socket } } })._rpc.socket.socket;
    const sends = instrument(dht.nodes.map(socketOf), node.address().port);
    let stored = 0;
    let puts = 0;
    publisher.on('put', (p: { ok: boolean; nodes: number }) => {
      puts++;
      stored += p.nodes;
    });
    const t0 = Date.now();
    publisher.start();
    await publisher.authorsChanged(Array.from({ length: authors }, (_, a) => pubkeyN(a)));
    const ok = await publisher.idle(Math.max(60_000, (authors / putsPerSecond) * 3000));
    const seconds = (Date.now() - t0) / 1000;
    await publisher.stop();
    const rate = authors / seconds;
    log(
      `${label}: ${authors} authors on ${nodes} nodes at ≤ ${putsPerSecond} puts/s: ${fmt(rate, 1)} pointers/s, ` +
        `${fmt(sends.sends / Math.max(1, puts), 1)} packets per item, peak ${sends.peakPerDest} packets/s to one node, ` +
        `stored on ${fmt(stored / Math.max(1, puts), 1)} nodes per put${ok ? '' : ' (did not finish in time)'}`,
    );
    return { rate, packetsPerItem: sends.sends / Math.max(1, puts), peakPerNode: sends.peakPerDest, nodesStored: stored / Math.max(1, puts) };
  } finally {
    await stopDhtNode(node);
    await store.close();
    await dht.stop();
  }
}

runMain(async () => {
  const args = parseArgs();
  const nodes = 200;
  const defaultRate = loadConfig({ env: {}, configPath: undefined, cwd: '/' }).dht.putsPerSecond;
  const authors = args.n ?? (args.quick ? 200 : 2000);
  log(`pointer bench: local DHT of ${nodes} bittorrent-dht nodes on 127.0.0.1`);
  // Unpaced (the DHT's own limit: 8 puts in flight) against the default pace, same run.
  const burst = await publishRound('unpaced', authors, 1000, nodes);
  const paced = await publishRound('default pace', Math.min(authors, args.quick ? 100 : 600), defaultRate, nodes);
  const hours = TARGET_AUTHORS / paced.rate / 3600;
  log(`→ republishing ${TARGET_AUTHORS} authors at the default pace takes ${fmt(hours, 2)} h (goal: within the 1 h interval)`);
  printFigures('pointer', [
    figure('pointers published/s (unpaced)', burst.rate, 'items/s'),
    figure('pointers published/s (default pace)', paced.rate, 'items/s', burst.rate),
    figure('DHT packets per item', paced.packetsPerItem, 'packets'),
    figure('nodes storing each put', paced.nodesStored, 'nodes'),
    figure('peak packets/s to one node (default pace)', paced.peakPerNode, 'packets/s', null, '≤ 5'),
    figure('peak packets/s to one node (unpaced)', burst.peakPerNode, 'packets/s'),
    figure(`time to republish ${TARGET_AUTHORS} authors at the default pace`, hours, 'h', null, '≤ 1 h'),
  ]);
});
