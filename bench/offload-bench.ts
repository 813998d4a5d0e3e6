// Offload benchmark: the seed's headline claim, "offload 99%+ of relay bandwidth".
//
//   One bridge (an in-process Sidecar) archives one author's 10 MB of notes (1 MB in --quick).
//   20 readers, each its own client (its own DHT node, WebTorrent client, ports and piece store;
//   spread over 4 worker threads, --workers=N, 0: a process each), resolve that author AT ONCE
//   through the swarm: they find the bridge and each other through the DHT and trade pieces
//   (rarest first); each keeps serving until all are done. Bridge and readers get the same upload limit
//   (4 MiB/s, UPLOAD_LIMIT below), as peers on equal uplinks —
//   on loopback without a limit the bridge alone would serve everyone before any reader could
//   help. Figure: bytes the bridge uploaded ÷ bytes delivered to all readers. Goal ≤ 20%.
//   Baseline in the same run: the same reads served by a real relay (@nostr-relay/core +
//   SQLite) with NIP-01 REQs at once: bytes the relay sent (all of it, by construction).
//   The share depends on how promptly the bridge answers next to the readers on this machine's
//   2 cores: with a process per reader the bridge's process was 1 of 21 busy processes (its
//   event loop late by 137 ms at p99) and answered piece requests late, so readers took more
//   pieces from each other. Its event-loop delay is printed with the figures.
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/offload-bench.js [--quick] [--n=READERS] [--workers=N]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startLocalDht } from '../test/testkit/local-dht.js';
import { startTestRelay } from '../test/testkit/nostr-relay.js';
import { signer } from '../test/testkit/events.js';
import { figure, fmt, log, median, onCleanup, parseArgs, printFigures, runMain, type Figure } from './common.js';
import {
  archiveBytes,
  notes,
  ReaderPool,
  spawnReader,
  startBridgeInProcess,
  type ChildResult,
  type ReaderArgs,
  type ReaderChild,
} from './reader-support.js';

const GOAL = 0.2;
const UPLOAD_LIMIT = 4 * 1024 * 1024;
/** Worker threads the readers are spread over (--workers=N). */
const WORKERS = 4;

/** `workers` 0: a process per reader. */
function readerPool(workers: number, readers: number): { start(a: ReaderArgs): ReaderChild; close(): Promise<void> } {
  return workers === 0 ? { start: spawnReader, close: async () => {} } : new ReaderPool(Math.min(workers, readers));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const workersArg = argv.find((a) => a.startsWith('--workers='));
  const args = parseArgs(argv.filter((a) => a !== workersArg));
  const readers = args.n ?? 20;
  const workers = workersArg ? Number(workersArg.slice('--workers='.length)) : WORKERS;
  if (!Number.isSafeInteger(workers) || workers < 0) throw new Error(`bad ${workersArg}`);
  const targetBytes = (args.quick ? 1 : 10) * 1024 * 1024;
  const contentBytes = 500;
  const dht = await startLocalDht(20);
  onCleanup(() => dht.stop());
  const bridge = await startBridgeInProcess(dht);
  const author = await signer();
  // Notes of ~500 B content are ~760 B of JSON each.
  const count = Math.ceil(targetBytes / 760);
  const events = notes(author, count, contentBytes, 0);
  const bytes = archiveBytes(events);
  const made = await bridge.archive(events, [author.pubkey]);
  log(
    `offload bench: ${readers} readers at once, one author's archive of ${fmt(bytes / 1024 ** 2, 2)} MiB (${fmt(count)} events, ${made.bundles} bundle); upload limit ${fmt(UPLOAD_LIMIT / 1024 ** 2, 1)} MiB/s for the bridge and for each reader`,
  );
  (bridge.sc.seeder!.client as unknown as { throttleUpload(rate: number): void }).throttleUpload(UPLOAD_LIMIT);

  // Swarm: all readers at once, each lingering (serving) until every reader is done.
  // How promptly the bridge's process answers while the readers run (readers that starve it of
  // CPU make it answer piece requests late, and so take more pieces from each other).
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const up0 = bridge.sc.seeder!.stats().uploaded;
  const t0 = Date.now();
  const swarmPool = readerPool(workers, readers);
  const kids = Array.from({ length: readers }, () =>
    swarmPool.start({
      mode: 'swarm',
      bootstrap: dht.bootstrap,
      bridge: bridge.key,
      author: author.pubkey,
      linger: true,
      uploadLimit: UPLOAD_LIMIT,
    }),
  );
  const results: ChildResult[] = await Promise.all(kids.map((k) => k.result));
  const swarmMs = Date.now() - t0;
  const bridgeUp = bridge.sc.seeder!.stats().uploaded - up0;
  loopDelay.disable();
  const readersUp = await Promise.all(kids.map((k) => k.release()));
  await swarmPool.close();
  const incomplete = results.filter((r) => !r.ok || r.events !== count);
  if (incomplete.length) throw new Error(`${incomplete.length} swarm readers incomplete: ${JSON.stringify(incomplete[0])}`);
  const delivered = results.reduce((n, r) => n + r.downloaded, 0);
  const share = bridgeUp / delivered;
  log(
    `swarm: all ${readers} readers done in ${fmt(swarmMs / 1000, 1)} s (per reader: median ${fmt(median(results.map((r) => r.allMs)) / 1000, 1)} s, max ${fmt(Math.max(...results.map((r) => r.allMs)) / 1000, 1)} s); ` +
      `delivered ${fmt(delivered / 1024 ** 2, 1)} MiB, bridge uploaded ${fmt(bridgeUp / 1024 ** 2, 1)} MiB, readers uploaded ${fmt(readersUp.reduce((a, b) => a + b, 0) / 1024 ** 2, 1)} MiB`,
  );

  log(
    `  bridge process event-loop delay meanwhile: p50 ${fmt(loopDelay.percentile(50) / 1e6, 1)} ms, p99 ${fmt(loopDelay.percentile(99) / 1e6, 1)} ms, max ${fmt(loopDelay.max / 1e6)} ms (a 10 ms timer; 10 ms = on time)`,
  );
  const phase = (k: 'metadataMs' | 'firstByteMs' | 'ms') =>
    fmt(median(results.map((r) => (r.phases as { bundles?: Record<string, number>[] } | undefined)?.bundles?.[0]?.[k] ?? NaN)) / 1000, 1);
  log(
    `  per reader (median): DHT ready ${fmt(median(results.map((r) => r.readyMs)) / 1000, 1)} s after its start; then metadata ${phase('metadataMs')} s, first byte ${phase('firstByteMs')} s, bundle read ${phase('ms')} s`,
  );

  // Relay baseline: the same reads as REQs at once.
  const relay = await startTestRelay();
  onCleanup(() => relay.stop());
  await relay.preload(events);
  relay.resetCounters();
  const r0 = Date.now();
  const relayPool = readerPool(workers, readers);
  const viaRelay = await Promise.all(
    Array.from({ length: readers }, () => relayPool.start({ mode: 'relay', url: relay.url, author: author.pubkey }).result),
  );
  const relayMs = Date.now() - r0;
  await relayPool.close();
  const relaySent = relay.sentBytes();
  const badRelay = viaRelay.filter((r) => !r.ok || r.events !== count);
  if (badRelay.length) throw new Error(`${badRelay.length} relay readers incomplete: ${JSON.stringify(badRelay[0])}`);
  log(`relay: all ${readers} REQ readers done in ${fmt(relayMs / 1000, 1)} s; the relay sent ${fmt(relaySent / 1024 ** 2, 1)} MiB`);

  const figures: Figure[] = [
    figure('bridge upload / bytes delivered to readers', share, 'ratio', null, `≤ ${GOAL}`),
    figure(`bridge upload for the ${readers} reads`, bridgeUp, 'B', relaySent),
    figure('bytes delivered to readers (swarm)', delivered, 'B', readers * bytes),
    figure('all readers done (swarm)', swarmMs, 'ms', relayMs),
  ];
  log('');
  log(
    `goal: bridge ≤ ${GOAL * 100}% of delivered bytes: ${share <= GOAL ? 'met' : 'MISSED'} (${fmt(share * 100, 1)}%); the relay served 100% of its reads itself (${fmt(relaySent / 1024 ** 2, 1)} MiB)`,
  );
  log('baselines: the relay REQ run (same readers, same events, same run); delivered: readers × archive bytes');
  printFigures('offload', figures, { readers, workers, archiveBytes: bytes, events: count, uploadLimit: UPLOAD_LIMIT, quick: args.quick });
}

runMain(main);
