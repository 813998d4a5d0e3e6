// The bridge's own DHT node against a hostile KRPC client of ours (raw UDP + bencode on
// 127.0.0.x, test/testkit/hostile-krpc.ts), with libtorrent as the reference for what a storage
// node should answer: the bridge's own older items replayed, bad signatures, malformed queries,
// and one host posing as many nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import DHT from 'bittorrent-dht';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { startDhtNode, stopDhtNode } from '../sidecar/publishing/dht-node.js';
import { hardenDht } from '../sidecar/dht/harden.js';
import { keyFromSeed, verifyEd25519 } from '../sidecar/formats/ed25519.js';
import { authorSalt, signedBytes, targetOf, decodeAuthorPage } from '../sidecar/formats/pointer-item.js';
import { makeWorkspace, DIST } from './testkit/sidecar-process.js';
import { startLocalDht, dhtGet } from './testkit/local-dht.js';
import { HostileKrpc, type KrpcReply, type Target } from './testkit/hostile-krpc.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';

const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };
const silent = createLogger('test', 'silent');

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

const errCode = (r: KrpcReply | null) => (r === null ? 'silence' : r.y === 'e' ? r.e![0] : 'ok');

test("the bridge's node never stores or serves an item of its own key older than the one it published", { timeout: 120_000 }, async (t) => {
  const dht = await startLocalDht(12);
  t.after(() => dht.stop());
  const ws = makeWorkspace();
  t.after(() => ws.cleanup());
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: { dht: { bootstrap: dht.bootstrap, putsPerSecond: 200 }, bundle: { windowSeconds: 1 } },
  });
  const sc = new Sidecar(config, silent, { statusHttp: false, bundleSchedule: false });
  await sc.start();
  t.after(() => sc.stop());
  await until('sidecar DHT node joined', () => sc.dht!.nodes.count() > 0);
  const hostile = await HostileKrpc.open('127.0.0.1');
  t.after(() => hostile.close());
  const node: Target = { host: '127.0.0.1', port: sc.dht!.address().port };
  const k = sc.identity!.publicKey;
  const reader = dht.nodes[dht.nodes.length - 1]!;
  const [alice, bob] = [pubkeyN(1), pubkeyN(2)];

  const publish = async (createdAt: number, at?: number) => {
    for (const p of [alice, bob])
      sc.ingestor.submit(pluginLine(unsignedEvent(p, { kind: 1, created_at: createdAt, content: `at ${createdAt}` })), sink);
    await sc.ingestor.idle();
    const [b] = await sc.bundler!.closeWindow(at);
    assert.ok(b, 'a bundle was cut');
    assert.ok(await sc.publisher!.idle(30_000), 'publisher caught up');
  };
  /** The item as the other DHT nodes hold it now (signed by the bridge). */
  const fromDht = async (author: string) => {
    const salt = authorSalt(author);
    const res = await dhtGet(reader, targetOf(k, salt), salt);
    assert.ok(res && typeof res.seq === 'number', `pointer for ${author.slice(0, 8)} in the DHT`);
    return { salt, target: targetOf(k, salt), seq: res.seq, v: res.v, sig: Buffer.from(res.sig!) };
  };
  const put = async (item: Awaited<ReturnType<typeof fromDht>>) =>
    hostile.query(node, 'put', {
      token: await hostile.token(node, item.target),
      k,
      salt: item.salt,
      seq: item.seq,
      v: item.v,
      sig: item.sig,
    });

  await publish(1_700_000_000);
  const alice1 = await fromDht(alice);
  const bob1 = await fromDht(bob);
  // Alice's current item, stored on the bridge's own node by someone else: accepted (it is current).
  assert.equal(errCode(await put(alice1)), 'ok');

  await publish(1_700_000_100, Date.now() + 60_000);
  const alice2 = await fromDht(alice);
  const bob2 = await fromDht(bob);
  assert.ok(alice2.seq > alice1.seq && bob2.seq > bob1.seq, 'both pointers re-signed with a higher seq');

  // The item stored before is older than what the bridge published since: never served.
  const getAlice = await hostile.query(node, 'get', { target: alice1.target });
  assert.equal(getAlice?.y, 'r');
  assert.equal(getAlice!.r!['seq'], alice2.seq, "the bridge's node serves its current item, not the one stored before");
  assert.ok(verifyEd25519(getAlice!.r!['sig'], signedBytes(alice2.salt, alice2.seq, getAlice!.r!['v']), k));
  assert.deepEqual(decodeAuthorPage(getAlice!.r!['v']).n, 2);
  // A replay of Bob's older item: refused as other storage nodes refuse it, and not served.
  const replay = await put(bob1);
  assert.equal(errCode(replay), 302, `replay of an older own item: ${JSON.stringify(replay?.e ?? replay?.r)}`);
  const otherNode: Target = {
    host: '127.0.0.1',
    port: dht.nodes
      // One that holds the current item (a put may not have reached every storing node).
      .find(
        (d) =>
          (d as unknown as { _values: { get(k: string): { seq?: number } | undefined } })._values.get(bob1.target.toString('hex'))?.seq ===
          bob2.seq,
      )!
      .address().port,
  };
  const atOther = await hostile.query(otherNode, 'put', {
    token: await hostile.token(otherNode, bob1.target),
    k,
    salt: bob1.salt,
    seq: bob1.seq,
    v: bob1.v,
    sig: bob1.sig,
  });
  assert.equal(errCode(atOther), 302, 'a storage node holding the current item answers the same');
  const getBob = await hostile.query(node, 'get', { target: bob1.target });
  assert.equal(getBob?.y, 'r');
  assert.ok(
    getBob!.r!['v'] === undefined || getBob!.r!['seq'] === bob2.seq,
    `served seq ${String(getBob!.r!['seq'])}, current ${bob2.seq}`,
  );
  // A CAS against an older seq of the bridge's own item: 301.
  const cas = await hostile.query(node, 'put', {
    token: await hostile.token(node, bob2.target),
    k,
    salt: bob2.salt,
    seq: bob2.seq,
    v: bob2.v,
    sig: bob2.sig,
    cas: bob1.seq,
  });
  assert.equal(errCode(cas), 301);
  // The current item itself is still welcome (same seq, same value).
  assert.equal(errCode(await put(bob2)), 'ok');
  // What any reader gets through the DHT is the current item.
  const res = await dhtGet(reader, bob2.target, bob2.salt);
  assert.equal(res?.seq, bob2.seq);
});

/** A libtorrent DHT node on 127.0.0.1 (the reference storage node). */
async function libtorrentNode(bootstrap: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const p = spawn('/usr/bin/python3', [join(DIST, '../test/testkit/libtorrent_dht_node.py'), '--bootstrap', bootstrap, '--timeout', '80'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  // A storage node keeps nothing worth a graceful stop, and libtorrent's session teardown can
  // take seconds on a busy machine: end it at once.
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await exited;
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('libtorrent node did not start within 30 s')), 30_000);
      createInterface({ input: p.stdout! }).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      p.once('exit', (code) => reject(new Error(`libtorrent node exited with ${code}`)));
    });
    const port = (JSON.parse(line) as { port?: number }).port;
    if (!port) throw new Error(`libtorrent node: ${line}`);
    return { port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

test('malformed queries and puts get the BEP-5 / BEP-44 errors libtorrent gives (203, 204, 205, 206, 207, 301, 302), not silence or an answer', {
  timeout: 120_000,
}, async (t) => {
  const cfg = loadConfig({ env: {}, cwd: '/', overrides: { dht: { bootstrap: [], port: 0, host: '127.0.0.1' } } }).dht;
  const ours = await startDhtNode(cfg, silent);
  t.after(() => stopDhtNode(ours));
  const lt = await libtorrentNode(`127.0.0.1:${ours.address().port}`);
  t.after(() => lt.stop());
  const hostile = await HostileKrpc.open('127.0.0.1');
  t.after(() => hostile.close());
  const owner = keyFromSeed(Buffer.alloc(32, 5));
  const k = owner.publicKey;
  const v = { v: 1, n: 0, pg: 1, b: Buffer.alloc(0) };

  const answers = async (to: Target) => {
    const got: Record<string, number | string> = {};
    const ask = async (name: string, q: string, a: Record<string, unknown>) => {
      got[name] = errCode(await hostile.query(to, q, a, { timeoutMs: 3000 }));
    };
    // A fresh salt per node, so each starts with nothing stored.
    const salt = Buffer.from(`salt-${to.port}`);
    const target = targetOf(k, salt);
    const token = await hostile.token(to, target);
    const signed = (seq: number, value: unknown = v, s: Buffer = salt) => ({
      k,
      salt: s,
      seq,
      v: value,
      sig: owner.sign(signedBytes(s, seq, value)),
    });
    await ask('get: 19-byte target', 'get', { target: Buffer.alloc(19, 1) });
    await ask('get: 21-byte target', 'get', { target: Buffer.alloc(21, 1) });
    await ask('get: integer target', 'get', { target: 5 });
    await ask('find_node: 5-byte target', 'find_node', { target: Buffer.alloc(5, 1) });
    await ask('get_peers: 5-byte info_hash', 'get_peers', { info_hash: Buffer.alloc(5, 1) });
    await ask('ping: 5-byte id', 'ping', { id: Buffer.alloc(5, 1) });
    await ask('put: bad signature', 'put', { token, ...signed(10), sig: keyFromSeed(Buffer.alloc(32, 6)).sign(signedBytes(salt, 10, v)) });
    await ask('put: signature of another seq', 'put', { token, ...signed(10), seq: 11 });
    const bigSalt = Buffer.alloc(65, 7);
    await ask('put: 65-byte salt', 'put', { token: await hostile.token(to, targetOf(k, bigSalt)), ...signed(10, v, bigSalt) });
    const big = { ...v, b: Buffer.alloc(1000) };
    await ask('put: v over 1000 bytes', 'put', { token, ...signed(10, big) });
    await ask('put: bad token', 'put', { ...signed(10), token: Buffer.alloc(token.length, 0) });
    await ask('put: seq 10', 'put', { token, ...signed(10) });
    await ask('put: seq 5 after 10', 'put', { token, ...signed(5) });
    await ask('put: seq 10 again', 'put', { token, ...signed(10) });
    await ask('put: seq 11, cas 9', 'put', { token, ...signed(11), cas: 9 });
    await ask('put: seq 11, cas 10', 'put', { token, ...signed(11), cas: 10 });
    return got;
  };

  const expected = {
    'get: 19-byte target': 203,
    'get: 21-byte target': 203,
    'get: integer target': 203,
    'find_node: 5-byte target': 203,
    'get_peers: 5-byte info_hash': 203,
    'ping: 5-byte id': 203,
    'put: bad signature': 206,
    'put: signature of another seq': 206,
    'put: 65-byte salt': 207,
    'put: v over 1000 bytes': 205,
    'put: bad token': 203,
    'put: seq 10': 'ok',
    'put: seq 5 after 10': 302,
    'put: seq 10 again': 'ok',
    'put: seq 11, cas 9': 301,
    'put: seq 11, cas 10': 'ok',
  };
  const fromLibtorrent = await answers({ host: '127.0.0.1', port: lt.port });
  assert.deepEqual(fromLibtorrent, expected, 'libtorrent (the reference) answers as expected');
  const fromOurs = await answers({ host: '127.0.0.1', port: ours.address().port });
  assert.deepEqual(fromOurs, expected, 'the bridge node answers as libtorrent does');
  // A method nobody knows: BEP-5's 204 (libtorrent says 203 "unknown message"); with a 20-byte
  // target, the closest nodes as for find_node, as libtorrent answers (forward compatibility).
  const oursAt = { host: '127.0.0.1', port: ours.address().port };
  assert.equal(errCode(await hostile.query(oursAt, 'no_such_method', {})), 204);
  for (const to of [oursAt, { host: '127.0.0.1', port: lt.port }]) {
    const fwd = await hostile.query(to, 'sample_infohashes', { target: Buffer.alloc(20, 3) });
    assert.ok(fwd?.y === 'r' && Buffer.isBuffer(fwd.r!['nodes']), `port ${to.port}: an unknown method with a target gets nodes`);
  }
  // The item stored is the one served; a get naming its seq (or a later one) gets no value.
  for (const to of [oursAt, { host: '127.0.0.1', port: lt.port }]) {
    const target = targetOf(k, Buffer.from(`salt-${to.port}`));
    const got = await hostile.query(to, 'get', { target });
    assert.equal(got?.r?.['seq'], 11, `port ${to.port}: seq 11 stored`);
    assert.ok(Buffer.isBuffer(got!.r!['v']) || typeof got!.r!['v'] === 'object');
    for (const seq of [11, 12]) {
      const none = await hostile.query(to, 'get', { target, seq });
      assert.equal(none?.r?.['seq'], 11);
      assert.equal(none?.r?.['v'], undefined, `port ${to.port}: get with seq ${seq} ≥ stored: no value`);
    }
    assert.ok((await hostile.query(to, 'get', { target, seq: 10 }))?.r?.['v'] !== undefined, 'get with an older seq: the value');
  }
});

/** Plain bittorrent-dht nodes, one per loopback address 127.0.0.<first + i> (as hosts on a real network). */
async function nodesOnDistinctIps(n: number, first: number): Promise<DHT[]> {
  const nodes: DHT[] = [];
  const start = (host: string, bootstrap: string[] | false) =>
    new Promise<DHT>((resolve, reject) => {
      const d = new DHT({ bootstrap, host: false, verify: verifyEd25519 });
      hardenDht(d, { maxNodesPerIp: 0 });
      d.on('error', () => {});
      d.on('warning', () => {});
      nodes.push(d);
      const timer = setTimeout(() => reject(new Error(`DHT node on ${host} did not start`)), 20_000);
      d.listen(0, host, () => {
        if (bootstrap === false) {
          clearTimeout(timer);
          resolve(d);
        } else
          d.once('ready', () => {
            clearTimeout(timer);
            resolve(d);
          });
      });
    });
  const seed = await start(`127.0.0.${first}`, false);
  const seedAddr = `127.0.0.${first}:${seed.address().port}`;
  await Promise.all(Array.from({ length: n - 1 }, (_, i) => start(`127.0.0.${first + 1 + i}`, [seedAddr])));
  return nodes;
}

test('one host with 64 source ports takes one routing-table entry (dht.maxNodesPerIp, as libtorrent), not 64; replies to nothing we asked add no node', {
  timeout: 120_000,
}, async (t) => {
  const honest = await nodesOnDistinctIps(8, 10);
  t.after(() => Promise.all(honest.map((d) => new Promise<void>((r) => d.destroy(() => r())))));
  const bootstrap = honest.map((d) => `${d.address().address}:${d.address().port}`);
  const hostile = await HostileKrpc.open('127.0.0.2', 64);
  t.after(() => hostile.close());
  const unasked = await HostileKrpc.open('127.0.0.3', 64);
  t.after(() => unasked.close());

  const flood = async (node: DHT) => {
    const to = { host: '127.0.0.1', port: node.address().port };
    // Queries from 64 ports, each claiming its own node id; then "replies" to nothing we asked,
    // from those ports and from 64 ports of another host.
    const replies = await Promise.all(Array.from({ length: hostile.size }, (_, i) => hostile.query(to, 'ping', {}, { from: i })));
    assert.ok(
      replies.every((r) => r?.y === 'r'),
      'every ping answered',
    );
    for (const h of [hostile, unasked]) {
      await Promise.all(Array.from({ length: h.size }, (_, i) => h.raw(to, { y: 'r', r: { id: h.ids[i] } }, { from: i, timeoutMs: 200 })));
    }
    // A ping of ours after them: once it is answered, the packets sent before it were handled.
    assert.equal((await hostile.query(to, 'ping', {}, { from: 0 }))?.y, 'r');
    const byHost = new Map<string, number>();
    for (const c of node.nodes.toArray() as { host: string }[]) byHost.set(c.host, (byHost.get(c.host) ?? 0) + 1);
    return byHost;
  };
  const startOurs = async (maxNodesPerIp: number, limitLoopback: boolean) => {
    const cfg = loadConfig({ env: {}, cwd: '/', overrides: { dht: { bootstrap, port: 0, host: '127.0.0.1', maxNodesPerIp } } }).dht;
    const node = await startDhtNode(cfg, silent, { limitLoopback });
    t.after(() => stopDhtNode(node));
    await until('joined the honest nodes', () => node.nodes.count() >= honest.length);
    return node;
  };

  const limited = await flood(await startOurs(1, true));
  assert.equal(limited.get('127.0.0.2'), 1, 'one entry for the hostile host');
  assert.equal(limited.get('127.0.0.3'), undefined, 'a reply to no query of ours adds no node');
  assert.equal([...limited.keys()].filter((h) => h !== '127.0.0.2').length, honest.length, 'every honest node kept');

  const three = await flood(await startOurs(3, true));
  assert.equal(three.get('127.0.0.2'), 3, 'dht.maxNodesPerIp = 3: three entries');

  // The default exempts loopback (the tests', demo's and benchmarks' DHTs share 127.0.0.1).
  const exempt = await flood(await startOurs(1, false));
  assert.ok((exempt.get('127.0.0.2') ?? 0) > 3, `loopback exempt by default: ${exempt.get('127.0.0.2')} entries`);
  assert.equal(exempt.get('127.0.0.3'), undefined, 'unsolicited replies add no node, loopback or not');
});

test('a bittorrent-dht whose internals moved fails at start-up with a message naming the member', () => {
  const d = new DHT({ bootstrap: false, host: false, verify: verifyEd25519 });
  try {
    (d as unknown as { _onput: unknown })._onput = undefined;
    assert.throws(() => hardenDht(d), /DHT\._onput is missing .*bittorrent-dht internals changed/);
  } finally {
    d.destroy();
  }
});
