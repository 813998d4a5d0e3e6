// What the media fetcher's safety costs (sidecar/media/safe-fetch.ts): one blob fetched from a
// loopback Blossom stand-in by fetchBlob (address checks, pinned connect, size cap, sha256 while
// streaming, temporary file and rename) against a plain http.get piped into a file (the
// baseline, same server, same run, alternating rounds); and what an enqueue costs the caller
// when one author floods the queue (most calls are drops). Prints figures; never asserts timings.
//
//   node dist/bench/media-bench.js [--quick] [--n=MEGABYTES]
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FetchQueue } from '../sidecar/media/fetch-queue.js';
import { DEFAULT_FETCH_POLICY, fetchBlob } from '../sidecar/media/safe-fetch.js';
import { mediaServer } from '../test/testkit/media-server.js';
import { figure, fmt, log, makeTempDir, median, onCleanup, parseArgs, printFigures, runMain } from './common.js';

const ROUNDS = 5;

async function plainGet(url: string, dest: string): Promise<void> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, { agent: false }, resolve).on('error', reject));
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  await pipeline(res, createWriteStream(dest));
}

async function main(): Promise<void> {
  const args = parseArgs();
  const mb = args.n ?? (args.quick ? 10 : 50);
  const dir = makeTempDir('nostr-bt-media-bench-');
  const srv = await mediaServer();
  onCleanup(() => srv.close());
  const bytes = randomBytes(mb * 1024 * 1024);
  const sha256 = srv.add(bytes, 'video/mp4');
  const policy = { ...DEFAULT_FETCH_POLICY, allowLoopback: true, maxBlobBytes: bytes.length };
  log(`media bench: a ${mb} MiB blob over loopback, ${ROUNDS} rounds each; load average ${loadavg()[0]!.toFixed(2)}`);

  const safe: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const which of round % 2 === 0 ? (['plain', 'safe'] as const) : (['safe', 'plain'] as const)) {
      const dest = join(dir, `${which}-${round}`);
      const t = performance.now();
      if (which === 'safe') await fetchBlob({ url: srv.url(sha256, '.mp4'), sha256, dest }, policy);
      else await plainGet(srv.url(sha256, '.mp4'), dest);
      const mbps = mb / ((performance.now() - t) / 1000);
      (which === 'safe' ? safe : plain).push(mbps);
      await rm(dest);
      log(`round ${round + 1}, ${which}: ${fmt(mbps, 0)} MiB/s`);
    }
  }

  // One author floods: 100,000 enqueue calls against a queue that takes 100 of them; nothing is fetched (the worker never settles until stop).
  const q = new FetchQueue({ maxQueued: 10_000, maxQueuedBytes: 8 * 1024 ** 2, maxQueuedPerAuthor: 100, concurrency: 1, bytesPerSecond: 0 }, (_job, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))));
  const jobs = Array.from({ length: 100_000 }, (_, i) => ({ sha256: i.toString(16).padStart(64, '0'), urls: [`https://blossom.example/${i.toString(16).padStart(64, '0')}.jpg`], author: 'a'.repeat(64) }));
  const t = performance.now();
  for (const j of jobs) q.enqueue(j);
  const enqueueUs = ((performance.now() - t) * 1000) / jobs.length;
  const s = q.stats();
  await q.stop();
  log(`enqueue: ${fmt(enqueueUs, 3)} µs per call (${s.enqueued} queued, ${s.droppedAuthor} dropped)`);

  const load = loadavg()[0]!;
  printFigures(
    'media',
    [
      figure(`safe fetch of a ${mb} MiB blob, checked and sha256-verified (baseline: plain http.get into a file)`, median(safe), 'MiB/s', median(plain)),
      figure('enqueue of a media fetch job, one author flooding (100,000 calls, 100 kept)', enqueueUs, 'µs/call'),
    ],
    { mode: args.quick ? 'quick' : 'full', mb, load: Number(load.toFixed(2)) },
  );
}

runMain(main);
