// A Sybil attack on discovery, for tests and the benchmark: one DHT node (stock bittorrent-dht,
// no pacing: an attacker ignores politeness) announces the discovery infohash for many ports of
// 127.0.0.1: ports where nothing listens, listeners that accept and never answer, listeners that
// answer junk (random bytes, another infohash, a replayed signature, an oversized length, a hang
// up), and real beacons with keys of their own (valid answers, no bridge behind them).
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import DHT from 'bittorrent-dht';
import { createLogger } from '../../sidecar/common/log.js';
import { keyFromSeed, verifyEd25519, type Ed25519Key } from '../../sidecar/formats/ed25519.js';
import { DISCOVERY_INFOHASH, beaconAnswer, encodeExtendedHandshake, encodeHandshake } from '../../sidecar/formats/bridge-beacon.js';
import { BeaconServer } from '../../sidecar/discovery/beacon.js';

export interface FakeCounts {
  /** Announced ports where nothing listens. */
  closed: number;
  /** Listeners that accept and never send a byte. */
  silent: number;
  /** Listeners that answer junk, five flavours in turn. */
  junk: number;
  /** Valid beacons with keys of their own. */
  keyed: number;
}

export interface FakeAnnouncers {
  /** The keys of the valid fake beacons. */
  keys: Ed25519Key[];
  announced: number;
  stop(): Promise<void>;
}

const JUNK: ((s: Socket) => void)[] = [
  (s) => s.once('data', () => s.write(randomBytes(200))),
  (s) => s.once('data', () => s.write(encodeHandshake(randomBytes(20), randomBytes(20)))),
  (s) =>
    s.once('data', () => {
      const k = keyFromSeed(randomBytes(32));
      s.write(
        Buffer.concat([
          encodeHandshake(DISCOVERY_INFOHASH, randomBytes(20)),
          encodeExtendedHandshake(beaconAnswer(k.publicKey, k.sign, randomBytes(32))),
        ]),
      );
    }),
  (s) =>
    s.once('data', () => {
      const big = Buffer.alloc(4);
      big.writeUInt32BE(0x7fffffff, 0);
      s.write(Buffer.concat([encodeHandshake(DISCOVERY_INFOHASH, randomBytes(20)), big]));
    }),
  (s) => s.once('data', () => s.end()),
];

async function listen(onConn: (s: Socket) => void, sockets: Set<Socket>): Promise<Server> {
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return server;
}

const port = (s: Server) => (s.address() as { port: number }).port;

export async function startFakeAnnouncers(bootstrap: string[], counts: FakeCounts): Promise<FakeAnnouncers> {
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  const beacons: BeaconServer[] = [];
  const keys: Ed25519Key[] = [];
  const ports: number[] = [];
  const log = createLogger('fake', 'silent');
  const dht = new DHT({ bootstrap, host: false, verify: verifyEd25519 } as ConstructorParameters<typeof DHT>[0]);
  dht.on('error', () => {});
  dht.on('warning', () => {});
  dht.listen(0, '127.0.0.1'); // before the bootstrap binds it elsewhere
  const ready = new Promise<void>((r, j) => {
    const t = setTimeout(() => j(new Error('attacker DHT node did not bootstrap')), 20_000);
    dht.once('ready', () => {
      clearTimeout(t);
      r();
    });
  });
  ready.catch(() => {});
  const stop = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await Promise.all(beacons.map((b) => b.close()));
    await new Promise<void>((r) => dht.destroy(() => r()));
  };
  try {
    for (let i = 0; i < counts.silent; i++) servers.push(await listen(() => {}, sockets));
    for (let i = 0; i < counts.junk; i++) servers.push(await listen(JUNK[i % JUNK.length]!, sockets));
    ports.push(...servers.map(port));
    for (let i = 0; i < counts.keyed; i++) {
      const k = keyFromSeed(randomBytes(32));
      keys.push(k);
      const b = await BeaconServer.start(
        { publicKey: k.publicKey, sign: k.sign },
        { host: '127.0.0.1', port: 0, maxConnections: 64, timeoutMs: 10_000, gatewayUrl: '' },
        log,
      );
      beacons.push(b);
      ports.push(b.port);
    }
    // Closed: ports a listener held a moment ago (taken last, so no listener above reuses one).
    const temp: Server[] = [];
    for (let i = 0; i < counts.closed; i++) temp.push(await listen(() => {}, sockets));
    ports.push(...temp.map(port));
    await Promise.all(temp.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await ready;
    const announce = (p: number) => new Promise<boolean>((r) => dht.announce(DISCOVERY_INFOHASH, p, (err) => r(!err)));
    let announced = 0;
    // The first announce looks the infohash up; the rest reuse its closest nodes and tokens, ten
    // at a time (bursts of hundreds overflow the loopback sockets' buffers and lose packets).
    if (ports.length > 0 && (await announce(ports[0]!))) announced++;
    for (let i = 1; i < ports.length; i += 10) {
      const ok = await Promise.all(ports.slice(i, i + 10).map(announce));
      announced += ok.filter(Boolean).length;
    }
    return { keys, announced, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
