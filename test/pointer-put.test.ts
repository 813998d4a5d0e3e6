// How pointers are put (sidecar/dht/put.ts, dht/lookup.ts): on exactly the 8 closest nodes of a
// local DHT of real bittorrent-dht nodes; a republish starts at the nodes that stored the item and
// costs 8 gets + 8 puts; nodes that left are replaced by the next closest; a node our pacer holds
// packets for is passed over; libtorrent (an independent DHT implementation) accepts our puts
// and serves the item back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import bencode from 'bencode';
import { join } from 'node:path';
import type DHT from 'bittorrent-dht';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { startDhtNode, stopDhtNode } from '../sidecar/publishing/dht-node.js';
import { pacerOf } from '../sidecar/dht/harden.js';
import { ItemPutter, type SignedItem } from '../sidecar/dht/put.js';
import { lookupClosest, rpcOf, type Contact } from '../sidecar/dht/lookup.js';
import { keyFromSeed, verifyEd25519 } from '../sidecar/formats/ed25519.js';
import { authorSalt, signedBytes, targetOf } from '../sidecar/formats/pointer-item.js';
import { startLocalDht, dhtGet } from './testkit/local-dht.js';
import { DIST } from './testkit/sidecar-process.js';
import { pubkeyN } from './testkit/events.js';

const owner = keyFromSeed(Buffer.alloc(32, 9));

function item(n: number, seq = 1): SignedItem {
  const salt = authorSalt(pubkeyN(n));
  const v = { v: 1, n: 0, pg: 1, b: Buffer.alloc(0) };
  return { k: owner.publicKey, salt, seq, v, sig: owner.sign(signedBytes(salt, seq, v)) };
}

async function ourNode(bootstrap: string[]): Promise<DHT> {
  const cfg = loadConfig({ env: {}, cwd: '/', overrides: { dht: { bootstrap, port: 0, host: '127.0.0.1' } } }).dht;
  const node = await startDhtNode(cfg, createLogger('test', 'silent'));
  const deadline = Date.now() + 10_000;
  while (!node.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return node;
}

function closest(nodes: DHT[], target: Buffer, n: number): number[] {
  const dist = (d: DHT) => xorDist(d.nodeId, target);
  return nodes
    .filter((d) => !d.destroyed)
    .sort((a, b) => Buffer.compare(dist(a), dist(b)))
    .slice(0, n)
    .map((d) => d.address().port)
    .sort();
}

function xorDist(a: Uint8Array, b: Buffer): Buffer {
  return Buffer.from(Buffer.from(a).map((x, i) => x ^ b[i]!));
}

const ports = (cs: Contact[]) => cs.map((c) => c.port).sort();

test('puts land on the 8 closest nodes; a republish costs 8 gets + 8 puts; departed nodes are replaced by the next closest; a node our pacer holds packets for is passed over', {
  timeout: 60_000,
}, async () => {
  const net = await startLocalDht(30);
  const node = await ourNode(net.bootstrap);
  const byPort = new Map(net.nodes.map((d) => [d.address().port, d]));
  try {
    const putter = new ItemPutter(node);
    const it = item(1);
    const target = targetOf(it.k, it.salt);
    const first = await putter.put(it);
    assert.equal(first.error, null);
    assert.equal(first.reusedRoute, false);
    assert.equal(first.stored, 8);
    assert.deepEqual(ports(first.holders), closest(net.nodes, target, 8), 'stored on exactly the 8 closest nodes');
    const reader = net.nodes.find((d) => !first.holders.some((h) => h.port === d.address().port))!;
    const got = await dhtGet(reader, target, it.salt);
    assert.ok(
      got && got.seq === 1 && verifyEd25519(got.sig!, signedBytes(it.salt, 1, got.v), owner.publicKey),
      'another node reads it back',
    );

    const again = await putter.put(it);
    assert.equal(again.reusedRoute, true);
    assert.equal(again.stored, 8, 'nodes that hold this seq count as storing it (302)');
    assert.equal(again.queries, 16, 'republish: 8 gets for write tokens + 8 puts');

    // Three holders leave: the republish still ends on the 8 closest nodes still there.
    for (const h of first.holders.slice(0, 3)) {
      const d = byPort.get(h.port)!;
      await new Promise<void>((r) => d.destroy(() => r()));
    }
    const afterChurn = await putter.put(item(1, 2));
    assert.equal(afterChurn.stored, 8);
    const stayed = ports(first.holders.slice(3));
    assert.deepEqual(
      ports(afterChurn.holders).filter((p) => stayed.includes(p)),
      stayed,
      'the holders still there store it again',
    );
    assert.ok(
      !afterChurn.holders.some((h) => first.holders.slice(0, 3).some((g) => g.port === h.port)),
      'departed nodes replaced by others',
    );

    // The closest node of another item has a backlog in our pacer (5 packets/s per node): passed over.
    const it3 = item(3);
    const t3 = targetOf(it3.k, it3.salt);
    const [hot] = closest(net.nodes, t3, 1);
    const rpc = rpcOf(node);
    const hotContact = { id: Buffer.from(byPort.get(hot!)!.nodeId), host: '127.0.0.1', port: hot! };
    for (let i = 0; i < 12; i++) rpc.query(hotContact, { q: 'ping', a: {} }, () => {});
    assert.ok(pacerOf(node)!.delayMs('127.0.0.1', hot!) > 1200, 'packets to that node wait in the pacer');
    const third = await putter.put(it3);
    assert.equal(third.stored, 8);
    assert.ok(!third.holders.some((h) => h.port === hot), 'the node with a backlog was passed over');
    const near3 = closest(net.nodes, t3, 11);
    assert.ok(
      third.holders.every((h) => near3.includes(h.port)),
      'a node among the next closest took its place',
    );
  } finally {
    await stopDhtNode(node);
    await net.stop();
  }
});

test('libtorrent as a DHT storage node accepts our puts (token, signature, salt) and serves the item back', {
  timeout: 60_000,
}, async () => {
  const net = await startLocalDht(5);
  const lt = spawn(
    '/usr/bin/python3',
    [join(DIST, '../test/testkit/libtorrent_dht_node.py'), '--bootstrap', net.bootstrap.join(','), '--timeout', '50'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let node: DHT | null = null;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('libtorrent DHT node did not start')), 20_000);
      createInterface({ input: lt.stdout! }).once('line', (l) => {
        clearTimeout(t);
        resolve(l);
      });
    });
    const { port: ltPort, error } = JSON.parse(line) as { port?: number; error?: string };
    assert.ok(ltPort, `libtorrent DHT node up: ${error ?? ''}`);
    node = await ourNode(net.bootstrap);
    const putter = new ItemPutter(node);
    // 6 nodes in all, k = 8: every put should reach libtorrent once it is in the routing tables.
    let stored: { it: SignedItem; holders: Contact[] } | null = null;
    for (let n = 0; n < 10 && !stored; n++) {
      const it = item(100 + n);
      const out = await putter.put(it);
      if (out.holders.some((h) => h.port === ltPort)) stored = { it, holders: out.holders };
      else await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(stored, 'libtorrent acknowledged a put');
    const { it } = stored;
    const ltGet = (a: Record<string, unknown>) =>
      new Promise<Record<string, unknown>>((resolve, reject) =>
        rpcOf(node!).query(
          { id: undefined as never, host: '127.0.0.1', port: ltPort! },
          { q: 'get', a: { target: targetOf(it.k, it.salt), ...a } },
          (err, res) => (err ? reject(err) : resolve(res!.r!)),
        ),
      );
    const reply = await ltGet({});
    // What a republish's get asks (seq = the item's): libtorrent leaves the value out.
    const lean = await ltGet({ seq: it.seq });
    assert.ok(lean['token'] instanceof Uint8Array && lean['v'] === undefined, 'a get with the held seq returns a token and no v');
    assert.equal(reply['seq'], it.seq);
    assert.deepEqual(Buffer.from(reply['k'] as Uint8Array), it.k);
    assert.ok(
      verifyEd25519(reply['sig'] as Uint8Array, signedBytes(it.salt, it.seq, reply['v']), owner.publicKey),
      'libtorrent serves the signed item it stored',
    );
    // Its acknowledgement means something: a forged signature is refused (an error reply).
    const forged = { ...item(200), sig: keyFromSeed(Buffer.alloc(32, 3)).sign(signedBytes(item(200).salt, 1, item(200).v)) };
    const out = await putter.put(forged);
    assert.ok(out.reached >= 1 && !out.holders.some((h) => h.port === ltPort), 'libtorrent refused a forged put');
  } finally {
    lt.stdin!.end();
    lt.kill();
    if (node) await stopDhtNode(node);
    await net.stop();
  }
});

test('hostile lookup replies (huge or mistyped tokens, floods of bogus contacts) are bounded and never stored to', {
  timeout: 30_000,
}, async () => {
  const net = await startLocalDht(12);
  const node = await ourNode(net.bootstrap);
  const it = item(7);
  const target = targetOf(it.k, it.salt);
  // The liars claim ids right at the target, so they sort first.
  let seen = 0;
  const liarId = (i: number) => Buffer.concat([target.subarray(0, 19), Buffer.from([i])]);
  const liars = await Promise.all(
    [0, 1, 2].map(
      (i) =>
        new Promise<Socket>((resolve) => {
          const s = createSocket('udp4');
          s.on('message', (buf, rinfo) => {
            let q: { t?: Uint8Array } | null = null;
            try {
              q = bencode.decode(buf) as { t?: Uint8Array };
            } catch {
              return;
            }
            const bogus = Buffer.concat(
              Array.from({ length: 100 }, (_, j) =>
                Buffer.concat([randomBytes(20), Buffer.from([10, 0, i, j]), Buffer.from([0x1a, 0xe1])]),
              ),
            );
            const r = [
              { id: liarId(0), token: Buffer.alloc(5000, 1), nodes: bogus },
              { id: liarId(1), token: 7, nodes: 'x' },
              { id: liarId(2), nodes: Buffer.alloc(26 * 3) },
            ][i];
            seen++;
            s.send(Buffer.from(bencode.encode({ t: q.t, y: 'r', r })), rinfo.port, rinfo.address);
          });
          s.bind(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  try {
    const rpc = rpcOf(node);
    const seeds: Contact[] = liars.map((s, i) => ({ id: liarId(i), host: '127.0.0.1', port: s.address().port }));
    const res = await lookupClosest(rpc, target, { k: 8, alpha: 3, seeds: [...seeds, ...rpc.nodes.closest(target, 8)], maxQueries: 40 });
    assert.ok(res.queries <= 40, 'bounded');
    assert.equal(res.reached.length, 8, 'the honest nodes still make up the 8');
    assert.ok(!res.reached.some((r) => liars.some((s) => s.address().port === r.port)), 'no liar among the nodes to put to');
    assert.ok(res.reached.every((r) => r.token.length <= 64));
    assert.equal(seen, 3, 'every liar was asked and answered');
  } finally {
    for (const s of liars) s.close();
    await stopDhtNode(node);
    await net.stop();
  }
});
