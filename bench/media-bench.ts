// What the media fetcher's safety costs (sidecar/media/safe-fetch.ts): one blob fetched from a
// loopback Blossom stand-in by fetchBlob (address checks, pinned connect, size cap, sha256 while
// streaming, temporary file and rename) against a plain http.get piped into a file (the
// baseline, same server, same run, alternating rounds); and what an enqueue costs the caller
// when one author floods the queue (most calls are drops); and, through a whole in-process
// sidecar with media archiving on, the time from an event's acceptance (its line submitted to
// ingest) to its blob being seeded and to an independent libtorrent peer having downloaded it by
// infohash from the sidecar (baselines in the same run: a plain http.get of the same blob, and
// libtorrent downloading the already seeded blob). Prints figures; never asserts timings.
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
import { mediaServer, type MediaServer } from '../test/testkit/media-server.js';
import { ltFetch } from '../test/testkit/libtorrent.js';
import { pluginLine, randomPubkey, unsignedEvent } from '../test/testkit/events.js';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
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
  const q = new FetchQueue(
    { maxQueued: 10_000, maxQueuedBytes: 8 * 1024 ** 2, maxQueuedPerAuthor: 100, concurrency: 1, bytesPerSecond: 0 },
    (_job, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))),
  );
  const jobs = Array.from({ length: 100_000 }, (_, i) => ({
    sha256: i.toString(16).padStart(64, '0'),
    urls: [`https://blossom.example/${i.toString(16).padStart(64, '0')}.jpg`],
    author: 'a'.repeat(64),
  }));
  const t = performance.now();
  for (const j of jobs) q.enqueue(j);
  const enqueueUs = ((performance.now() - t) * 1000) / jobs.length;
  const s = q.stats();
  await q.stop();
  log(`enqueue: ${fmt(enqueueUs, 3)} µs per call (${s.enqueued} queued, ${s.droppedAuthor} dropped)`);

  const archiveMb = args.quick ? 2 : 10;
  const a = await acceptanceToSwarm(srv, dir, archiveMb, args.quick ? 2 : 4);

  const load = loadavg()[0]!;
  printFigures(
    'media',
    [
      figure(
        `safe fetch of a ${mb} MiB blob, checked and sha256-verified (baseline: plain http.get into a file)`,
        median(safe),
        'MiB/s',
        median(plain),
      ),
      figure('enqueue of a media fetch job, one author flooding (100,000 calls, 100 kept)', enqueueUs, 'µs/call'),
      figure(
        `event accepted → its ${archiveMb} MiB blob seeded (baseline: plain http.get of the blob)`,
        median(a.seeded),
        'ms',
        median(a.plainGet),
      ),
      figure(
        `event accepted → libtorrent downloaded the ${archiveMb} MiB blob by infohash from the sidecar (baseline: libtorrent downloading it once seeded)`,
        median(a.swarm),
        'ms',
        median(a.ltOnly),
      ),
    ],
    { mode: args.quick ? 'quick' : 'full', mb, load: Number(load.toFixed(2)) },
  );
}

const sink: IngestSink = { source: 'bench', trusted: true, committed: () => {} };

/** Rounds of: a new blob on the origin, an event referencing it submitted to a real in-process sidecar, timed to seeded and to downloaded from the swarm. */
async function acceptanceToSwarm(
  srv: MediaServer,
  dir: string,
  mb: number,
  rounds: number,
): Promise<{ seeded: number[]; swarm: number[]; plainGet: number[]; ltOnly: number[] }> {
  const config = loadConfig({
    dataDir: join(dir, 'sidecar'),
    env: {},
    overrides: {
      dht: { enabled: false, bootstrap: [] },
      bittorrent: { port: 0 },
      status: { listen: '127.0.0.1:0' },
      media: { enabled: true, allowLoopback: true, maxBlobBytes: mb * 1024 * 1024 },
    },
  });
  const sc = new Sidecar(config, createLogger('bench', 'silent'), { statusHttp: false, bundleSchedule: false });
  await sc.start();
  onCleanup(() => sc.stop());
  const out = { seeded: [] as number[], swarm: [] as number[], plainGet: [] as number[], ltOnly: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const bytes = randomBytes(mb * 1024 * 1024);
    const sha256 = srv.add(bytes, 'video/mp4');
    const url = srv.url(sha256, '.mp4');
    const e = unsignedEvent(randomPubkey(), {
      kind: 1,
      created_at: Math.floor(Date.now() / 1000),
      content: 'clip',
      tags: [['imeta', `url ${url}`, `x ${sha256}`, 'm video/mp4']],
    });
    const before = sc.media!.status().seeded;
    const t0 = performance.now();
    sc.ingestor.submit(pluginLine(e), sink);
    const deadline = t0 + 60_000;
    while (sc.media!.status().seeded === before) {
      if (performance.now() > deadline) throw new Error(`blob not seeded within 60 s: ${JSON.stringify(sc.media!.status().queue)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const tSeeded = performance.now() - t0;
    const ih = sc.media!.infoHashOf(sha256)!;
    const got = await ltFetch({
      magnet: `magnet:?xt=urn:btih:${ih}`,
      save: join(dir, `lt-${round}`),
      peerPort: sc.seeder!.port,
      timeoutSec: 60,
    });
    const tSwarm = performance.now() - t0;
    if (!got.ok || got.payloadDownloaded < bytes.length) throw new Error(`libtorrent did not get the blob: ${JSON.stringify(got)}`);
    // Baselines, same blob, same run: the origin read plainly, and libtorrent alone (the blob already seeded).
    const t1 = performance.now();
    await plainGet(url, join(dir, `plain-${round}`));
    const tPlain = performance.now() - t1;
    const t2 = performance.now();
    const again = await ltFetch({
      magnet: `magnet:?xt=urn:btih:${ih}`,
      save: join(dir, `lt-again-${round}`),
      peerPort: sc.seeder!.port,
      timeoutSec: 60,
    });
    const tLt = performance.now() - t2;
    if (!again.ok) throw new Error('libtorrent baseline failed');
    for (const d of [`lt-${round}`, `lt-again-${round}`, `plain-${round}`]) await rm(join(dir, d), { recursive: true, force: true });
    out.seeded.push(tSeeded);
    out.swarm.push(tSwarm);
    out.plainGet.push(tPlain);
    out.ltOnly.push(tLt);
    log(
      `archive round ${round + 1}: seeded ${fmt(tSeeded, 0)} ms, in libtorrent ${fmt(tSwarm, 0)} ms after acceptance (plain GET ${fmt(tPlain, 0)} ms, libtorrent alone ${fmt(tLt, 0)} ms)`,
    );
  }
  return out;
}

runMain(main);
