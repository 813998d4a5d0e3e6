// The fetch side end to end, short of the sidecar: signed events → references → the queue →
// safe fetches from a loopback Blossom stand-in → verified blobs with torrents in the store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { BlobStore, type StoredBlob } from '../sidecar/media/blob-store.js';
import { blobFetchWorker } from '../sidecar/media/blob-fetcher.js';
import { FetchQueue, type EnqueueResult } from '../sidecar/media/fetch-queue.js';
import { mediaReferences } from '../sidecar/media/references.js';
import { DEFAULT_FETCH_POLICY, type Resolver } from '../sidecar/media/safe-fetch.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { signer } from './testkit/events.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';

let dir: string;
let srv: MediaServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'media-e2e-'));
  srv = await mediaServer();
});
after(async () => {
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

const resolve: Resolver = async (host) => {
  const table: Record<string, string> = { 'blossom.test': '127.0.0.1', 'cdn.test': '127.0.0.1', 'internal.test': '10.0.0.1' };
  if (!table[host]) throw new Error(`ENOTFOUND ${host}`);
  return [{ address: table[host]!, family: 4 }];
};

test('events from three authors: the verified blobs are stored with torrents, hostile and over-quota ones are counted and leave nothing', async () => {
  const [A, B, C, D] = await Promise.all([signer(), signer(), signer(), signer()]);
  const bytes = (n: number) => randomBytes(n);
  const a1b = bytes(120_000);
  const a2b = bytes(80_000);
  const b1b = bytes(150_000);
  const c2b = bytes(400_000);
  const [a1, a2, b1, c2] = [
    srv.add(a1b, 'image/jpeg'),
    srv.add(a2b, 'image/png'),
    srv.add(b1b, 'application/pdf'),
    srv.add(c2b, 'video/mp4'),
  ];
  const c1 = createHash('sha256').update('what C claims').digest('hex');
  srv.route('/wrong.jpg', (_q, r) => r.writeHead(200, { 'content-type': 'image/jpeg' }).end(bytes(5000)));
  const port = srv.port;
  const events: NostrEvent[] = [
    A.sign({
      kind: 1,
      created_at: 1_760_000_000,
      content: `my photos http://blossom.test:${port}/${a2}.png`,
      // The first URL is gone; the fallback has the bytes.
      tags: [
        ['imeta', `url http://cdn.test:${port}/gone.jpg`, `x ${a1}`, 'm image/jpeg', `fallback http://blossom.test:${port}/${a1}.jpg`],
      ],
    }),
    B.sign({
      kind: 1063,
      created_at: 1_760_000_001,
      content: 'a paper',
      tags: [
        ['url', `http://cdn.test:${port}/${b1}`],
        ['x', b1],
        ['m', 'application/pdf'],
        ['size', String(b1b.length)],
      ],
    }),
    B.sign({ kind: 1, created_at: 1_760_000_002, content: '', tags: [['imeta', `url http://blossom.test:${port}/${a1}.jpg`, `x ${a1}`]] }),
    C.sign({
      kind: 1,
      created_at: 1_760_000_003,
      content: `http://internal.test:${port}/${a2}`, // a blob A also references, at an internal address
      tags: [
        ['imeta', `url http://cdn.test:${port}/wrong.jpg`, `x ${c1}`],
        ['imeta', `url http://blossom.test:${port}/${c2}.mp4`, `x ${c2}`], // 400 kB, over C's 300 kB
      ],
    }),
  ];
  const store = await BlobStore.open(await mkdtemp(join(dir, 'data-')), { maxTotalBytes: 10_000_000, maxBytesPerAuthor: 300_000 });
  const stored: StoredBlob[] = [];
  const policy = { ...DEFAULT_FETCH_POLICY, allowLoopback: true, timeoutMs: 30_000 };
  const q = new FetchQueue(
    { maxQueued: 100, maxQueuedBytes: 16 * 1024 ** 2, maxQueuedPerAuthor: 10, concurrency: 2, bytesPerSecond: 0 },
    blobFetchWorker(store, policy, { resolve, onStored: (_j, b) => stored.push(b) }),
  );
  const results: [string, string, EnqueueResult][] = [];
  for (const e of events) {
    for (const r of mediaReferences(e)) results.push([e.pubkey.slice(0, 4), r.sha256.slice(0, 4), q.enqueue({ ...r, author: e.pubkey })]);
  }
  await q.idle();
  const p = (s: { pubkey: string }) => s.pubkey.slice(0, 4);
  const h = (x: string) => x.slice(0, 4);
  assert.deepEqual(results, [
    [p(A), h(a1), 'queued'],
    [p(A), h(a2), 'queued'],
    [p(B), h(b1), 'queued'],
    [p(B), h(a1), 'duplicate'], // on its way already: the index records B's reference (below)
    [p(C), h(c1), 'queued'],
    [p(C), h(c2), 'queued'],
    [p(C), h(a2), 'duplicate'],
  ]);
  const s = q.stats();
  assert.deepEqual(
    { fetched: s.fetched, failed: s.failed, failures: s.failures },
    { fetched: 3, failed: 2, failures: { 'hash-mismatch': 1, 'author-quota': 1 } },
    JSON.stringify(s),
  );
  assert.deepEqual(stored.map((b) => b.sha256).sort(), [a1, a2, b1].sort());
  for (const [sha, b] of [
    [a1, a1b],
    [a2, a2b],
    [b1, b1b],
  ] as const)
    assert.ok((await readFile(store.pathOf(sha))).equals(b));
  // The web seed is the URL that gave the right bytes, not the one that was gone.
  const a1t = bencode.decode(await store.readTorrent(a1)) as { 'url-list': Uint8Array[] };
  assert.deepEqual(
    a1t['url-list'].map((u) => Buffer.from(u).toString()),
    [`http://blossom.test:${port}/${a1}.jpg`],
  );
  assert.deepEqual([store.authorBytes(A.pubkey), store.authorBytes(B.pubkey), store.authorBytes(C.pubkey)], [200_000, 150_000, 0]);
  // A blob already stored only gains a reference (no fetch).
  const before = srv.hits.get(`/${a1}.jpg`);
  const e = D.sign({ kind: 1, created_at: 1_760_000_004, content: `http://blossom.test:${port}/${a1}.jpg`, tags: [] });
  for (const r of mediaReferences(e)) assert.equal(q.enqueue({ ...r, author: e.pubkey }), 'queued');
  store.reference(B.pubkey, a1);
  await q.idle();
  assert.equal(srv.hits.get(`/${a1}.jpg`), before);
  assert.deepEqual([store.authorBytes(D.pubkey), store.authorBytes(B.pubkey), store.stats().bytes], [120_000, 270_000, 350_000]);
  // A blob at an internal address is refused.
  const blocked = C.sign({ kind: 1, created_at: 1_760_000_005, content: `http://internal.test:${port}/${'e'.repeat(64)}`, tags: [] });
  for (const r of mediaReferences(blocked)) q.enqueue({ ...r, author: blocked.pubkey });
  await q.idle();
  assert.equal(q.stats().failures['blocked-address'], 1);
  // On disk: the three blobs and their torrents, nothing of the refused ones.
  const onDisk: string[] = [];
  for (const sub of await readdir(store.root)) onDisk.push(...(await readdir(join(store.root, sub))));
  assert.deepEqual(onDisk.sort(), [a1, a2, b1].flatMap((x) => [x, `${x}.torrent`]).sort());
});
