// The media fetch queue with real fetches from a loopback media server: bounded, fair, never blocking.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FetchQueue, type FetchJob, type FetchWorker, type JobOutcome } from '../sidecar/media/fetch-queue.js';
import { DEFAULT_FETCH_POLICY, fetchFromAny, type FetchPolicy } from '../sidecar/media/safe-fetch.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';

const policy: FetchPolicy = { ...DEFAULT_FETCH_POLICY, allowLoopback: true, timeoutMs: 60_000, idleTimeoutMs: 60_000 };
let dir: string;
let srv: MediaServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'media-queue-'));
  srv = await mediaServer();
});
after(async () => {
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

const worker =
  (into: string): FetchWorker =>
  (job, ctx) =>
    fetchFromAny(job.urls, { sha256: job.sha256, dest: join(into, job.sha256), pace: ctx.pace, signal: ctx.signal }, policy);

test('10,000 URLs from one author and 10 from another: the other is served at once, the queue stays bounded, the caller never waits', async () => {
  const into = await mkdtemp(join(dir, 'fair-'));
  const done: { job: FetchJob; outcome: JobOutcome }[] = [];
  const q = new FetchQueue(
    { maxQueued: 1000, maxQueuedBytes: 16 * 1024 ** 2, maxQueuedPerAuthor: 100, concurrency: 2, bytesPerSecond: 0 },
    worker(into),
    (job, outcome) => done.push({ job, outcome }),
  );
  const results = new Map<string, number>();
  const count = (r: string) => results.set(r, (results.get(r) ?? 0) + 1);
  const flood = Array.from({ length: 10_000 }, () => {
    const sha256 = srv.add(randomBytes(256));
    return { sha256, urls: [srv.url(sha256)], author: 'a'.repeat(64) };
  });
  const mine = new Map<string, Buffer>();
  const honest = Array.from({ length: 10 }, () => {
    const bytes = randomBytes(4096);
    const sha256 = srv.add(bytes, 'image/png');
    mine.set(sha256, bytes);
    return { sha256, urls: [srv.url(sha256, '.png')], author: 'b'.repeat(64) };
  });
  const t0 = performance.now();
  for (const job of flood) count('flood ' + q.enqueue(job));
  for (const job of honest) count('honest ' + q.enqueue(job));
  const enqueueMs = performance.now() - t0;
  // The flood's first two went straight into flight; 100 more wait (the per-author cap on waiting jobs).
  assert.deepEqual(Object.fromEntries(results), { 'flood queued': 102, 'flood dropped-author': 9898, 'honest queued': 10 });
  const s0 = q.stats();
  assert.equal(s0.queued + s0.inFlight + s0.fetched + s0.failed, 112);
  assert.ok(s0.queued <= 110 && s0.authorsQueued <= 2, JSON.stringify(s0));
  assert.equal(s0.droppedAuthor, 9898);
  await q.idle();
  const s = q.stats();
  assert.equal(s.fetched, 112, JSON.stringify(s));
  assert.equal(s.failed, 0);
  assert.equal(s.queued, 0);
  assert.equal(s.inFlight, 0);
  // Round robin: the honest author's 10 are done within the first ~2×10 (+ concurrency) fetches, not after the flood's 100.
  const lastHonest = Math.max(...done.map((d, i) => (d.job.author.startsWith('b') ? i : -1)));
  assert.ok(lastHonest < 24, `the honest author's last blob was fetch number ${lastHonest + 1} of ${done.length}`);
  for (const [sha256, bytes] of mine) assert.ok((await readFile(join(into, sha256))).equals(bytes));
  console.log(`# 10,010 enqueue calls took ${enqueueMs.toFixed(0)} ms in total (synchronous, nothing awaited)`);
});

test('the total cap holds across authors, and stop() aborts fetches in flight and leaves no temporary file', async () => {
  const into = await mkdtemp(join(dir, 'stop-'));
  srv.route('/stall', (_q, res) => void res.writeHead(200, { 'content-length': '1000' }).flushHeaders());
  const done: JobOutcome[] = [];
  const q = new FetchQueue(
    { maxQueued: 50, maxQueuedBytes: 16 * 1024 ** 2, maxQueuedPerAuthor: 10, concurrency: 2, bytesPerSecond: 0 },
    worker(into),
    (_j, o) => done.push(o),
  );
  const results: Record<string, number> = {};
  for (let a = 0; a < 20; a++) {
    for (let i = 0; i < 10; i++) {
      const r = q.enqueue({ sha256: randomBytes(32).toString('hex'), urls: [srv.url('/stall')], author: `author-${a}` });
      results[r] = (results[r] ?? 0) + 1;
    }
  }
  // Two went straight into flight, 50 wait, the rest were dropped and counted.
  assert.deepEqual(results, { queued: 52, 'dropped-full': 148 });
  assert.deepEqual(
    { queued: q.stats().queued, inFlight: q.stats().inFlight, droppedFull: q.stats().droppedFull },
    { queued: 50, inFlight: 2, droppedFull: 148 },
  );
  await waitFor(() => (srv.hits.get('/stall') ?? 0) >= 2);
  const t0 = Date.now();
  await q.stop();
  assert.ok(Date.now() - t0 < 10_000, 'stop does not wait for the idle timeout');
  assert.deepEqual(q.stats().failures, { aborted: 2 });
  assert.equal(q.stats().queued, 0);
  assert.equal(q.enqueue({ sha256: 'c'.repeat(64), urls: [srv.url('/stall')], author: 'x' }), 'stopped');
  assert.deepEqual(await readdir(into), []);
  assert.equal(done.length, 2);
});

test("the waiting jobs' URL bytes are capped too: long URLs cannot make a short queue large", async () => {
  const into = await mkdtemp(join(dir, 'bytes-'));
  const q = new FetchQueue(
    { maxQueued: 1000, maxQueuedBytes: 100_000, maxQueuedPerAuthor: 1000, concurrency: 1, bytesPerSecond: 0 },
    worker(into),
  );
  const long = (i: number, j: number) => srv.url(`/stall?${String(i).padStart(6, '0')}-${j}-${'x'.repeat(1950)}`);
  const results: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    const r = q.enqueue({
      sha256: randomBytes(32).toString('hex'),
      urls: Array.from({ length: 8 }, (_, j) => long(i, j)),
      author: `author-${i}`,
    });
    results[r] = (results[r] ?? 0) + 1;
  }
  const s = q.stats();
  // One in flight, then as many as fit in 100,000 bytes at ~16 kB each.
  assert.deepEqual(results, { queued: 7, 'dropped-full': 93 });
  assert.ok(s.queuedBytes <= 100_000 && s.queuedBytes > 80_000, String(s.queuedBytes));
  await q.stop();
  assert.equal(q.stats().queuedBytes, 0);
});

test('duplicates are counted once; a wrong first URL falls back to the next; refusals are counted by code', async () => {
  const into = await mkdtemp(join(dir, 'fallback-'));
  const bytes = randomBytes(10_000);
  const good = srv.add(bytes);
  srv.route('/wrong', (_q, r) => r.end(randomBytes(10_000)));
  const done: JobOutcome[] = [];
  const q = new FetchQueue(
    { maxQueued: 10, maxQueuedBytes: 16 * 1024 ** 2, maxQueuedPerAuthor: 10, concurrency: 1, bytesPerSecond: 0 },
    worker(into),
    (_j, o) => done.push(o),
  );
  assert.equal(q.enqueue({ sha256: good, urls: [srv.url('/wrong'), srv.url(good)], author: 'a' }), 'queued');
  assert.equal(q.enqueue({ sha256: good, urls: [srv.url(good)], author: 'b' }), 'duplicate');
  assert.equal(q.enqueue({ sha256: 'd'.repeat(64), urls: ['http://10.0.0.1/x', 'ftp://x.test/y'], author: 'a' }), 'queued');
  await q.idle();
  assert.ok((await readFile(join(into, good))).equals(bytes));
  const s = q.stats();
  assert.deepEqual(
    { fetched: s.fetched, fetchedBytes: s.fetchedBytes, duplicates: s.duplicates, failed: s.failed, failures: s.failures },
    { fetched: 1, fetchedBytes: 10_000, duplicates: 1, failed: 1, failures: { 'bad-scheme': 1 } },
  );
  assert.deepEqual(
    done.map((o) => o.ok),
    [true, false],
  );
  // Once done, the same blob may be queued again (the caller checks its store first).
  assert.equal(q.enqueue({ sha256: good, urls: [srv.url(good)], author: 'b' }), 'queued');
  await q.idle();
});

test('the bandwidth budget is shared by all fetches', async () => {
  const into = await mkdtemp(join(dir, 'budget-'));
  const rate = 1024 * 1024;
  const q = new FetchQueue(
    { maxQueued: 10, maxQueuedBytes: 16 * 1024 ** 2, maxQueuedPerAuthor: 10, concurrency: 3, bytesPerSecond: rate },
    worker(into),
  );
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) {
    const sha256 = srv.add(randomBytes(rate));
    q.enqueue({ sha256, urls: [srv.url(sha256)], author: `a${i}` });
  }
  await q.idle();
  const s = performance.now() - t0;
  assert.equal(q.stats().fetched, 3);
  // 3 MiB at 1 MiB/s with 1 MiB of burst: at least 2 s whatever the machine's speed.
  assert.ok(s >= 1900, `3 MiB took ${s.toFixed(0)} ms`);
});

async function waitFor(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
