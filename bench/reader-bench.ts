// Reader benchmark: `resolve` of an author with 10,000 archived events, on a local DHT.
//
//   One bridge (an in-process Sidecar) archives the author's 10,000 notes (~300 B of content
//   each) together with 999 other authors (3 notes each) in ONE bundle of 1,000 authors. A reader
//   in its own process (the library behind `nostr-bt resolve`, its own DHT node, nothing shared
//   but the bootstrap address and the bridge key) then resolves the author. Figures:
//     - time to the first verified event and to all events (from the start of the read; the
//       reader's DHT bootstrap is reported apart), and `nostr-bt resolve` end to end as a command;
//     - bytes downloaded (pieces + metadata) ÷ bytes of the author's events. Goal ≤ 1.5×.
//   Baseline in the same run: the same events read with a NIP-01 REQ from a real relay
//   (@nostr-relay/core + SQLite, paging 500 at a time) holding them, from its own process.
//   The local DHT's nodes run in a worker thread (bench/dht-worker.ts), so that publishing the
//   1,000 authors' pointers before the read uses both cores.
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/reader-bench.js [--quick] [--n=EVENTS]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestRelay } from '../test/testkit/nostr-relay.js';
import { figure, fmt, log, median, onCleanup, parseArgs, printFigures, runMain, type Figure } from './common.js';
import { archiveBytes, archivedAuthor, resolveCommand, spawnReader, type ChildResult } from './reader-support.js';

const OVERHEAD_GOAL = 1.5;

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.n ?? (args.quick ? 1_000 : 10_000);
  const others = 999;
  const perOther = args.quick ? 1 : 3;
  const runs = args.quick ? 1 : 2;
  // Quick: 10 DHT nodes (every node then stores every pointer): publishing the 1,000 authors'
  // pointers before the read costs half the CPU of 20 nodes.
  const dhtNodes = args.quick ? 10 : 20;
  log(
    `reader bench: resolve of an author with ${fmt(n)} events, in one bundle with ${others} other authors (${perOther} notes each); ${runs} run(s); local DHT of ${dhtNodes} nodes`,
  );

  const t0 = Date.now();
  const { dht, bridge, author, mine, made } = await archivedAuthor({ dhtNodes, events: n, others, perOther });
  const authorBytes = archiveBytes(mine);
  log(
    `archived ${fmt(n + others * perOther)} events in ${made.bundles} bundle(s), ${fmt(made.bytes / 1024, 1)} KiB, in ${fmt((Date.now() - t0) / 1000, 1)} s; the author's file: ${fmt(authorBytes / 1024, 1)} KiB`,
  );

  const relay = await startTestRelay();
  onCleanup(() => relay.stop());
  await relay.preload(mine);

  const swarm: ChildResult[] = [];
  const viaRelay: ChildResult[] = [];
  const cli: number[] = [];
  for (let r = 0; r < runs; r++) {
    const s = await spawnReader({ mode: 'swarm', bootstrap: dht.bootstrap, bridge: bridge.key, author: author.pubkey }).result;
    if (!s.ok || s.events !== n) throw new Error(`swarm read incomplete: ${JSON.stringify(s)}`);
    swarm.push(s);
    relay.resetCounters();
    const q = await spawnReader({ mode: 'relay', url: relay.url, author: author.pubkey }).result;
    if (!q.ok || q.events !== n) throw new Error(`relay read incomplete: ${JSON.stringify(q)}`);
    q.downloaded = relay.sentBytes();
    viaRelay.push(q);
    const c0 = Date.now();
    const out = await promisify(execFile)(process.execPath, resolveCommand(dht.bootstrap, bridge.key, author.pubkey), {
      maxBuffer: 1024 ** 3,
    });
    cli.push(Date.now() - c0);
    const lines = out.stdout.split('\n').filter(Boolean).length;
    if (lines !== n) throw new Error(`nostr-bt resolve printed ${lines} events, expected ${n}`);
    log(
      `run ${r + 1}: swarm first event ${s.firstEventMs} ms, all ${s.allMs} ms (bundle read ${s.fetchMs} ms; DHT ready after ${s.readyMs} ms), ${fmt(s.downloaded / 1024, 1)} KiB down; ` +
        `(${JSON.stringify(s.phases)}) relay first ${q.firstEventMs} ms, all ${q.allMs} ms, ${fmt(q.downloaded / 1024, 1)} KiB; nostr-bt resolve command ${cli[r]} ms`,
    );
  }

  const med = (xs: number[]) => median(xs);
  const overhead = med(swarm.map((s) => s.downloaded)) / authorBytes;
  const figures: Figure[] = [
    figure(
      'resolve: time to first event',
      med(swarm.map((s) => s.firstEventMs ?? NaN)),
      'ms',
      med(viaRelay.map((q) => q.firstEventMs ?? NaN)),
    ),
    figure('resolve: time to all events', med(swarm.map((s) => s.allMs)), 'ms', med(viaRelay.map((q) => q.allMs))),
    figure('reader DHT bootstrap (before the read)', med(swarm.map((s) => s.readyMs)), 'ms'),
    figure('nostr-bt resolve, whole command', med(cli), 'ms'),
    figure('bytes downloaded / author bytes', overhead, 'x', 1, `≤ ${OVERHEAD_GOAL}x`),
    figure('bytes downloaded (swarm)', med(swarm.map((s) => s.downloaded)), 'B', med(viaRelay.map((q) => q.downloaded))),
  ];
  log('');
  log(
    `goal: bytes downloaded ≤ ${OVERHEAD_GOAL}× the author's bytes: ${overhead <= OVERHEAD_GOAL ? 'met' : 'MISSED'} (${fmt(overhead, 3)}×)`,
  );
  log("baselines: time and bytes of the same read through a relay REQ (same run); bytes: the author's own event bytes");
  printFigures('reader', figures, { events: n, authors: others + 1, bundles: made.bundles, authorBytes, quick: args.quick });
}

runMain(main);
