// Media offload: what the bridge's swarm saves a media server (issue 24).
//
//   A Blossom stand-in (a real HTTP server on loopback) holds one 50 MB blob (10 MB in --quick).
//   A bridge (an in-process Sidecar with media archiving on, on a local DHT) archives it from an
//   event's imeta tag: it fetches it once, verifies it and seeds it. Then 20 readers (--n), each
//   its own WebTorrent client with its own DHT node (spread over 4 worker threads, --workers=N),
//   fetch it AT ONCE by infohash alone: they find the bridge and each other through the DHT and
//   trade pieces (rarest first), each serving until all are done, each checking the sha256.
//   Bridge and readers get the same upload limit (as in offload-bench.ts: peers on equal
//   uplinks; on loopback without one the bridge alone would serve everyone before any reader
//   could help). Figure: bytes the bridge uploaded ÷ bytes delivered. Goal ≤ 10 %.
//   Baseline in the same run: the same 20 reads at once straight from the origin server with
//   plain HTTP GETs (the origin sends every byte, by construction).
//   Readers cancel requests a peer leaves unanswered for 5 s (scripts/reader/stale-requests.ts:
//   without it readers stalled near the end, their last pieces reserved by peers whose throttled
//   upload starved); NBT_NO_ENDGAME=1 runs without it, NBT_DIAG=1 prints a reader's pieces,
//   reservations and wires once it has made no progress for 15 s.
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/media-offload-bench.js [--quick] [--n=READERS] [--workers=N]
import http from 'node:http';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { startLocalDht } from '../test/testkit/local-dht.js';
import { mediaServer } from '../test/testkit/media-server.js';
import { pluginLine, randomPubkey, unsignedEvent } from '../test/testkit/events.js';
import { figure, fmt, log, makeTempDir, median, onCleanup, parseArgs, printFigures, runMain, stopOnce, type Figure } from './common.js';
import { ReaderPool, spawnReader, type ChildResult, type ReaderChild, type ReaderArgs } from './reader-support.js';

const GOAL = 0.1;
const UPLOAD_LIMIT = 4 * 1024 * 1024;
const WORKERS = 4;
const sink: IngestSink = { source: 'bench', trusted: true, committed: () => {} };

function readerPool(workers: number, readers: number): { start(a: ReaderArgs): ReaderChild; close(): Promise<void> } {
  return workers === 0 ? { start: spawnReader, close: async () => {} } : new ReaderPool(Math.min(workers, readers));
}

/** A plain GET of the whole blob; resolves with its sha256 and byte count. */
function plainGet(url: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const h = createHash('sha256');
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          h.update(c);
          bytes += c.length;
        });
        res.on('end', () => resolve({ sha256: h.digest('hex'), bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const workersArg = argv.find((a) => a.startsWith('--workers='));
  const args = parseArgs(argv.filter((a) => a !== workersArg));
  const readers = args.n ?? 20;
  const workers = workersArg ? Number(workersArg.slice('--workers='.length)) : WORKERS;
  if (!Number.isSafeInteger(workers) || workers < 0) throw new Error(`bad ${workersArg}`);
  const mb = args.quick ? 10 : 50;

  const origin = await mediaServer();
  onCleanup(() => origin.close());
  const bytes = randomBytes(mb * 1024 * 1024);
  const sha256 = origin.add(bytes, 'video/mp4');
  const dht = await startLocalDht(20);
  onCleanup(() => dht.stop());

  const dir = makeTempDir('nostr-bt-media-offload-');
  const config = loadConfig({
    dataDir: join(dir, 'data'),
    env: {},
    overrides: {
      dht: {
        port: 0,
        host: '127.0.0.1',
        bootstrap: dht.bootstrap,
        putsPerSecond: 1000,
        maxInFlightPuts: 32,
        maxPacketsPerSecondPerNode: 1000,
      },
      bittorrent: { port: 0 },
      discovery: { listen: '127.0.0.1:0' },
      status: { listen: '127.0.0.1:0' },
      media: { enabled: true, allowLoopback: true, maxBlobBytes: bytes.length },
    },
  });
  const sc = new Sidecar(config, createLogger('bench', 'silent'), { statusHttp: false, bundleSchedule: false });
  await sc.start();
  onCleanup(stopOnce(() => sc.stop()));
  const e = unsignedEvent(randomPubkey(), {
    kind: 1,
    created_at: Math.floor(Date.now() / 1000),
    content: 'a video',
    tags: [['imeta', `url ${origin.url(sha256, '.mp4')}`, `x ${sha256}`, 'm video/mp4']],
  });
  const originBefore = origin.blobBytesSent;
  sc.ingestor.submit(pluginLine(e), sink);
  const deadline = Date.now() + 120_000;
  while (sc.media!.status().seeded === 0) {
    if (Date.now() > deadline) throw new Error(`blob not seeded in 120 s: ${JSON.stringify(sc.media!.status())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const bridgeFetched = origin.blobBytesSent - originBefore;
  const infoHash = sc.media!.infoHashOf(sha256)!;
  // The bridge's announce reaches the local DHT before the readers look.
  await new Promise((r) => setTimeout(r, 2000));
  log(
    `media offload bench: ${readers} readers at once, one ${mb} MiB blob (the bridge fetched ${fmt(bridgeFetched / 1024 ** 2, 1)} MiB from the origin once); upload limit ${fmt(UPLOAD_LIMIT / 1024 ** 2, 1)} MiB/s for the bridge and each reader`,
  );
  (sc.seeder!.client as unknown as { throttleUpload(rate: number): void }).throttleUpload(UPLOAD_LIMIT);

  const up0 = sc.seeder!.stats().uploaded;
  const t0 = Date.now();
  const pool = readerPool(workers, readers);
  const kids = Array.from({ length: readers }, () =>
    pool.start({ mode: 'blob', bootstrap: dht.bootstrap, infoHash, sha256, linger: true, uploadLimit: UPLOAD_LIMIT }),
  );
  const results: ChildResult[] = await Promise.all(kids.map((k) => k.result));
  const swarmMs = Date.now() - t0;
  const bridgeUp = sc.seeder!.stats().uploaded - up0;
  const readersUp = await Promise.all(kids.map((k) => k.release()));
  await pool.close();
  const bad = results.filter((r) => !r.ok);
  if (bad.length) throw new Error(`${bad.length} readers incomplete: ${JSON.stringify(bad[0])}`);
  const delivered = results.reduce((n, r) => n + r.downloaded, 0);
  const share = bridgeUp / delivered;
  log(
    `swarm: all ${readers} readers done in ${fmt(swarmMs / 1000, 1)} s (per reader: median ${fmt(median(results.map((r) => r.allMs)) / 1000, 1)} s); delivered ${fmt(delivered / 1024 ** 2, 1)} MiB, ` +
      `bridge uploaded ${fmt(bridgeUp / 1024 ** 2, 1)} MiB, readers uploaded ${fmt(readersUp.reduce((a, b) => a + b, 0) / 1024 ** 2, 1)} MiB; the origin sent nothing meanwhile: ${origin.blobBytesSent - originBefore === bridgeFetched}`,
  );

  // Baseline: the same reads straight from the origin, at once.
  const sent0 = origin.blobBytesSent;
  const o0 = Date.now();
  const direct = await Promise.all(Array.from({ length: readers }, () => plainGet(origin.url(sha256, '.mp4'))));
  const originMs = Date.now() - o0;
  const originSent = origin.blobBytesSent - sent0;
  if (direct.some((d) => d.sha256 !== sha256)) throw new Error('a direct read got other bytes');
  log(
    `origin: all ${readers} direct GETs done in ${fmt(originMs / 1000, 1)} s; the origin sent ${fmt(originSent / 1024 ** 2, 1)} MiB (no upload limit on it)`,
  );

  const figures: Figure[] = [
    figure('bridge upload / bytes delivered to readers (media blob)', share, 'ratio', null, `≤ ${GOAL}`),
    figure(`bytes served for the ${readers} reads: bridge upload (baseline: the origin serving them directly)`, bridgeUp, 'B', originSent),
    figure('bytes delivered to readers (swarm)', delivered, 'B', readers * bytes.length),
    figure('all readers done (swarm; baseline: direct GETs from the origin, unthrottled)', swarmMs, 'ms', originMs),
  ];
  log('');
  log(`goal: bridge ≤ ${GOAL * 100}% of delivered bytes: ${share <= GOAL ? 'met' : 'MISSED'} (${fmt(share * 100, 1)}%)`);
  printFigures('media-offload', figures, { readers, workers, blobBytes: bytes.length, uploadLimit: UPLOAD_LIMIT, quick: args.quick });
}

runMain(main);
