// Bridge discovery on a local DHT of 200 bittorrent-dht nodes (127.0.0.1 only): k bridges (each
// its own hardened DHT node, the sidecar's beacon and announcer) announce the discovery
// infohash; a fresh reader node runs discoverBridges (the code `nostr-bt resolve` runs without
// --bridge) and we time how long until all k proved their key, and until discovery ended.
// Baseline in the same run: the same lookups with no attacker; then with 1,000 fake announcers
// (400 closed ports, 300 silent listeners, 250 junk answers, 50 valid beacons with keys of their
// own: test/testkit/fake-announcers.ts). Three rounds each, median and range.
//
//   node dist/bench/discovery-bench.js [--quick]
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import DHT from 'bittorrent-dht';
import { createLogger } from '../sidecar/common/log.js';
import { hardenDht } from '../sidecar/dht/harden.js';
import { keyFromSeed, verifyEd25519 } from '../sidecar/formats/ed25519.js';
import { BeaconServer } from '../sidecar/discovery/beacon.js';
import { DiscoveryAnnouncer } from '../sidecar/discovery/announcer.js';
import { discoverBridges, DEFAULT_DISCOVER_LIMITS } from '../scripts/reader/discover.js';
import { startLocalDht } from '../test/testkit/local-dht.js';
import { startFakeAnnouncers } from '../test/testkit/fake-announcers.js';
import { figure, fmt, log, median, parseArgs, printFigures, runMain } from './common.js';

const quiet = createLogger('bench', 'silent');

function node(bootstrap: string[]): Promise<DHT> {
  const d = new DHT({ bootstrap, host: false, verify: verifyEd25519 } as ConstructorParameters<typeof DHT>[0]);
  hardenDht(d, { maxPacketsPerSecondPerNode: 500 });
  d.on('error', () => {});
  d.on('warning', () => {});
  d.listen(0, '127.0.0.1');
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('DHT node did not bootstrap')), 30_000);
    d.once('ready', () => (clearTimeout(t), resolve(d)));
  });
}

const stopNode = (d: DHT) => new Promise<void>((r) => d.destroy(() => r()));

interface Round {
  allFoundMs: number;
  endMs: number;
  probed: number;
  peers: number;
  found: number;
}

async function round(bootstrap: string[], keys: Set<string>, connectTimeoutMs: number): Promise<Round> {
  const reader = await node(bootstrap);
  try {
    const t0 = Date.now();
    let allFoundMs = NaN;
    const seen = new Set<string>();
    const { report } = await discoverBridges(reader, {
      limits: { connectTimeoutMs, timeoutMs: 120_000 },
      onBridge: (b) => {
        if (keys.has(b.key)) seen.add(b.key);
        if (seen.size === keys.size && Number.isNaN(allFoundMs)) allFoundMs = Date.now() - t0;
      },
    });
    return { allFoundMs, endMs: report.durationMs, probed: report.probed, peers: report.peersSeen, found: seen.size };
  } finally {
    await stopNode(reader);
  }
}

const spread = (xs: number[]) => `${fmt(median(xs))} ms (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;

runMain(async () => {
  const args = parseArgs();
  const nodes = args.quick ? 60 : 200;
  const k = args.quick ? 3 : 5;
  const fakes = args.quick ? { closed: 80, silent: 60, junk: 50, keyed: 10 } : { closed: 400, silent: 300, junk: 250, keyed: 50 };
  const fakeTotal = fakes.closed + fakes.silent + fakes.junk + fakes.keyed;
  const rounds = 3;
  const connectTimeoutMs = DEFAULT_DISCOVER_LIMITS.connectTimeoutMs;
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
  log(
    `discovery bench: ${nodes}-node local DHT, ${k} bridges, then ${fakeTotal} fake announcers; beacon timeout ${connectTimeoutMs} ms, ${DEFAULT_DISCOVER_LIMITS.concurrency} at once (the reader's defaults); load average ${load()}`,
  );
  const net = await startLocalDht(nodes);
  const bridgeNodes: DHT[] = [];
  const beacons: BeaconServer[] = [];
  const announcers: DiscoveryAnnouncer[] = [];
  let attack: Awaited<ReturnType<typeof startFakeAnnouncers>> | null = null;
  try {
    const keys = new Set<string>();
    for (let i = 0; i < k; i++) {
      const key = keyFromSeed(randomBytes(32));
      keys.add(key.publicKey.toString('hex'));
      const d = await node(net.bootstrap);
      bridgeNodes.push(d);
      const b = await BeaconServer.start(
        { publicKey: key.publicKey, sign: key.sign },
        { host: '127.0.0.1', port: 0, maxConnections: 64, timeoutMs: 10_000, gatewayUrl: '' },
        quiet,
      );
      beacons.push(b);
      const a = new DiscoveryAnnouncer(d, () => b.port, 3_600_000, quiet);
      announcers.push(a);
      await a.announceOnce();
    }
    const clean: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = await round(net.bootstrap, keys, connectTimeoutMs);
      clean.push(r);
      log(
        `  no attacker, round ${i + 1}: all ${r.found}/${k} bridges in ${fmt(r.allFoundMs)} ms, discovery over in ${fmt(r.endMs)} ms (${r.peers} peers, ${r.probed} probed)`,
      );
    }
    const t0 = Date.now();
    attack = await startFakeAnnouncers(net.bootstrap, fakes);
    log(`  ${attack.announced} fake announces in ${fmt(Date.now() - t0)} ms; load average ${load()}`);
    const hostile: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = await round(net.bootstrap, keys, connectTimeoutMs);
      hostile.push(r);
      log(
        `  ${fakeTotal} fakes, round ${i + 1}: all ${r.found}/${k} bridges in ${fmt(r.allFoundMs)} ms, discovery over in ${fmt(r.endMs)} ms (${r.peers} peers, ${r.probed} probed)`,
      );
    }
    const cf = clean.map((r) => r.allFoundMs);
    const hf = hostile.map((r) => r.allFoundMs);
    const ce = clean.map((r) => r.endMs);
    const he = hostile.map((r) => r.endMs);
    log(
      `→ all ${k} bridges found: ${spread(cf)} without, ${spread(hf)} with ${fakeTotal} fake announcers; discovery over: ${spread(ce)} / ${spread(he)}; load average ${load()}`,
    );
    printFigures(
      'discovery',
      [
        figure(`time to find all ${k} bridges, ${nodes}-node DHT, no attacker (median of ${rounds})`, median(cf), 'ms'),
        figure(`time to find all ${k} bridges among ${fakeTotal} fake announcers (median of ${rounds})`, median(hf), 'ms', median(cf)),
        figure(`whole discovery (every announced peer probed), ${fakeTotal} fake announcers`, median(he), 'ms', median(ce)),
        figure('bridges found, worst round with fake announcers', Math.min(...hostile.map((r) => r.found)), 'bridges', null, `== ${k}`),
        figure('peers probed per discovery with fake announcers', median(hostile.map((r) => r.probed)), 'peers'),
      ],
      { quick: args.quick, nodes, bridges: k, fakes: fakeTotal, rounds: { clean, hostile } },
    );
  } finally {
    await attack?.stop();
    for (const a of announcers) await a.stop();
    for (const b of beacons) await b.close();
    await Promise.all(bridgeNodes.map(stopNode));
    await net.stop();
  }
});
