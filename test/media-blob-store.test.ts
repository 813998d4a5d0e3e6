// The blob store: deterministic blob torrents that libtorrent downloads (from BEP-19 web seeds and
// from the seeder), quotas, references and removal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { BlobStore, QuotaError } from '../sidecar/media/blob-store.js';
import { DEFAULT_FETCH_POLICY, fetchBlob, type FetchPolicy } from '../sidecar/media/safe-fetch.js';
import { pieceLengthFor } from '../sidecar/bundles/builder.js';
import { torrentLayout } from '../sidecar/formats/torrent-layout.js';
import { WebTorrentSeeder } from '../sidecar/seeding/seeder.js';
import { createLogger } from '../sidecar/common/log.js';
import { ltFetch } from './testkit/libtorrent.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';

const policy: FetchPolicy = { ...DEFAULT_FETCH_POLICY, allowLoopback: true, timeoutMs: 60_000 };
const big = { maxTotalBytes: 1024 ** 3, maxBytesPerAuthor: 1024 ** 3 };
let dir: string;
let srv: MediaServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'media-store-'));
  srv = await mediaServer();
});
after(async () => {
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

async function fetchInto(store: BlobStore, sha256: string, url: string): Promise<void> {
  await fetchBlob({ url, sha256, dest: store.pathOf(sha256) }, policy);
}

test('the same bytes give the same infohash in two stores on different directories, whatever their web seeds', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 12_345); // not a whole number of pieces
  const h = srv.add(bytes, 'video/mp4');
  const one = await BlobStore.open(await mkdtemp(join(dir, 'one-')), big);
  const two = await BlobStore.open(await mkdtemp(join(dir, 'two-')), big);
  await fetchInto(one, h, srv.url(h, '.mp4'));
  await fetchInto(two, h, srv.url(h));
  const a = await one.add('a'.repeat(64), h, [srv.url(h, '.mp4')]);
  const b = await two.add('b'.repeat(64), h, [`https://elsewhere.example/${h}`, srv.url(h)]);
  assert.equal(a.infoHash, b.infoHash);
  assert.notDeepEqual(a.torrent, b.torrent, 'only the url-list differs');
  assert.equal(a.path, join(one.root, h.slice(0, 2), h));
  assert.ok((await readFile(a.path)).equals(bytes));
  assert.ok((await readFile(a.torrentPath)).equals(a.torrent));
  // The info dict is exactly {length, name, piece length, pieces}; name = sha256; the bundles' piece rule.
  const layout = torrentLayout(a.torrent, a.infoHash);
  assert.deepEqual(
    { name: layout.name, length: layout.length, pieceLength: layout.pieceLength },
    { name: h, length: bytes.length, pieceLength: pieceLengthFor(bytes.length) },
  );
  const decoded = bencode.decode(b.torrent) as { info: Record<string, unknown>; 'url-list': Uint8Array[] };
  assert.deepEqual(Object.keys(decoded).sort(), ['info', 'url-list']);
  assert.deepEqual(Object.keys(decoded.info).sort(), ['length', 'name', 'piece length', 'pieces']);
  assert.deepEqual(
    decoded['url-list'].map((u) => Buffer.from(u).toString()),
    [`https://elsewhere.example/${h}`, srv.url(h)],
  );
  assert.ok(Buffer.from(bencode.encode(bencode.decode(a.torrent))).equals(a.torrent), 'canonical bencoding');
});

test('libtorrent downloads a blob torrent from its BEP-19 web seed alone: byte-identical, same infohash', async () => {
  const bytes = randomBytes(2 * 1024 * 1024 + 777);
  const h = srv.add(bytes, 'image/png');
  const store = await BlobStore.open(await mkdtemp(join(dir, 'ws-')), big);
  await fetchInto(store, h, srv.url(h, '.png'));
  const blob = await store.add('a'.repeat(64), h, [srv.url(h, '.png')]);
  const save = await mkdtemp(join(dir, 'lt-ws-'));
  const before = srv.blobBytesSent;
  const r = await ltFetch({ torrent: blob.torrentPath, save, timeoutSec: 60 });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.infoHash, blob.infoHash);
  assert.equal(r.name, h);
  assert.deepEqual(r.files, [h]);
  assert.ok((await readFile(join(save, h))).equals(bytes));
  assert.ok(srv.blobBytesSent - before >= bytes.length, 'the bytes came from the web seed (no peer was given)');
});

test('libtorrent downloads a seeded blob from the seeder (WebTorrent checked the pieces first): byte-identical', async () => {
  const bytes = randomBytes(5 * 1024 * 1024);
  const h = srv.add(bytes);
  const store = await BlobStore.open(await mkdtemp(join(dir, 'seed-')), big);
  await fetchInto(store, h, srv.url(h));
  // A web seed nobody answers: the bytes can only come from the seeder.
  const blob = await store.add('a'.repeat(64), h, ['http://127.0.0.1:9/gone']);
  const seeder = await WebTorrentSeeder.start({ port: 0, utp: false, maxConns: 20 }, null, createLogger('test', 'silent'));
  try {
    await seeder.seed({ infoHash: blob.infoHash, torrent: blob.torrent, dataPath: blob.path, verify: true });
    const save = await mkdtemp(join(dir, 'lt-seed-'));
    const r = await ltFetch({ torrent: blob.torrentPath, save, peerPort: seeder.port, timeoutSec: 60 });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.infoHash, blob.infoHash);
    assert.ok((await readFile(join(save, h))).equals(bytes));
    assert.ok(seeder.stats().uploaded >= bytes.length, `seeder uploaded ${seeder.stats().uploaded}`);
  } finally {
    await seeder.stop();
  }
});

test('quotas per author and in total, shared blobs, release deletes with the last reference, reopen counts what is on disk', async () => {
  const dataDir = await mkdtemp(join(dir, 'quota-'));
  const limits = { maxTotalBytes: 300_000, maxBytesPerAuthor: 250_000 };
  const store = await BlobStore.open(dataDir, limits);
  const A = 'a'.repeat(64);
  const B = 'b'.repeat(64);
  const [b0, b1, b2, b3, b4] = Array.from({ length: 5 }, () => srv.add(randomBytes(100_000))) as [string, string, string, string, string];
  for (const h of [b0, b1]) {
    await fetchInto(store, h, srv.url(h));
    await store.add(A, h, [srv.url(h)]);
  }
  assert.equal(store.authorBytes(A), 200_000);
  assert.equal(store.room(A), 50_000, 'what the next fetch for A may take');
  await fetchInto(store, b2, srv.url(b2));
  await assert.rejects(store.add(A, b2, []), (e: unknown) => e instanceof QuotaError && e.code === 'author-quota');
  assert.equal(existsSync(store.pathOf(b2)), false, 'a blob over quota is not kept');
  // B references A's blob: it counts toward B, not twice toward the total.
  store.reference(B, b0);
  assert.deepEqual([store.authorBytes(B), store.stats().bytes], [100_000, 200_000]);
  await fetchInto(store, b3, srv.url(b3));
  await store.add(B, b3, []);
  assert.deepEqual(store.stats(), { blobs: 3, bytes: 300_000, authors: 2 });
  assert.equal(store.room(B), 0, 'B has 50,000 of its own quota left, the total none');
  await fetchInto(store, b4, srv.url(b4));
  await assert.rejects(store.add(B, b4, []), (e: unknown) => e instanceof QuotaError && e.code === 'total-quota');
  assert.equal(existsSync(store.pathOf(b4)), false);
  // Removal: b0 lives while either author references it.
  assert.equal(await store.release(A, b0), false);
  assert.ok(existsSync(store.pathOf(b0)));
  assert.equal(await store.release(A, b0), false, 'a second release by the same author changes nothing');
  assert.equal(await store.release(B, b0), true);
  assert.equal(existsSync(store.pathOf(b0)) || existsSync(store.torrentPathOf(b0)), false);
  assert.deepEqual(store.stats(), { blobs: 2, bytes: 200_000, authors: 2 });
  assert.deepEqual([store.authorBytes(A), store.authorBytes(B)], [100_000, 100_000]);
  // A crash mid-fetch leaves a .part; reopening removes it and counts the blobs on disk.
  const part = store.pathOf(b4) + '.0123456789ab.part';
  await writeFile(part, randomBytes(1000));
  const again = await BlobStore.open(dataDir, limits);
  assert.deepEqual(again.stats(), { blobs: 2, bytes: 200_000, authors: 0 });
  assert.equal(existsSync(part), false);
  assert.ok((await again.readTorrent(b1)).length > 0);
  again.reference(A, b1);
  assert.equal(again.authorBytes(A), 100_000);
  await assert.rejects(store.add(A, 'not a hash', []), /not a sha256/);
  assert.ok((await readdir(join(dataDir, 'media'))).every((n) => /^[0-9a-f]{2}$/.test(n)));
});
