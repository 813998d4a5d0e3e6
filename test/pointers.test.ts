// BEP-44 pointers on a local DHT of real bittorrent-dht nodes, read back by other nodes and by
// libtorrent; identity derivation; restart; hostile items.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createSocket } from 'node:dgram';
import bencode from 'bencode';
import { nip19 } from 'nostr-tools';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { loadIdentity, deriveBridgeSeed, KeyFileError } from '../sidecar/publishing/identity.js';
import { zbase32, zbase32Decode } from '../sidecar/formats/zbase32.js';
import { keyFromSeed, verifyEd25519 } from '../sidecar/formats/ed25519.js';
import {
  authorPages,
  authorSalt,
  decodeAuthorPage,
  decodeBridgeValue,
  signedBytes,
  targetOf,
  BRIDGE_SALT,
  vSize,
  BadItem,
} from '../sidecar/formats/pointer-item.js';
import { makeWorkspace, CLI_BIN } from './testkit/sidecar-process.js';
import { startLocalDht, dhtGet, type LocalDht } from './testkit/local-dht.js';
import { ltDhtGet } from './testkit/libtorrent.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';

const run = promisify(execFile);
const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };

async function sidecarOn(dht: LocalDht, ws: ReturnType<typeof makeWorkspace>): Promise<Sidecar> {
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: { dht: { bootstrap: dht.bootstrap, putsPerSecond: 200 }, bundle: { windowSeconds: 1 } },
  });
  const sc = new Sidecar(config, createLogger('test', 'silent'), { statusHttp: false, bundleSchedule: false });
  await sc.start();
  const deadline = Date.now() + 10_000;
  while (sc.dht!.nodes.count() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return sc;
}

async function feed(sc: Sidecar, lines: string[]): Promise<void> {
  for (const l of lines) sc.ingestor.submit(l, sink);
  await sc.ingestor.idle();
}

test('identity: HKDF from the Nostr secret (nsec or hex), same key anywhere; generated key kept 0600; loose modes refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-id-'));
  try {
    const secret = Buffer.alloc(32, 7);
    const hexFile = join(dir, 'hex.key');
    const nsecFile = join(dir, 'nsec.key');
    writeFileSync(hexFile, secret.toString('hex') + '\n', { mode: 0o600 });
    writeFileSync(nsecFile, nip19.nsecEncode(secret) + '\n', { mode: 0o600 });
    const a = loadIdentity({ nostrKeyFile: hexFile, generatedKeyFile: join(dir, 'unused') });
    const b = loadIdentity({ nostrKeyFile: nsecFile, generatedKeyFile: join(dir, 'unused') });
    assert.deepEqual(a.publicKey, b.publicKey);
    assert.deepEqual(a.publicKey, keyFromSeed(deriveBridgeSeed(secret)).publicKey);
    assert.notDeepEqual(a.publicKey, keyFromSeed(secret).publicKey, 'domain-separated from the Nostr key itself');
    const gen = join(dir, 'bridge.key');
    const g1 = loadIdentity({ generatedKeyFile: gen });
    const g2 = loadIdentity({ generatedKeyFile: gen });
    assert.deepEqual(g1.publicKey, g2.publicKey, 'generated once, then reused');
    chmodSync(hexFile, 0o644);
    assert.throws(
      () => loadIdentity({ nostrKeyFile: hexFile, generatedKeyFile: gen }),
      (e: unknown) => e instanceof KeyFileError && /chmod 600/.test(e.message),
    );
    assert.deepEqual(zbase32Decode(zbase32(a.publicKey)), a.publicKey);
    assert.equal(zbase32(Buffer.from([0xf0, 0xbf, 0xc7])), '6n9hq');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nostr-bt key prints the public key (hex and z-base-32) and never the secret', async () => {
  const ws = makeWorkspace();
  try {
    // The key the sidecar's first start generates (`nostr-bt key` itself never creates one).
    const generated = loadIdentity({ generatedKeyFile: join(ws.dataDir, 'bridge.key') });
    const { stdout } = await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'key']);
    const out = JSON.parse(stdout) as { publicKey: string; z32: string };
    assert.equal(out.publicKey, generated.publicKey.toString('hex'));
    assert.equal(out.z32, zbase32(Buffer.from(out.publicKey, 'hex')));
    const { readFileSync } = await import('node:fs');
    const secret = readFileSync(join(ws.dataDir, 'bridge.key'), 'utf8').trim();
    assert.ok(!stdout.includes(secret));
  } finally {
    ws.cleanup();
  }
});

test('pointer pages: v ≤ 1000 bytes bencoded, newest bundle first in ih, every bundle listed', () => {
  for (const n of [0, 1, 47, 48, 200]) {
    const hashes = Array.from({ length: n }, (_, i) => pubkeyN(i).slice(0, 40));
    const pages = authorPages(hashes);
    const got: string[] = [];
    for (const p of pages) {
      assert.ok(vSize(p) <= 1000, `page of ${n}: ${vSize(p)} bytes`);
      const d = decodeAuthorPage(JSON.parse(JSON.stringify(p), (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data) : v)));
      got.push(...d.infoHashes);
      assert.equal(d.n, n);
    }
    assert.deepEqual(got, hashes);
    if (n > 0) assert.equal(Buffer.from(pages[0]!.ih!).toString('hex'), hashes[0]);
  }
  for (const bad of [
    null,
    5,
    Buffer.from('x'),
    [],
    { v: 2, n: 0, pg: 1 },
    { v: 1, n: 1, pg: 1, ih: Buffer.alloc(19) },
    { v: 1, n: 0, pg: 1, b: Buffer.alloc(40) },
    { v: 1, n: 'x', pg: 1 },
  ]) {
    assert.throws(() => decodeAuthorPage(bad), BadItem);
  }
});

test('published pointers are read back by other DHT nodes and by libtorrent; they lead to the right bundles; restart continues seq and re-puts', {
  timeout: 120_000,
}, async () => {
  const dht = await startLocalDht(24);
  const ws = makeWorkspace();
  let sc: Sidecar | null = null;
  try {
    sc = await sidecarOn(dht, ws);
    const authors = [0, 1, 2].map(pubkeyN);
    await feed(
      sc,
      authors.flatMap((p, i) =>
        [0, 1].map((j) => pluginLine(unsignedEvent(p, { kind: 1, created_at: 1_700_000_000 + i * 10 + j, content: `n${i}${j}` }))),
      ),
    );
    const [b1] = await sc.bundler!.closeWindow();
    assert.ok(b1);
    assert.ok(await sc.publisher!.idle(20_000), 'publisher caught up');
    const k = sc.identity!.publicKey;
    const reader = dht.nodes[dht.nodes.length - 1]!;
    let firstSeq = 0;
    for (const author of authors) {
      const salt = authorSalt(author);
      const res = await dhtGet(reader, targetOf(k, salt), salt);
      assert.ok(res, `pointer for ${author.slice(0, 8)} found`);
      assert.ok(verifyEd25519(res.sig!, signedBytes(salt, res.seq!, res.v), k), 'signature verifies');
      const page = decodeAuthorPage(res.v);
      assert.deepEqual(page.infoHashes, [b1.ih]);
      firstSeq = Math.max(firstSeq, res.seq!);
    }
    const bridgeItem = await dhtGet(reader, targetOf(k, BRIDGE_SALT), BRIDGE_SALT);
    assert.ok(bridgeItem);
    const info = decodeBridgeValue(bridgeItem.v);
    assert.equal(info.bundles, 1);
    assert.equal(info.newest, b1.ih);

    // An independent implementation reads it (and checks the signature itself).
    const lt = await ltDhtGet({ keyHex: k.toString('hex'), saltHex: authorSalt(authors[0]!).toString('hex'), bootstrap: dht.bootstrap });
    assert.ok(lt.ok, `libtorrent got the item: ${JSON.stringify(lt)}`);
    assert.equal(lt.v?.ih, b1.ih);

    // Restart: seq keeps growing; stored items are re-put as they are.
    const stored = sc.store.pointers.get(authorSalt(authors[0]!).toString('hex'))!;
    await sc.stop();
    sc = null;
    sc = await sidecarOn(dht, ws);
    assert.deepEqual(sc.identity!.publicKey, k, 'same bridge key after restart');
    const puts: boolean[] = [];
    sc!.publisher!.on('put', (p: { ok: boolean }) => puts.push(p.ok));
    sc.publisher!.republishAll();
    const deadline = Date.now() + 20_000;
    while (puts.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(puts.length >= 4 && puts.every(Boolean), 'stored signed items re-put after restart');
    assert.equal(sc.store.pointers.get(authorSalt(authors[0]!).toString('hex'))!.seq, stored.seq, 'republish does not re-sign');
    await feed(sc, [pluginLine(unsignedEvent(authors[0]!, { kind: 1, created_at: 1_700_000_100, content: 'later' }))]);
    const [b2] = await sc.bundler!.closeWindow(Date.now() + 60_000);
    assert.ok(b2);
    assert.ok(await sc.publisher!.idle(20_000));
    const salt0 = authorSalt(authors[0]!);
    const res = await dhtGet(reader, targetOf(k, salt0), salt0);
    assert.ok(res && res.seq! > firstSeq, 'seq grew across the restart');
    assert.deepEqual(decodeAuthorPage(res.v).infoHashes, [b2.ih, b1.ih], 'newest bundle first');
  } finally {
    await sc?.stop();
    await dht.stop();
    ws.cleanup();
  }
});

test('hostile DHT traffic: forged, oversized, rolled-back, replayed and garbage items never crash a node and are not stored', {
  timeout: 60_000,
}, async () => {
  const dht = await startLocalDht(20);
  try {
    const owner = keyFromSeed(Buffer.alloc(32, 1));
    const mallory = keyFromSeed(Buffer.alloc(32, 2));
    const salt = authorSalt(pubkeyN(1));
    const target = targetOf(owner.publicKey, salt);
    const node = dht.nodes[3]!;
    const put = (opts: Record<string, unknown>) =>
      new Promise<{ err: (Error & { code?: number }) | null; n: number }>((r) =>
        node.put(opts as never, (err, _h, n) => r({ err: err as never, n })),
      );
    const v = { v: 1, n: 0, pg: 1, b: Buffer.alloc(0) };
    const good = await put({ k: owner.publicKey, salt, seq: 10, v, sig: owner.sign(signedBytes(salt, 10, v)) });
    assert.equal(good.err, null);
    // Forged: signed by another key.
    await put({ k: owner.publicKey, salt, seq: 11, v: { ...v, n: 0 }, sig: mallory.sign(signedBytes(salt, 11, v)) });
    // Rolled back: a valid signature on an older seq.
    const rollback = await put({ k: owner.publicKey, salt, seq: 5, v, sig: owner.sign(signedBytes(salt, 5, v)) });
    assert.equal(rollback.err?.code, 302);
    // Oversized: a dict whose bencoding is over 1000 bytes.
    const big = { v: 1, n: 0, pg: 1, b: Buffer.alloc(1000) };
    await put({ k: owner.publicKey, salt, seq: 12, v: big, sig: owner.sign(signedBytes(salt, 12, big)) });
    // Replayed: the owner's seq-10 item again is harmless; once seq 20 is stored, replaying the
    // old signed item is refused; replaying it under another author's salt fails its signature.
    const sig10 = owner.sign(signedBytes(salt, 10, v));
    await put({ k: owner.publicKey, salt, seq: 10, v, sig: sig10 });
    const v20 = { ...v, n: 0, pg: 1 };
    assert.equal((await put({ k: owner.publicKey, salt, seq: 20, v: v20, sig: owner.sign(signedBytes(salt, 20, v20)) })).err, null);
    const replayed = await put({ k: owner.publicKey, salt, seq: 10, v, sig: sig10 });
    assert.equal(replayed.err?.code, 302, 'an old item replayed after a newer one is refused');
    const salt2 = authorSalt(pubkeyN(2));
    await put({ k: owner.publicKey, salt: salt2, seq: 10, v, sig: sig10 });
    assert.equal(
      await dhtGet(dht.nodes[12]!, targetOf(owner.publicKey, salt2), salt2),
      null,
      'a signature replayed under another salt is not stored',
    );
    // Garbage and mistyped packets straight at every node.
    const sock = createSocket('udp4');
    const packets = [
      Buffer.from('garbage'),
      Buffer.from('d1:ai1ee'),
      Buffer.from(bencode.encode({ t: 'aa', y: 'q', q: 'get', a: { id: Buffer.alloc(20), target: 5 } })),
      Buffer.from(
        bencode.encode({ t: 'ab', y: 'q', q: 'put', a: { id: Buffer.alloc(20), k: 5, v: 1, token: 7, seq: 1, sig: Buffer.alloc(64) } }),
      ),
      Buffer.from(bencode.encode({ t: 'ac', y: 'r', r: { id: 5 } })),
      Buffer.from(bencode.encode({ t: 'ad', y: 'q', q: 'find_node', a: { id: Buffer.alloc(20), target: 1 } })),
      Buffer.from(bencode.encode({ t: 'ae', y: 'q', q: 'get_peers', a: { id: Buffer.alloc(20), info_hash: 1 } })),
    ];
    for (const d of dht.nodes) for (const p of packets) sock.send(p, d.address().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    sock.close();
    // Every node still answers, and the only item anyone returns is the owner's newest, seq 20.
    const res = await dhtGet(dht.nodes[15]!, target, salt);
    assert.ok(res);
    assert.equal(res.seq, 20);
    assert.deepEqual(decodeAuthorPage(res.v).n, 0);
    assert.ok(verifyEd25519(res.sig!, signedBytes(salt, 20, res.v), owner.publicKey));
    assert.equal(verifyEd25519(5 as never, Buffer.alloc(1), Buffer.alloc(3)), false, 'verify never throws');
  } finally {
    await dht.stop();
  }
});
