// Bridge discovery in parts: the beacon exchange (against bittorrent-protocol as an independent
// BEP-3/BEP-10 peer), what the beacon refuses, the reader's probe of a beacon with a replayed,
// tampered or foreign answer, discovery through a loopback DHT, and the bridge cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import DHT from 'bittorrent-dht';
import Wire from 'bittorrent-protocol';
import { createLogger } from '../sidecar/common/log.js';
import { keyFromSeed } from '../sidecar/formats/ed25519.js';
import { verifyEd25519 } from '../sidecar/formats/ed25519.js';
import {
  DISCOVERY_INFOHASH,
  beaconAnswer,
  beaconStatement,
  encodeExtendedHandshake,
  encodeHandshake,
  parseReaderHello,
  BeaconFrames,
} from '../sidecar/formats/bridge-beacon.js';
import { BeaconServer } from '../sidecar/discovery/beacon.js';
import { DiscoveryAnnouncer } from '../sidecar/discovery/announcer.js';
import { probeBeacon, discoverBridges } from '../scripts/reader/discover.js';
import { BridgeCache, BRIDGE_CACHE_MAX, defaultBridgeCachePath } from '../scripts/reader/bridge-cache.js';
import { startLocalDht } from './testkit/local-dht.js';
import { hardenDht } from '../sidecar/dht/harden.js';

const log = createLogger('test', 'silent');

function identity() {
  const k = keyFromSeed(randomBytes(32));
  return { publicKey: k.publicKey, sign: k.sign };
}

async function beacon(gatewayUrl = '', extra: Partial<{ maxConnections: number; timeoutMs: number }> = {}) {
  const id = identity();
  const b = await BeaconServer.start(
    id,
    { host: '127.0.0.1', port: 0, maxConnections: extra.maxConnections ?? 16, timeoutMs: extra.timeoutMs ?? 5000, gatewayUrl },
    log,
  );
  return { id, b };
}

/** A TCP server that runs `onConn` per connection; closes every socket at stop. */
async function rawServer(onConn: (s: Socket) => void): Promise<{ port: number; server: Server; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    server,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('beacon: an independent BEP-3/BEP-10 peer (bittorrent-protocol) gets the bridge key signed over its nonce', async () => {
  const { id, b } = await beacon('https://archive.example.org');
  try {
    const nonce = randomBytes(32);
    const socket = connect({ host: '127.0.0.1', port: b.port });
    socket.on('error', () => {});
    type W = NodeJS.ReadWriteStream & {
      extendedHandshake: Record<string, unknown>;
      handshake(ih: Buffer, id: Buffer, ext?: object): void;
      on(ev: string, f: (...a: unknown[]) => void): W;
      destroy(): void;
    };
    const wire = new (Wire as unknown as new () => W)();
    socket.pipe(wire).pipe(socket);
    wire.extendedHandshake['nbt_nonce'] = nonce;
    const got = await new Promise<{ hsInfoHash: string; ext: Record<string, unknown> }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no extended handshake from the beacon')), 10_000);
      let hsInfoHash = '';
      wire.on('handshake', (ih) => (hsInfoHash = String(ih)));
      wire.on('extended', (ext, obj) => {
        if (ext !== 'handshake') return;
        clearTimeout(t);
        resolve({ hsInfoHash, ext: obj as Record<string, unknown> });
      });
      wire.handshake(DISCOVERY_INFOHASH, randomBytes(20));
    });
    socket.destroy();
    wire.destroy();
    assert.equal(got.hsInfoHash, DISCOVERY_INFOHASH.toString('hex'));
    const nbt = got.ext['nbt'] as { k: Uint8Array; sig: Uint8Array; g: Uint8Array };
    assert.deepEqual(Buffer.from(nbt.k), id.publicKey);
    assert.equal(Buffer.from(nbt.g).toString(), 'https://archive.example.org');
    assert.ok(
      verifyEd25519(nbt.sig, beaconStatement(nonce, 'https://archive.example.org'), nbt.k),
      'signature over our nonce and the gateway',
    );
    assert.ok(!verifyEd25519(nbt.sig, beaconStatement(randomBytes(32), 'https://archive.example.org'), nbt.k), 'not over another nonce');
    assert.ok(!verifyEd25519(nbt.sig, beaconStatement(nonce, 'https://evil.example.org'), nbt.k), 'not over another gateway');
    assert.equal(b.status().answered, 1);
  } finally {
    await b.close();
  }
});

test('probe: the reader accepts a real beacon, and refuses replayed, tampered, foreign and junk answers by reason', async () => {
  const { id, b } = await beacon('http://127.0.0.1:8089');
  const other = identity();
  const servers: Awaited<ReturnType<typeof rawServer>>[] = [];
  // Answers with a valid signature, but over a nonce of its own choosing (a replayed answer).
  servers.push(
    await rawServer((s) => {
      s.once('data', () => {
        s.write(encodeHandshake(DISCOVERY_INFOHASH, randomBytes(20)));
        s.write(encodeExtendedHandshake(beaconAnswer(other.publicKey, other.sign, randomBytes(32))));
      });
    }),
  );
  // Echoes the real nonce but claims another gateway than it signed.
  servers.push(
    await rawServer((s) => {
      const frames = new BeaconFrames();
      s.on('data', (c: Buffer) => {
        frames.push(c);
        for (let it = frames.next(); it; it = frames.next()) {
          if ('extended' in it) {
            const nonce = parseReaderHello(it.extended.payload)!;
            const ans = beaconAnswer(other.publicKey, other.sign, nonce, 'https://a.example');
            (ans['nbt'] as Record<string, unknown>)['g'] = 'https://b.example';
            s.write(encodeHandshake(DISCOVERY_INFOHASH, randomBytes(20)));
            s.write(encodeExtendedHandshake(ans));
          }
        }
      });
    }),
  );
  servers.push(await rawServer((s) => s.once('data', () => s.write(encodeHandshake(randomBytes(20), randomBytes(20))))));
  servers.push(await rawServer((s) => s.once('data', () => s.write(randomBytes(300)))));
  servers.push(
    await rawServer((s) =>
      s.once('data', () => {
        s.write(encodeHandshake(DISCOVERY_INFOHASH, randomBytes(20)));
        const big = Buffer.alloc(8);
        big.writeUInt32BE(1 << 30, 0);
        s.write(big);
      }),
    ),
  );
  servers.push(await rawServer(() => {})); // accepts, never answers
  servers.push(await rawServer((s) => s.once('data', () => s.end()))); // hangs up
  try {
    const ok = await probeBeacon('127.0.0.1', b.port, 5000);
    assert.ok(ok.ok);
    assert.deepEqual(ok.key, id.publicKey);
    assert.equal(ok.gateway, 'http://127.0.0.1:8089');
    const reasons = [];
    for (const s of servers.slice(0, 5)) reasons.push(await probeBeacon('127.0.0.1', s.port, 5000));
    assert.deepEqual(
      reasons.map((r) => (r.ok ? 'ok' : r.reason)),
      ['bad-signature', 'bad-signature', 'wrong-infohash', 'malformed', 'malformed'],
    );
    const t0 = Date.now();
    const silent = await probeBeacon('127.0.0.1', servers[5]!.port, 1500);
    const took = Date.now() - t0;
    assert.equal(silent.ok ? 'ok' : silent.reason, 'timeout');
    assert.ok(took >= 1400 && took < 6000, `the timeout fired at its value (${took} ms)`);
    const hung = await probeBeacon('127.0.0.1', servers[6]!.port, 5000);
    assert.equal(hung.ok ? 'ok' : hung.reason, 'closed');
    const closedPort = servers[0]!.port;
    await servers[0]!.stop();
    servers.shift();
    const refused = await probeBeacon('127.0.0.1', closedPort, 5000);
    assert.equal(refused.ok ? 'ok' : refused.reason, 'refused');
  } finally {
    await b.close();
    for (const s of servers) await s.stop();
  }
});

test('beacon: refuses other infohashes, junk and floods, and closes silent connections at its timeout', async () => {
  const { b } = await beacon('', { maxConnections: 4, timeoutMs: 1000 });
  const open = (): Promise<Socket> =>
    new Promise((r) => {
      const s = connect({ host: '127.0.0.1', port: b.port }, () => r(s));
      s.on('error', () => {});
    });
  const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
  try {
    const a = await open();
    a.write(encodeHandshake(randomBytes(20), randomBytes(20)));
    await closed(a);
    const j = await open();
    j.write(randomBytes(100));
    await closed(j);
    const silent = await Promise.all([open(), open(), open(), open()]);
    const extra = await open();
    await closed(extra); // over maxConnections: closed at accept
    const t0 = Date.now();
    await Promise.all(silent.map(closed));
    assert.ok(Date.now() - t0 < 5000);
    const st = b.status();
    assert.equal(st.answered, 0);
    assert.deepEqual(st.refused, { 'wrong-infohash': 1, malformed: 1, busy: 1, timeout: 4 });
    assert.ok((await probeBeacon('127.0.0.1', b.port, 5000)).ok, 'still answers afterwards');
  } finally {
    await b.close();
  }
});

test('discovery through a loopback DHT: announced beacons are found, dead announces counted, budgets hold', async () => {
  const net = await startLocalDht(30);
  const bridges = await Promise.all([beacon(), beacon(), beacon()]);
  const nodes: DHT[] = [];
  const announcers: DiscoveryAnnouncer[] = [];
  const deadPorts: Awaited<ReturnType<typeof rawServer>>[] = [];
  try {
    for (const { b } of bridges) {
      const d = new DHT({ bootstrap: net.bootstrap, host: false, verify: verifyEd25519 } as ConstructorParameters<typeof DHT>[0]);
      hardenDht(d, { maxPacketsPerSecondPerNode: 500 });
      d.on('error', () => {});
      d.listen(0, '127.0.0.1');
      await new Promise<void>((r) => d.once('ready', () => r()));
      nodes.push(d);
      const a = new DiscoveryAnnouncer(d, () => b.port, 3_600_000, log);
      announcers.push(a);
      await a.announceOnce();
      assert.equal(a.stats().announced, 1);
    }
    // Five announces of ports where nothing listens.
    for (let i = 0; i < 5; i++) deadPorts.push(await rawServer(() => {}));
    const ports = deadPorts.map((s) => s.port);
    for (const s of deadPorts) await s.stop();
    await Promise.all(ports.map((p) => new Promise<void>((r) => nodes[0]!.announce(DISCOVERY_INFOHASH, p, () => r()))));

    const reader = new DHT({ bootstrap: net.bootstrap, host: false, verify: verifyEd25519 } as ConstructorParameters<typeof DHT>[0]);
    reader.on('error', () => {});
    reader.listen(0, '127.0.0.1');
    await new Promise<void>((r) => reader.once('ready', () => r()));
    nodes.push(reader);
    const { bridges: found, report } = await discoverBridges(reader, { limits: { timeoutMs: 20_000 } });
    assert.deepEqual(new Set(found.map((f) => f.key)), new Set(bridges.map(({ id }) => id.publicKey.toString('hex'))));
    assert.equal(report.peersSeen, 8);
    assert.equal(report.answered, 3);
    assert.equal(report.failures.refused, 5);
    assert.equal(report.stoppedBy, null);
    // Budgets: 2 bridges at most stops early; 1 peer at most probes one.
    const two = await discoverBridges(reader, { limits: { maxBridges: 2 } });
    assert.equal(two.bridges.length, 2);
    assert.equal(two.report.stoppedBy, 'max-bridges');
    const one = await discoverBridges(reader, { limits: { maxPeers: 1 } });
    assert.equal(one.report.probed, 1);
    assert.equal(one.report.stoppedBy, 'max-peers');
  } finally {
    for (const a of announcers) await a.stop();
    for (const { b } of bridges) await b.close();
    await Promise.all(nodes.map((d) => new Promise<void>((r) => d.destroy(() => r()))));
    await net.stop();
  }
});

test('bridge cache: bounded, ranked by pointer hits, tolerant of a corrupt or foreign file, $XDG_CACHE_HOME', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-cache-'));
  try {
    assert.equal(defaultBridgeCachePath({ XDG_CACHE_HOME: '/x/cache' }), '/x/cache/nostr-bt/bridges.json');
    assert.match(defaultBridgeCachePath({ XDG_CACHE_HOME: 'relative' }), /\.cache\/nostr-bt\/bridges\.json$/);
    const path = join(dir, 'sub', 'bridges.json');
    const c = BridgeCache.load(path);
    assert.equal(c.loadError, null);
    const keys = Array.from({ length: BRIDGE_CACHE_MAX + 50 }, () => randomBytes(32).toString('hex'));
    keys.forEach((k, i) => {
      c.saw(k, `127.0.0.1:${1000 + i}`, undefined, 1_000_000 + i);
    });
    c.hit(keys[0]!, 2_000_000);
    assert.equal(c.save(), null);
    const back = BridgeCache.load(path);
    assert.equal(back.size, BRIDGE_CACHE_MAX);
    assert.equal(back.ranked()[0]!.k, keys[0], 'the bridge that had a pointer first, though seen first');
    assert.ok(back.has(keys.at(-1)!), 'the most recent kept');
    assert.ok(!back.has(keys[1]!), 'the oldest without hits dropped');
    for (const junk of ['{not json', '[]', JSON.stringify({ v: 2, bridges: [] }), '\u0000\u0001']) {
      writeFileSync(path, junk);
      const j = BridgeCache.load(path);
      assert.equal(j.size, 0);
      assert.ok(j.loadError, `reported: ${junk.slice(0, 10)}`);
      j.saw(keys[2]!);
      assert.equal(j.save(), null, 'and replaced on save');
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).bridges.length, 1);
    }
    writeFileSync(
      path,
      JSON.stringify({
        v: 1,
        bridges: [{ k: 'zz' }, { k: keys[3], a: [], first: 1, last: 2, hits: 0 }, { k: keys[4], a: 'x', first: 1, last: 2, hits: 0 }],
      }),
    );
    const partial = BridgeCache.load(path);
    assert.equal(partial.size, 1);
    assert.match(partial.loadError ?? '', /2 malformed entries/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
