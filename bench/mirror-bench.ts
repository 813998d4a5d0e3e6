// Mirror catch-up (issue 23 §5): an origin bridge (sidecar child process on a loopback DHT of
// bittorrent-dht nodes, bench/archive-origin.ts) holds a 100,000-event archive (10,000 with
// --quick) fed through its ingest socket; a fresh mirror sidecar (`[mirror] bridges = [origin]`)
// starts, reads the bridge item and the catalog from the DHT, downloads and verifies every bundle
// (sidecar/mirror/) and we time it from its start to its status saying "caught up" on the origin's
// current catalog. Baseline in the same run: python3-libtorrent downloading the same bundles (the
// origin's .torrent files, all at once in one session) from the origin's seeder, peer given
// directly (no DHT, no verification of events). Rounds alternate; median and range.
//
//   node dist/bench/mirror-bench.js [--quick] [--n=ROUNDS]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  DIST_DIR,
  figure,
  fmt,
  log,
  makeTempDir,
  median,
  medianSpread,
  onCleanup,
  parseArgs,
  printFigures,
  runMain,
  startSidecarChild,
} from './common.js';
import { localDhtSections, sidecarConfig, startOrigin, type Origin } from './archive-origin.js';

const PYTHON = '/usr/bin/python3';
const LT_SCRIPT = join(DIST_DIR, '..', 'bench', 'libtorrent_bench.py');

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

interface MirrorRound {
  /** Mirror process spawned → caught up; and its ready line → caught up. */
  ms: number;
  fromReadyMs: number;
  bundles: number;
  events: number;
  bytes: number;
  downloaded: number;
  items: number;
  /** From the start: the origin's catalog known, every item held, first bundle held (as /status showed them, polled every 50 ms). */
  phases: { catalogMs: number | null; itemsMs: number | null; firstBundleMs: number | null };
}

async function mirrorRound(o: Origin): Promise<MirrorRound> {
  const { configPath, dataDir } = sidecarConfig('nostr-bt-mirror-bench-', {
    ...localDhtSections(o.bootstrap),
    mirror: { bridges: [o.key], pollIntervalSeconds: 1, putsPerSecond: 200, bundleTimeoutSeconds: 600, republishIntervalSeconds: 3600 },
  });
  const t0 = Date.now();
  const sc = await startSidecarChild(configPath, dataDir, 60_000);
  const ready = Date.now();
  const phases: MirrorRound['phases'] = { catalogMs: null, itemsMs: null, firstBundleMs: null };
  try {
    const st = await sc.waitFor((s) => {
      const b = s.mirror?.bridges[0];
      const at = Date.now() - t0;
      if (b?.catalog === o.catalog) phases.catalogMs ??= at;
      if (b && b.items.held >= o.authors + 1) phases.itemsMs ??= at;
      if (b && b.bundles.held > 0) phases.firstBundleMs ??= at;
      return Boolean(b && b.catalog === o.catalog && b.caughtUp);
    }, 900_000);
    const t1 = Date.now();
    const b = st.mirror!.bridges[0]!;
    if (b.bundles.held !== o.bundles.length) throw new Error(`mirror holds ${b.bundles.held} of ${o.bundles.length} bundles`);
    if (b.bundles.events !== o.bundles.reduce((n, x) => n + x.events, 0))
      throw new Error(`mirror holds ${b.bundles.events} events; refused ${JSON.stringify(b.bundles.refused)}`);
    return {
      ms: t1 - t0,
      fromReadyMs: t1 - ready,
      bundles: b.bundles.held,
      events: b.bundles.events,
      bytes: b.bundles.bytes,
      downloaded: st.mirror!.downloadedBytes,
      items: b.items.held,
      phases,
    };
  } finally {
    await sc.stop(20_000);
  }
}

interface LtRound {
  ok: boolean;
  seconds: number;
  bytes: number;
  torrents: number;
  complete: number;
  payloadDownloaded: number;
  errors: string[];
}

function libtorrentRound(o: Origin): Promise<LtRound> {
  const dir = makeTempDir('nostr-bt-mirror-bench-lt-');
  const list = join(dir, 'torrents.txt');
  writeFileSync(list, o.bundles.map((b) => b.torrent).join('\n') + '\n');
  const save = join(dir, 'save');
  const c = spawn(PYTHON, [LT_SCRIPT, 'fetch-many', '--torrents', list, '--save', save, '--peer', String(o.seedPort), '--timeout', '900'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onCleanup(async () => void (c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));
  let out = '';
  let err = '';
  c.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  c.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    c.once('error', reject);
    c.once('exit', () => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as LtRound);
      } catch {
        reject(new Error(`libtorrent fetch-many printed no result: ${out.slice(-500)} ${err}`));
      }
    });
  });
}

const spread = (xs: number[], d = 1) => medianSpread(xs, d);

runMain(async () => {
  const args = parseArgs();
  const events = args.quick ? 10_000 : 100_000;
  const authors = args.quick ? 100 : 200;
  const rounds = args.n ?? 3;
  const loadStart = load();
  log(`mirror bench: ${fmt(events)} events of ${authors} authors, ${rounds} rounds each; load average ${loadStart}`);
  const o = await startOrigin({ events, authors, contentBytes: 300, dhtNodes: 20 });
  const bytes = o.bundles.reduce((n, b) => n + b.bytes, 0);
  const mirror: MirrorRound[] = [];
  const lt: LtRound[] = [];
  for (let i = 0; i < rounds; i++) {
    const m = await mirrorRound(o);
    mirror.push(m);
    log(
      `  round ${i + 1} mirror: caught up in ${fmt(m.ms)} ms from its start (${fmt(m.fromReadyMs)} ms from ready): ` +
        `${fmt(m.events / (m.ms / 1000))} events/s, ${fmt(m.bytes / 1e6 / (m.ms / 1000), 2)} MB/s; ${m.bundles} bundles, ` +
        `${fmt(m.events)} events, ${fmt(m.bytes / 1e6, 1)} MB (${fmt(m.downloaded / 1e6, 1)} MB received), ${m.items} items held; ` +
        `catalog at ${fmt(m.phases.catalogMs ?? NaN)} ms, every item at ${fmt(m.phases.itemsMs ?? NaN)} ms, first bundle at ${fmt(m.phases.firstBundleMs ?? NaN)} ms; load ${load()}`,
    );
    const l = await libtorrentRound(o);
    if (!l.ok) throw new Error(`libtorrent did not complete: ${l.complete}/${l.torrents} ${JSON.stringify(l.errors)}`);
    lt.push(l);
    log(
      `  round ${i + 1} libtorrent: ${l.torrents} bundles in ${fmt(l.seconds * 1000)} ms: ` +
        `${fmt(o.events / l.seconds)} events/s, ${fmt(l.bytes / 1e6 / l.seconds, 2)} MB/s; load ${load()}`,
    );
  }
  const mEps = mirror.map((m) => m.events / (m.ms / 1000));
  const mMBps = mirror.map((m) => m.bytes / 1e6 / (m.ms / 1000));
  const lEps = lt.map((l) => o.events / l.seconds);
  const lMBps = lt.map((l) => l.bytes / 1e6 / l.seconds);
  const ratio = median(mMBps) / median(lMBps);
  log(
    `→ catch-up of ${fmt(o.events)} events (${o.bundles.length} bundles, ${fmt(bytes / 1e6, 1)} MB): mirror ${spread(mEps, 0)} events/s, ` +
      `${spread(mMBps, 2)} MB/s; libtorrent ${spread(lEps, 0)} events/s, ${spread(lMBps, 2)} MB/s; mirror = ${fmt(ratio, 3)}× libtorrent`,
  );
  log(
    `SUMMARY mirror-bench: ${fmt(o.events)} events, ${o.bundles.length} bundles, ${fmt(bytes / 1e6, 1)} MB; mirror catch-up ` +
      `${fmt(median(mirror.map((m) => m.ms)))} ms median of ${rounds} (${fmt(median(mEps))} events/s, ${fmt(median(mMBps), 2)} MB/s); ` +
      `libtorrent ${fmt(median(lt.map((l) => l.seconds * 1000)))} ms (${fmt(median(lMBps), 2)} MB/s); ratio ${fmt(ratio, 3)}; ` +
      `load ${loadStart} → ${load()}`,
  );
  printFigures(
    'mirror',
    [
      figure(
        `mirror catch-up, ${fmt(o.events)} events from start to caught up: median of ${rounds}`,
        median(mEps),
        'events/s',
        median(lEps),
      ),
      figure(`mirror catch-up, ${fmt(bytes / 1e6, 1)} MB of bundles: median of ${rounds}`, median(mMBps), 'MB/s', median(lMBps)),
      figure(`libtorrent download of the same ${o.bundles.length} bundles (one session, peer given): median`, median(lMBps), 'MB/s'),
      figure('mirror catch-up time from start: median', median(mirror.map((m) => m.ms)), 'ms'),
      figure(
        "mirror: start → every author's pointer item and the bridge item held: median",
        median(mirror.map((m) => m.phases.itemsMs ?? NaN)),
        'ms',
      ),
      figure(
        // Items and bundles are fetched at once after the catalog: this is download + verification + the items still being read.
        'mirror: after the catalog (catalog known → caught up: items, bundle download + verification): median',
        median(mirror.map((m) => m.ms - (m.phases.catalogMs ?? NaN))),
        'ms',
        median(lt.map((l) => l.seconds * 1000)),
      ),
    ],
    { quick: args.quick, events: o.events, authors, bundles: o.bundles.length, bytes, rounds: { mirror, libtorrent: lt } },
  );
});
