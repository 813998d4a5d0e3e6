// Pointer publishing on a local DHT of 200 bittorrent-dht nodes (127.0.0.1 only), with the
// sidecar's own DHT node and publisher at their default settings: pointers published per second
// (first publication, then the sustained republish of every stored item), DHT packets per item,
// peak packets/s sent to any one node, and from the measured republish rate the time to
// republish 100,000 authors. Baseline in the same run: bittorrent-dht's own put (lookup until
// the 20 closest answered, then put to them), 8 in flight.
//
//   node dist/bench/pointer-bench.js [--quick] [--n=AUTHORS] [--toml='[dht]\nputsPerSecond = 60']
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import type { Socket } from 'node:dgram';
import { parse as parseToml } from 'smol-toml';
import type DHT from 'bittorrent-dht';
import { loadConfig, type Config } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Store } from '../sidecar/index/store.js';
import { Publisher } from '../sidecar/publishing/publisher.js';
import { startDhtNode, stopDhtNode } from '../sidecar/publishing/dht-node.js';
import { pacingStats } from '../sidecar/dht/harden.js';
import { loadIdentity } from '../sidecar/publishing/identity.js';
import { authorSalt, signedBytes } from '../sidecar/formats/pointer-item.js';
import { startLocalDht, type LocalDht } from '../test/testkit/local-dht.js';
import { pubkeyN } from '../test/testkit/events.js';
import { figure, fmt, log, makeTempDir, median, parseArgs, printFigures, runMain, sleep } from './common.js';

const TARGET_AUTHORS = 100_000;
const REPUBLISH_HOURS = 1;
const NODES = 200;

/**
 * Counts, at every receiving node, the packets that arrive from the publisher's node (what a
 * libtorrent node's rate limit sees), and the most any one node got within one calendar second.
 */
class Receivers {
  sends = 0;
  peakPerNode = 0;
  private perSecond = new Map<string, number>();
  private fromPort = -1;

  constructor(net: LocalDht) {
    const socketOf = (d: DHT) => (d as unknown as { _rpc: { socket: { socket: Socket } } })._rpc.socket.socket;
    net.nodes.forEach((d, i) => {
      socketOf(d).on('message', (_buf: Buffer, rinfo: { port: number }) => {
        if (rinfo.port !== this.fromPort) return;
        this.sends++;
        const key = `${Math.floor(Date.now() / 1000)}|${i}`;
        const n = (this.perSecond.get(key) ?? 0) + 1;
        this.perSecond.set(key, n);
        if (n > this.peakPerNode) this.peakPerNode = n;
      });
    });
  }

  reset(fromPort: number): void {
    this.fromPort = fromPort;
    this.sends = 0;
    this.peakPerNode = 0;
    this.perSecond.clear();
    pacingStats.peakPerDestSecond = 0;
  }
}

interface Phase {
  items: number;
  seconds: number;
  /** Items over the whole phase, from the first put started to the last stored. */
  rate: number;
  /** Between the 10th and the 90th percentile of completions: without the start-up and the tail. */
  sustained: number;
  packetsPerItem: number;
  peakSent: number;
  peakReceived: number;
  nodesPerPut: number;
  putMsP50: number;
  failed: number;
  finished: boolean;
}

function phaseLine(label: string, p: Phase): string {
  return (
    `${label}: ${p.items} items in ${fmt(p.seconds, 1)} s = ${fmt(p.rate, 1)} items/s (sustained ${fmt(p.sustained, 1)} items/s), ${fmt(p.packetsPerItem, 1)} packets per item, ` +
    `peak ${p.peakSent} packets/s sent to one node (${p.peakReceived} as the receivers' event loops saw them arrive), ` +
    `stored on ${fmt(p.nodesPerPut, 1)} nodes per put, put latency p50 ${fmt(p.putMsP50)} ms, ${p.failed} failed puts` +
    (p.finished ? '' : ' (DID NOT FINISH in time)')
  );
}

function sustainedRate(doneAt: number[]): number {
  const lo = Math.floor(doneAt.length * 0.1);
  const hi = Math.floor(doneAt.length * 0.9);
  const ms = (doneAt[hi] ?? 0) - (doneAt[lo] ?? 0);
  return hi > lo && ms > 0 ? ((hi - lo) * 1000) / ms : 0;
}

async function sidecarNode(net: LocalDht, dir: string, dhtCfg: Config['dht']) {
  const node = await startDhtNode({ ...dhtCfg, port: 0, host: '127.0.0.1', bootstrap: net.bootstrap }, createLogger('bench', 'silent'));
  const deadline = Date.now() + 10_000;
  while ((node.nodes.count() < 8 || !node.ready) && Date.now() < deadline) await sleep(20);
  return { node, identity: loadIdentity({ generatedKeyFile: join(dir, 'bridge.key') }) };
}

/** Baseline: bittorrent-dht's put (its own lookup), `inFlight` at once, no pace. */
async function stockRound(net: LocalDht, rx: Receivers, items: number, inFlight: number, dhtCfg: Config['dht']): Promise<Phase> {
  const dir = makeTempDir('nostr-bt-ptr-bench-');
  const { node, identity } = await sidecarNode(net, dir, dhtCfg);
  try {
    rx.reset(node.address().port);
    const putMs: number[] = [];
    let stored = 0;
    let failed = 0;
    let next = 0;
    const t0 = Date.now();
    const worker = async () => {
      while (next < items) {
        const salt = authorSalt(pubkeyN(next++));
        const v = { v: 1, n: 0, pg: 1, b: Buffer.alloc(0) };
        const seq = 1;
        const started = Date.now();
        const n = await new Promise<number>((resolve) =>
          node.put({ k: identity.publicKey, salt, seq, v, sig: identity.sign(signedBytes(salt, seq, v)) }, (err, _h, count) =>
            resolve(err ? 0 : count),
          ),
        );
        putMs.push(Date.now() - started);
        stored += n;
        if (n === 0) failed++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const seconds = (Date.now() - t0) / 1000;
    return {
      items,
      seconds,
      rate: items / seconds,
      sustained: items / seconds,
      packetsPerItem: rx.sends / items,
      peakSent: pacingStats.peakPerDestSecond,
      peakReceived: rx.peakPerNode,
      nodesPerPut: stored / items,
      putMsP50: median(putMs),
      failed,
      finished: true,
    };
  } finally {
    await stopDhtNode(node);
  }
}

/** The sidecar's publisher: first publication of `authors` pointers, then a republish of all of them. */
async function publisherRounds(
  net: LocalDht,
  rx: Receivers,
  authors: number,
  dhtCfg: Config['dht'],
): Promise<{ fresh: Phase; republish: Phase }> {
  const dir = makeTempDir('nostr-bt-ptr-bench-');
  const store = Store.open(join(dir, 'index'));
  const { node, identity } = await sidecarNode(net, dir, dhtCfg);
  try {
    // Authors with a few bundles each, as the bundler would leave them.
    await store.root.transaction(() => {
      for (let a = 0; a < authors; a++) {
        const pk = pubkeyN(a);
        for (let b = 0; b < 3; b++)
          store.bundles.putFile(createHash('sha1').update(`${a}:${b}`).digest('hex'), 1_700_000_000_000 + b, pk, { n: 1, bytes: 1, o: 0 });
      }
    });
    const publisher = new Publisher(
      store,
      node,
      identity,
      {
        putsPerSecond: dhtCfg.putsPerSecond,
        maxInFlight: dhtCfg.maxInFlightPuts,
        republishIntervalMs: dhtCfg.republishIntervalSeconds * 1000,
        coalesceMs: 60_000,
      },
      createLogger('bench', 'silent'),
      () => ({ relayUrl: '', authors, events: 0, bundles: 0, newest: null }),
    );
    type PutEvent = { key: string; ok: boolean; nodes: number; ms: number; fresh: boolean };
    let puts: PutEvent[] = [];
    let done = new Set<string>();
    let doneAt: number[] = [];
    publisher.on('put', (p: PutEvent) => {
      puts.push(p);
      if (p.ok && !done.has(p.key)) {
        done.add(p.key);
        doneAt.push(Date.now());
      }
    });
    const items = authors + 1; // and the bridge item
    const budgetMs = Math.max(30_000, (items / dhtCfg.putsPerSecond) * 3000);
    /** From `start` until every item was stored once (distinct items; retries count as packets only). */
    const measure = async (start: () => void | Promise<void>): Promise<Phase> => {
      puts = [];
      done = new Set();
      doneAt = [];
      rx.reset(node.address().port);
      const t0 = Date.now();
      await start();
      const deadline = t0 + budgetMs;
      while (done.size < items && Date.now() < deadline) await sleep(10);
      const seconds = (Date.now() - t0) / 1000;
      const okPuts = puts.filter((p) => p.ok);
      return {
        items: done.size,
        seconds,
        rate: done.size / seconds,
        sustained: sustainedRate(doneAt),
        packetsPerItem: rx.sends / Math.max(1, done.size),
        peakSent: pacingStats.peakPerDestSecond,
        peakReceived: rx.peakPerNode,
        nodesPerPut: okPuts.reduce((s, p) => s + p.nodes, 0) / Math.max(1, okPuts.length),
        putMsP50: median(puts.map((p) => p.ms)),
        failed: puts.length - okPuts.length,
        finished: done.size >= items,
      };
    };
    publisher.start();
    const fresh = await measure(() => publisher.authorsChanged(Array.from({ length: authors }, (_, a) => pubkeyN(a))));
    await publisher.idle(10_000);
    const republish = await measure(() => publisher.republishAll());
    await publisher.stop();
    return { fresh, republish };
  } finally {
    await stopDhtNode(node);
    await store.close();
  }
}

runMain(async () => {
  const args = parseArgs();
  const defaults = loadConfig({ env: {}, configPath: undefined, cwd: '/' }).dht;
  const extra = args.extraToml ? ((parseToml(args.extraToml) as { dht?: Partial<Config['dht']> }).dht ?? {}) : {};
  const dhtCfg: Config['dht'] = { ...defaults, ...extra };
  const atDefaults = Object.keys(extra).length === 0;
  const setting = atDefaults ? 'defaults' : `dht ${JSON.stringify(extra)}`;
  const authors = args.n ?? (args.quick ? 120 : 4000);
  const baselineItems = args.quick ? 16 : 200;
  const load = () =>
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`;
  log(`pointer bench: local DHT of ${NODES} bittorrent-dht nodes on 127.0.0.1; ${load()}`);
  const net = await startLocalDht(NODES);
  try {
    const rx = new Receivers(net);
    const stock = await stockRound(net, rx, baselineItems, 8, dhtCfg);
    log(phaseLine("baseline, bittorrent-dht's own put, 8 in flight", stock));
    const { fresh, republish } = await publisherRounds(net, rx, authors, dhtCfg);
    log(phaseLine(`first publication, ${setting} (${dhtCfg.putsPerSecond} puts/s, ${dhtCfg.maxInFlightPuts} in flight)`, fresh));
    log(phaseLine(`republish of every item, ${setting}`, republish));
    const hours = TARGET_AUTHORS / republish.sustained / 3600;
    const capacity = (NODES * dhtCfg.maxPacketsPerSecondPerNode) / republish.packetsPerItem;
    log(
      `→ ${fmt(TARGET_AUTHORS, 0)} authors republish in ${fmt(hours, 2)} h at the measured sustained ${fmt(republish.sustained, 1)} items/s ` +
        `(this ${NODES}-node DHT takes at most ${fmt(capacity, 1)} items/s at ${dhtCfg.maxPacketsPerSecondPerNode} packets/s per node); ${load()}`,
    );
    const tag = atDefaults ? 'defaults' : 'settings given';
    printFigures(
      'pointer',
      [
        figure(
          `republish rate, sustained (10th–90th percentile of completions), ${NODES}-node DHT (${tag})`,
          republish.sustained,
          'items/s',
          null,
          `≥ ${fmt(TARGET_AUTHORS / (REPUBLISH_HOURS * 3600), 1)}`,
        ),
        figure(`republish rate, whole round incl. start-up and tail (${tag})`, republish.rate, 'items/s'),
        figure(`first publication rate (${tag})`, fresh.rate, 'items/s', stock.rate),
        figure(`DHT packets per republished item (${tag})`, republish.packetsPerItem, 'packets', stock.packetsPerItem),
        figure(`DHT packets per first publication (${tag})`, fresh.packetsPerItem, 'packets', stock.packetsPerItem),
        figure('nodes storing each put', republish.nodesPerPut, 'nodes'),
        figure(`put latency p50, republish (${tag})`, republish.putMsP50, 'ms'),
        figure(
          `peak packets sent to one node in one second (${tag})`,
          Math.max(fresh.peakSent, republish.peakSent),
          'packets/s',
          null,
          `≤ ${dhtCfg.maxPacketsPerSecondPerNode}`,
        ),
        figure(
          `peak packets to one node in one calendar second, as received (${tag})`,
          Math.max(fresh.peakReceived, republish.peakReceived),
          'packets/s',
        ),
        figure(
          `time to republish ${TARGET_AUTHORS} authors on a ${NODES}-node DHT (${tag}, measured sustained rate)`,
          hours,
          'h',
          null,
          `≤ ${REPUBLISH_HOURS} h`,
        ),
        figure(`capacity of this ${NODES}-node DHT at ${dhtCfg.maxPacketsPerSecondPerNode} packets/s per node`, capacity, 'items/s'),
        figure('failed puts (first publication + republish)', fresh.failed + republish.failed, 'puts'),
      ],
      { quick: args.quick, authors, nodes: NODES, complete: fresh.finished && republish.finished },
    );
  } finally {
    await net.stop();
  }
});
