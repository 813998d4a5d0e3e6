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
//   upload starved; the throttles are fair now, sidecar/common/fair-throttle.ts); NBT_NO_ENDGAME=1
//   runs without it, NBT_DIAG=1 prints a reader's pieces, reservations and wires once it has made
//   no progress for 15 s, and every reader's view of the swarm at the end (incomplete readers'
//   views are always printed: wires, bytes from the bridge and from readers, choke state).
//   Also: event accepted → blob seeded, and → the first byte any reader got from the swarm.
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/media-offload-bench.js [--quick] [--n=READERS] [--workers=N]
import http from 'node:http';
import { randomBytes, createHash } from 'node:crypto';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { startLocalDht } from '../test/testkit/local-dht.js';
import { mediaServer } from '../test/testkit/media-server.js';
import { pluginLine, randomPubkey, unsignedEvent } from '../test/testkit/events.js';
import { figure, fmt, log, median, onCleanup, parseArgs, printFigures, runMain, type Figure } from './common.js';
import { readerPool, startBridgeInProcess, type ChildResult } from './reader-support.js';

const GOAL = 0.1;
const UPLOAD_LIMIT = 4 * 1024 * 1024;
const WORKERS = 4;
const sink: IngestSink = { source: 'bench', trusted: true, committed: () => {} };

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

  const bridge = await startBridgeInProcess(dht, { media: { enabled: true, allowLoopback: true, maxBlobBytes: bytes.length } });
  onCleanup(() => bridge.stop());
  const sc = bridge.sc;
  const e = unsignedEvent(randomPubkey(), {
    kind: 1,
    created_at: Math.floor(Date.now() / 1000),
    content: 'a video',
    tags: [['imeta', `url ${origin.url(sha256, '.mp4')}`, `x ${sha256}`, 'm video/mp4']],
  });
  const originBefore = origin.blobBytesSent;
  const acceptedAt = Date.now();
  sc.ingestor.submit(pluginLine(e), sink);
  const deadline = Date.now() + 120_000;
  while (sc.media!.status().seeded === 0) {
    if (Date.now() > deadline) throw new Error(`blob not seeded in 120 s: ${JSON.stringify(sc.media!.status())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const seededMs = Date.now() - acceptedAt;
  const bridgeFetched = origin.blobBytesSent - originBefore;
  const infoHash = sc.media!.infoHashOf(sha256)!;
  // Readers start at once: the time to the first piece byte any of them gets, from the event's
  // acceptance, is how soon the blob is downloadable from the swarm.
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
  const bridgeId = (sc.seeder!.client as unknown as { peerId: string }).peerId;
  logSwarm(results, bridgeId);
  const bad = results.filter((r) => !r.ok);
  if (bad.length) throw new Error(`${bad.length} readers incomplete: ${bad.map((r) => r.error).join('; ')}`);
  const firstByteAt = Math.min(...results.map((r) => r.firstByteAt ?? Infinity));
  const downloadableMs = firstByteAt - acceptedAt;
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
    figure('event accepted → blob stored, verified and seeded by the bridge', seededMs, 'ms', null),
    figure('event accepted → first blob byte a reader got from the swarm (readers started when it was seeded)', downloadableMs, 'ms', null),
  ];
  log('');
  log(`goal: bridge ≤ ${GOAL * 100}% of delivered bytes: ${share <= GOAL ? 'met' : 'MISSED'} (${fmt(share * 100, 1)}%)`);
  printFigures('media-offload', figures, { readers, workers, blobBytes: bytes.length, uploadLimit: UPLOAD_LIMIT, quick: args.quick });
}

/**
 * Each reader's view of the swarm when it finished or gave up: wires, bytes from the bridge and
 * from other readers, choke state. Says whether readers traded with each other or only with the bridge.
 */
function logSwarm(results: ChildResult[], bridgeId: string): void {
  const mib = (n: number) => fmt(n / 1024 ** 2, 1);
  let fromBridge = 0;
  let fromReaders = 0;
  const wiresToReaders: number[] = [];
  for (const [i, r] of results.entries()) {
    const v = r.swarm;
    if (!v) continue;
    const b = v.wires.filter((w) => w.peerId === bridgeId);
    const o = v.wires.filter((w) => w.peerId !== bridgeId);
    const fb = b.reduce((n, w) => n + w.dl, 0);
    const fo = o.reduce((n, w) => n + w.dl, 0);
    fromBridge += fb;
    fromReaders += fo;
    wiresToReaders.push(o.length);
    const line =
      `  reader ${i}: ${r.ok ? 'done' : `INCOMPLETE (${v.piecesMissing} pieces missing)`} in ${fmt(r.allMs / 1000, 1)} s; ` +
      `wires ${v.wires.length} (bridge ${b.length}); got ${mib(fb)} MiB from the bridge, ${mib(fo)} MiB from readers; sent ${mib(r.uploaded)} MiB; ` +
      `choked by ${v.wires.filter((w) => w.peerChoking).length}, choking ${v.wires.filter((w) => w.amChoking).length}; stale requests cancelled ${v.cancelled}`;
    if (process.env.NBT_DIAG || !r.ok) log(line);
    if (!r.ok)
      log(`    wires: ${JSON.stringify(v.wires.map((w) => ({ ...w, peerId: w.peerId === bridgeId ? 'bridge' : w.peerId.slice(-6) })))}`);
  }
  log(
    `swarm as the readers saw it: wires to other readers median ${median(wiresToReaders)} (min ${Math.min(...wiresToReaders)}); ` +
      `piece bytes from the bridge ${mib(fromBridge)} MiB, from other readers ${mib(fromReaders)} MiB`,
  );
}

runMain(main);
