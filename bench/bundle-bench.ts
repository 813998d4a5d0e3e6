// Bundle benchmark: how soon an accepted event can be downloaded from the sidecar's seeder, and how
// fast a 100 MB bundle downloads from it compared with libtorrent seeding the same files.
//
//   (a) latency: an in-process Sidecar with 2 s windows and the real bundle schedule. Each round
//       submits one event at a random moment of a window (plus filler events from other authors),
//       records when the ingestor committed it ("accepted"), waits for the bundle holding it
//       (the bundler's 'bundle' event, and polling), and has two independent clients fetch only that
//       author's file from the sidecar's peer port: a separate WebTorrent client object (TCP,
//       no DHT) and libtorrent (python3-libtorrent in its own process, TCP, plaintext). Figure:
//       downloaded − accepted, p50 and max. Goal: ≤ window + 2 s.
//   (b) throughput: ~100 MB bundle (100 authors × ~1 MB; 10 MB in --quick) made through the
//       sidecar; libtorrent downloads it from the sidecar, and (baseline, same run, same files)
//       from a libtorrent seeder in seed_mode, alternating, with a fresh session each time.
//       Goal: sidecar ≥ 0.5× libtorrent.
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/bundle-bench.js [--quick] [--n=ROUNDS] [--only=latency,throughput] [--toml='...']
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type WebTorrent from 'webtorrent';
import type { Torrent } from 'webtorrent';
import { quietWebTorrent } from '../test/testkit/quiet-webtorrent.js';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import type { BundleRecord } from '../sidecar/index/store.js';
import { extractBundle, torrentPathOf } from '../sidecar/bundles/builder.js';
import { contentOf, pluginLine, pubkeyN, unsignedEvent } from '../test/testkit/events.js';
import {
  DIST_DIR,
  figure,
  fmt,
  isAborted,
  log,
  makeTempDir,
  median,
  onCleanup,
  stopOnce,
  parseArgs,
  printFigures,
  prng,
  runMain,
  sleep,
  withTimeout,
  writeConfig,
  type Figure,
} from './common.js';

const PYTHON = '/usr/bin/python3';
const LT_SCRIPT = join(DIST_DIR, '..', 'bench', 'libtorrent_bench.py');
const WINDOW_SECONDS = 2;
const LATENCY_GOAL_MS = WINDOW_SECONDS * 1000 + 2000;
const THROUGHPUT_GOAL = 0.5;

// ---------------------------------------------------------------------------------------------
// Python children (libtorrent), always killed on exit.

const pyChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of pyChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function spawnPy(args: string[]): ChildProcess {
  const c = spawn(PYTHON, [LT_SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  pyChildren.add(c);
  c.once('exit', () => pyChildren.delete(c));
  onCleanup(async () => stopPy(c));
  return c;
}

async function stopPy(c: ChildProcess, ms = 5000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.stdin?.end();
  if (
    (await withTimeout(
      exited.then(() => true),
      ms,
      false,
    )) === false
  ) {
    c.kill('SIGKILL');
    await withTimeout(exited, 2000, undefined);
  }
}

/** JSON lines from a child's stdout, with a bounded wait for the next one. */
class JsonLines {
  private queue: Record<string, unknown>[] = [];
  private waiter: (() => void) | null = null;
  stderr = '';
  closed = false;

  constructor(readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (!l.startsWith('{')) return;
      try {
        this.queue.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        return;
      }
      this.waiter?.();
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-4000)));
    child.once('exit', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  async next(timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.closed) throw new Error(`libtorrent helper exited: ${this.stderr.trim().slice(-1000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`libtorrent helper: no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 1000));
        const self = this;
        function done() {
          clearTimeout(t);
          self.waiter = null;
          resolve();
        }
        this.waiter = done;
      });
    }
    return this.queue.shift()!;
  }
}

interface LtResult {
  ok: boolean;
  seconds?: number;
  bytes?: number;
  MBps?: number;
  firstByteSeconds?: number;
  transferSeconds?: number;
  payloadDownloaded?: number;
  transport?: string[];
  errors?: string[];
  error?: string;
  infoHash?: string;
}

/** One libtorrent download in a fresh process (fresh session). */
async function ltFetchOnce(torrent: string, save: string, peer: number, timeoutSec: number): Promise<LtResult> {
  const c = spawnPy(['fetch', '--torrent', torrent, '--save', save, '--peer', String(peer), '--timeout', String(timeoutSec)]);
  const lines = new JsonLines(c);
  try {
    return (await lines.next((timeoutSec + 20) * 1000)) as unknown as LtResult;
  } finally {
    await stopPy(c);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const trustedSink = (onCommit: (n: number) => void = () => {}): IngestSink => ({ source: 'bench', trusted: true, committed: onCommit });

async function startSidecar(
  tag: string,
  overrides: Record<string, unknown>,
  extraToml: string,
  schedule: boolean,
): Promise<{ sc: Sidecar; stop: () => Promise<void> }> {
  const dir = makeTempDir(`nostr-bt-bundle-bench-${tag}-`);
  const dataDir = join(dir, 'data');
  const cfgPath = writeConfig(dir, dataDir, extraToml);
  const config = loadConfig({ configPath: cfgPath, env: {}, overrides });
  const sc = new Sidecar(config, createLogger('bundle-bench', 'error'), { statusHttp: false, bundleSchedule: schedule });
  const stop = stopOnce(() => sc.stop());
  await sc.start();
  return { sc, stop };
}

/** Submits lines, pausing while the ingestor is saturated (bounded), then waits for the commit. */
async function feed(sc: Sidecar, lines: string[], sink: IngestSink): Promise<void> {
  const ing = sc.ingestor;
  for (const l of lines) {
    ing.submit(l, sink);
    for (let k = 0; k < 100 && ing.saturated; k++) await ing.waitForCapacity();
  }
  await withTimeout(ing.idle(), 120_000, undefined);
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

// ---------------------------------------------------------------------------------------------
// (a) accept → downloadable

interface Round {
  offsetMs: number;
  seededMs: number;
  closeToSeededMs: number;
  wtMs: number | null;
  ltMs: number | null;
  wtFetchMs: number | null;
  ltFetchMs: number | null;
  bundleEvents: number;
  bundleBytes: number;
  notes: string[];
}

function wtFetchFile(
  client: WebTorrent,
  torrent: Buffer,
  fileName: string,
  peerPort: number,
  out: string,
  timeoutMs: number,
): Promise<{ ok: boolean; at: number; text: string; downloaded: number; error?: string }> {
  return new Promise((resolve) => {
    let t: Torrent | null = null;
    let settled = false;
    const finish = (r: { ok: boolean; at: number; text: string; downloaded: number; error?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const tt = t;
      if (tt) client.remove(tt, { destroyStore: false }, () => resolve(r));
      else resolve(r);
    };
    const timer = setTimeout(
      () => finish({ ok: false, at: Date.now(), text: '', downloaded: t?.downloaded ?? 0, error: 'timed out' }),
      timeoutMs,
    );
    try {
      t = client.add(torrent, { path: out, deselect: true, announce: [] });
    } catch (err) {
      finish({ ok: false, at: Date.now(), text: '', downloaded: 0, error: String(err) });
      return;
    }
    t.once('error', (err: Error) => finish({ ok: false, at: Date.now(), text: '', downloaded: 0, error: err.message }));
    t.once('metadata', () => {
      const f = t!.files.find((x) => x.name === fileName);
      if (!f) {
        finish({ ok: false, at: Date.now(), text: '', downloaded: 0, error: `no file ${fileName}` });
        return;
      }
      f.once('done', () => {
        const at = Date.now();
        let text = '';
        try {
          text = readFileSync(join(out, f.path), 'utf8');
        } catch (err) {
          finish({ ok: false, at, text: '', downloaded: t!.downloaded, error: `read: ${(err as Error).message}` });
          return;
        }
        finish({ ok: true, at, text, downloaded: t!.downloaded });
      });
      f.select();
    });
    t.once('ready', () => t!.addPeer(`127.0.0.1:${peerPort}`));
  });
}

async function latencyPart(rounds: number, extraToml: string): Promise<{ figures: Figure[]; summary: string[] }> {
  const W = WINDOW_SECONDS * 1000;
  log(`(a) accept → downloadable: ${rounds} rounds, ${WINDOW_SECONDS} s windows, real bundle schedule`);
  // libtorrent's helper starts (~0.5 s: python and its module) while the sidecar does.
  const lt = spawnPy(['serve', '--max-seconds', String(rounds * 60 + 120)]);
  const ltLines = new JsonLines(lt);
  const ltReady = ltLines.next(15_000); // {"ready":true}
  ltReady.catch(() => {});
  const { sc, stop } = await startSidecar('latency', { bundle: { windowSeconds: WINDOW_SECONDS } }, extraToml, true);
  const port = sc.seeder!.port;
  const root = sc.config.bundle.dir;
  log(`  sidecar seeding on 127.0.0.1:${port} (uTP ${sc.config.bittorrent.utp ? 'on' : 'off'}; the clients use TCP)`);

  const client = quietWebTorrent();
  client.on('error', (err: Error) => log(`  WebTorrent client error: ${err.message}`));
  let clientGone = false;
  const destroyClient = async () => {
    if (clientGone) return;
    clientGone = true;
    await new Promise<void>((r) => client.destroy(() => r()));
  };
  onCleanup(destroyClient);

  const bundles: BundleRecord[] = [];
  sc.bundler!.on('bundle', (b: BundleRecord) => bundles.push(b));
  const rnd = prng(42);
  const results: Round[] = [];
  const tmp = makeTempDir('nostr-bt-bundle-bench-fetch-');
  const FILLERS = 300;
  let created = Math.floor(Date.now() / 1000) - 3600;

  // Warm-up (not timed): one bundle through both clients, so first-use costs are not in round 1.
  {
    const author = pubkeyN(990_000);
    const ev = unsignedEvent(author, { kind: 1, created_at: created++, content: contentOf(400, 1) });
    await feed(sc, [pluginLine(ev)], trustedSink());
    const ih = await waitBundled(sc, ev.id, 15_000);
    await ltReady;
    if (ih) {
      const torrent = readFileSync(torrentPathOf(root, ih));
      lt.stdin!.write(
        JSON.stringify({
          id: 'warm',
          torrent: torrentPathOf(root, ih),
          save: join(tmp, 'warm-lt'),
          peer: port,
          fileName: `${author}.jsonl`,
          timeout: 15,
        }) + '\n',
      );
      await wtFetchFile(client, torrent, `${author}.jsonl`, port, join(tmp, 'warm-wt'), 15_000);
      await ltLines.next(30_000);
    }
  }

  for (let r = 0; r < rounds && !isAborted(); r++) {
    const notes: string[] = [];
    // Next window start; then fillers; then the timed event at a random moment of that window.
    const now = Date.now();
    const windowStart = Math.ceil((now + 50) / W) * W;
    await sleep(windowStart - Date.now() + 1);
    const fillers: string[] = [];
    for (let i = 0; i < FILLERS; i++) {
      const a = Math.floor(rnd() * 5000);
      fillers.push(
        pluginLine(
          unsignedEvent(pubkeyN(a), { kind: 1, created_at: created++, content: contentOf(300 + Math.floor(rnd() * 700), r * 10_000 + i) }),
        ),
      );
    }
    const offset = Math.floor(rnd() * (W - 60)) + 20;
    void feed(sc, fillers, trustedSink());
    await sleep(Math.max(0, windowStart + offset - Date.now()));
    const author = pubkeyN(900_000 + r);
    const ev = unsignedEvent(author, { kind: 1, created_at: created++, content: contentOf(300 + Math.floor(rnd() * 700), 777 + r) });
    sc.ingestor.submit(pluginLine(ev), trustedSink());
    await sc.ingestor.idle();
    const acceptedAt = Date.now();
    const acceptedOffset = acceptedAt - windowStart;
    if (acceptedAt >= windowStart + W) notes.push('accepted after its window had ended');

    const ih = await waitBundled(sc, ev.id, 30_000);
    const seededAt = Date.now();
    if (!ih) {
      log(`  round ${r + 1}: event never bundled within 30 s`);
      results.push({
        offsetMs: acceptedOffset,
        seededMs: NaN,
        closeToSeededMs: NaN,
        wtMs: null,
        ltMs: null,
        wtFetchMs: null,
        ltFetchMs: null,
        bundleEvents: 0,
        bundleBytes: 0,
        notes: ['NOT BUNDLED within 30 s'],
      });
      continue;
    }
    const rec = sc.store.bundles.get(ih);
    const windowEnd = Math.ceil(acceptedAt / W) * W;
    const torrentPath = torrentPathOf(root, ih);
    const torrent = readFileSync(torrentPath);
    const fileName = `${author}.jsonl`;
    const wtOut = join(tmp, `r${r}-wt`);
    const ltOut = join(tmp, `r${r}-lt`);
    // Both clients at once (each fetches only this author's file).
    const fetchStart = Date.now();
    lt.stdin!.write(JSON.stringify({ id: r, torrent: torrentPath, save: ltOut, peer: port, fileName, timeout: 30 }) + '\n');
    const ltP = ltLines.next(45_000).then(
      (res) => ({ res: res as unknown as LtResult, at: Date.now() }),
      (err: Error) => ({ res: { ok: false, error: err.message } as LtResult, at: Date.now() }),
    );
    const wt = await wtFetchFile(client, torrent, fileName, port, wtOut, 30_000);
    const ltDone = await ltP;
    let ltOk = ltDone.res.ok;
    if (ltOk) {
      try {
        const text = readFileSync(join(ltOut, rec?.name ?? '', fileName), 'utf8');
        if (!text.includes(ev.id)) {
          ltOk = false;
          notes.push('libtorrent file lacks the event');
        }
      } catch (err) {
        ltOk = false;
        notes.push(`libtorrent file unreadable: ${(err as Error).message}`);
      }
    } else notes.push(`libtorrent: ${ltDone.res.error ?? JSON.stringify(ltDone.res.errors ?? [])}`);
    let wtOk = wt.ok;
    if (wtOk && !wt.text.includes(ev.id)) {
      wtOk = false;
      notes.push('WebTorrent file lacks the event');
    } else if (!wtOk) notes.push(`WebTorrent: ${wt.error}`);
    if (!(await sc.seeder!.torrent(ih))) notes.push('bundle no longer seeded after the fetch (replaced meanwhile?)');
    rmSync(wtOut, { recursive: true, force: true });
    rmSync(ltOut, { recursive: true, force: true });
    const row: Round = {
      offsetMs: acceptedOffset,
      seededMs: seededAt - acceptedAt,
      closeToSeededMs: seededAt - windowEnd,
      wtMs: wtOk ? wt.at - acceptedAt : null,
      ltMs: ltOk ? ltDone.at - acceptedAt : null,
      wtFetchMs: wtOk ? wt.at - fetchStart : null,
      ltFetchMs: ltOk ? ltDone.at - fetchStart : null,
      bundleEvents: rec?.events ?? 0,
      bundleBytes: rec?.bytes ?? 0,
      notes,
    };
    results.push(row);
    log(
      `  round ${String(r + 1).padStart(2)}: accepted ${String(acceptedOffset).padStart(4)} ms into its window; bundle seeded +${fmt(row.seededMs)} ms ` +
        `(${fmt(row.closeToSeededMs)} ms after the window closed: built +${rec ? fmt(rec.createdAt - windowEnd) : '?'} ms, then committed + added to WebTorrent; ${rec?.events ?? '?'} events, ${rec?.authors ?? '?'} files, ${fmt((rec?.bytes ?? 0) / 1024)} KiB); ` +
        `downloaded: WebTorrent +${row.wtMs ?? 'FAILED'} ms, libtorrent +${row.ltMs ?? 'FAILED'} ms ` +
        `(libtorrent: first byte ${fmt((ltDone.res.firstByteSeconds ?? NaN) * 1000)} ms, done ${fmt((ltDone.res.seconds ?? NaN) * 1000)} ms after it got the request)` +
        (notes.length ? ` [${notes.join('; ')}]` : ''),
    );
  }
  await stopPy(lt);

  const wtMs = results.map((r) => r.wtMs).filter((x): x is number => x !== null);
  const ltMs = results.map((r) => r.ltMs).filter((x): x is number => x !== null);
  const seeded = results.map((r) => r.seededMs).filter((x) => Number.isFinite(x));
  const closeToSeeded = results.map((r) => r.closeToSeededMs).filter((x) => Number.isFinite(x));
  const wtFetch = results.map((r) => r.wtFetchMs).filter((x): x is number => x !== null);
  const ltFetch = results.map((r) => r.ltFetchMs).filter((x): x is number => x !== null);
  const summary: string[] = [];
  const line = (what: string, xs: number[]) =>
    `${what}: p50 ${fmt(pct(xs, 50))} ms, max ${fmt(Math.max(...xs))} ms over ${xs.length}/${results.length} rounds`;
  summary.push(`(a) accept → downloadable (goal ≤ ${LATENCY_GOAL_MS} ms = window ${W} ms + 2 s)`);
  summary.push('  ' + line('WebTorrent client', wtMs) + (Math.max(...wtMs) <= LATENCY_GOAL_MS ? ' — meets' : ' — MISSES (max)'));
  summary.push('  ' + line('libtorrent        ', ltMs) + (Math.max(...ltMs) <= LATENCY_GOAL_MS ? ' — meets' : ' — MISSES (max)'));
  summary.push('  ' + line('accept → bundle seeded', seeded));
  summary.push('  ' + line('window closed → bundle seeded', closeToSeeded));
  summary.push('  ' + line('fetch of the file (WebTorrent)', wtFetch));
  summary.push('  ' + line('fetch of the file (libtorrent, includes its pipe round trip)', ltFetch));
  const failed = results.filter((r) => r.notes.length > 0).length;
  if (failed) summary.push(`  rounds with notes: ${failed} (see above)`);
  for (const s of summary) log(s);

  const goal = `<= ${LATENCY_GOAL_MS} ms (window + 2 s)`;
  const figures: Figure[] = [
    figure('accept → downloadable, WebTorrent client: p50', pct(wtMs, 50), 'ms', null, goal),
    figure('accept → downloadable, WebTorrent client: max', Math.max(...wtMs), 'ms', null, goal),
    figure('accept → downloadable, libtorrent: p50', pct(ltMs, 50), 'ms', null, goal),
    figure('accept → downloadable, libtorrent: max', Math.max(...ltMs), 'ms', null, goal),
    figure('accept → bundle seeded: p50', pct(seeded, 50), 'ms', null, null),
    figure('accept → bundle seeded: max', Math.max(...seeded), 'ms', null, null),
    figure('window close → bundle seeded: max', Math.max(...closeToSeeded), 'ms', null, null),
    figure('file fetch after seeding, WebTorrent: p50', pct(wtFetch, 50), 'ms', null, null),
    figure('file fetch after seeding, libtorrent: p50', pct(ltFetch, 50), 'ms', null, null),
    figure(
      'rounds completed by both clients',
      results.filter((r) => r.wtMs !== null && r.ltMs !== null).length,
      'rounds',
      results.length,
      `== ${results.length}`,
    ),
  ];
  log(
    `  active bundles at the end: ${sc.bundler!.activeCount} (${JSON.stringify(sc.bundler!.summary().byLevel)}); bundles made: ${bundles.length}`,
  );
  await destroyClient();
  await stop();
  return { figures, summary };
}

/** Waits until the event is in a bundle that the seeder serves; returns its infohash. */
async function waitBundled(sc: Sidecar, id: string, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  let wake: (() => void) | null = null;
  const onBundle = () => wake?.();
  sc.bundler!.on('bundle', onBundle);
  try {
    for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
      const ih = sc.store.locate(id)?.ih;
      if (ih && (await sc.seeder!.torrent(ih))) return ih;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 20);
        function done() {
          clearTimeout(t);
          wake = null;
          resolve();
        }
        wake = done;
      });
    }
    return null;
  } finally {
    sc.bundler!.off('bundle', onBundle);
  }
}

// ---------------------------------------------------------------------------------------------
// (b) throughput

async function throughputPart(totalMB: number, reps: number, extraToml: string): Promise<{ figures: Figure[]; summary: string[] }> {
  const AUTHORS = 100;
  const EVENT_CONTENT = 64 * 1024;
  const perAuthor = (totalMB * 1e6) / AUTHORS;
  const perAuthorEvents = Math.max(1, Math.round(perAuthor / (EVENT_CONTENT + 400)));
  log(`(b) throughput: ${AUTHORS} authors × ${perAuthorEvents} events of ${EVENT_CONTENT / 1024} KiB content ≈ ${fmt(totalMB)} MB bundle`);
  const { sc, stop } = await startSidecar('throughput', { bundle: { windowMaxBytes: 2 * 1024 ** 3 } }, extraToml, false);
  const port = sc.seeder!.port;
  const root = sc.config.bundle.dir;
  const tg = performance.now();
  const lines: string[] = [];
  let created = Math.floor(Date.now() / 1000) - 86_400;
  for (let a = 0; a < AUTHORS; a++) {
    for (let j = 0; j < perAuthorEvents; j++) {
      lines.push(
        pluginLine(unsignedEvent(pubkeyN(a), { kind: 1, created_at: created++, content: contentOf(EVENT_CONTENT, a * 1000 + j) })),
      );
    }
  }
  const genMs = performance.now() - tg;
  const ti = performance.now();
  await feed(sc, lines, trustedSink());
  const ingestMs = performance.now() - ti;
  lines.length = 0;
  const tb = performance.now();
  const made = await sc.bundler!.closeWindow();
  const bundleMs = performance.now() - tb;
  if (made.length === 0) throw new Error('no bundle made');
  const b = made.reduce((x, y) => (y.bytes > x.bytes ? y : x));
  log(
    `  generated in ${fmt(genMs)} ms; indexed in ${fmt(ingestMs)} ms; bundle cut + hashed + seeded in ${fmt(bundleMs)} ms: ` +
      `${b.ih} ${fmt(b.bytes / 1e6, 1)} MB, ${b.events} events, ${b.authors} files, ${b.pieceLength / 1024} KiB pieces` +
      (made.length > 1 ? ` (NOTE: ${made.length} bundles were made)` : ''),
  );
  const torrentPath = torrentPathOf(root, b.ih);
  // The baseline seeder gets the same bytes as ordinary files, as any client saves a torrent.
  const dataDir = makeTempDir('nostr-bt-bundle-bench-lt-seed-');
  await extractBundle(root, b.ih, dataDir);

  const seeder = spawnPy(['seed', '--torrent', torrentPath, '--save', dataDir, '--max-seconds', String(reps * 120 + 120)]);
  const seederLines = new JsonLines(seeder);
  const hello = (await seederLines.next(20_000)) as { ok?: boolean; port?: number; error?: string };
  if (!hello.ok || !hello.port) throw new Error(`libtorrent seeder failed: ${JSON.stringify(hello)} ${seederLines.stderr}`);
  log(`  libtorrent seeder (seed_mode, same files) on 127.0.0.1:${hello.port}; sidecar's WebTorrent seeder on 127.0.0.1:${port}`);

  const tmp = makeTempDir('nostr-bt-bundle-bench-dl-');
  const side: LtResult[] = [];
  const base: LtResult[] = [];
  const timeoutSec = Math.max(60, Math.ceil(totalMB / 2));
  for (let i = 0; i < reps && !isAborted(); i++) {
    const order: ['sidecar' | 'libtorrent', number][] =
      i % 2 === 0
        ? [
            ['sidecar', port],
            ['libtorrent', hello.port],
          ]
        : [
            ['libtorrent', hello.port],
            ['sidecar', port],
          ];
    for (const [who, p] of order) {
      const save = join(tmp, `${who}-${i}`);
      const res = await ltFetchOnce(torrentPath, save, p, timeoutSec);
      rmSync(save, { recursive: true, force: true });
      (who === 'sidecar' ? side : base).push(res);
      log(
        `  rep ${i + 1}: from ${who.padEnd(10)} ${res.ok ? `${fmt(res.MBps ?? NaN, 1).padStart(6)} MB/s` : 'FAILED'} ` +
          `(${fmt(res.seconds ?? NaN, 3)} s; first byte after ${fmt((res.firstByteSeconds ?? NaN) * 1000)} ms; ` +
          `${fmt((res.payloadDownloaded ?? 0) / 1e6, 1)} MB payload; ${JSON.stringify(res.transport ?? [])}` +
          `${res.error ? `; ${res.error}` : ''}${res.errors?.length ? `; ${res.errors.join(' | ')}` : ''})`,
      );
    }
  }
  await stopPy(seeder);
  const ok = (xs: LtResult[]) => xs.filter((r) => r.ok && r.MBps !== undefined).map((r) => r.MBps!);
  const sMB = ok(side);
  const bMB = ok(base);
  const sMed = median(sMB);
  const bMed = median(bMB);
  const ratio = sMed / bMed;
  const summary = [
    `(b) ${fmt(b.bytes / 1e6, 1)} MB bundle, libtorrent client over loopback TCP (median of ${reps}): ` +
      `from the sidecar ${fmt(sMed, 1)} MB/s, from libtorrent ${fmt(bMed, 1)} MB/s = ${fmt(ratio, 2)}× ` +
      `(goal ≥ ${THROUGHPUT_GOAL}×) — ${ratio >= THROUGHPUT_GOAL ? 'meets' : 'MISSES'}; best ${fmt(Math.max(...sMB), 1)} vs ${fmt(Math.max(...bMB), 1)} MB/s`,
  ];
  for (const s of summary) log(s);
  const figures: Figure[] = [
    figure(
      `download of a ${fmt(b.bytes / 1e6)} MB bundle from the sidecar (libtorrent client): median`,
      sMed,
      'MB/s',
      bMed,
      `>= ${THROUGHPUT_GOAL}x libtorrent seeder`,
    ),
    figure(`download of the same bundle from a libtorrent seeder: median`, bMed, 'MB/s', null, null),
    figure(`download from the sidecar: best`, Math.max(...sMB), 'MB/s', Math.max(...bMB), null),
    figure(`bundle of ${fmt(b.bytes / 1e6)} MB: cut + hash + seed (closeWindow)`, bundleMs, 'ms', null, null),
  ];
  await stop();
  return { figures, summary };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs();
  const want = (p: string) => !args.only || args.only.includes(p);
  if (!want('latency') && !want('throughput')) throw new Error('--only: no such part (latency, throughput)');
  const rounds = args.n ?? (args.quick ? 2 : 6);
  const totalMB = args.quick ? 10 : 100;
  const reps = args.quick ? 1 : 3;
  const t0 = Date.now();
  log(`bundle bench (${args.quick ? 'quick' : 'full'})`);
  const figures: Figure[] = [];
  const summary: string[] = [];
  if (want('latency')) {
    const r = await latencyPart(rounds, args.extraToml);
    figures.push(...r.figures);
    summary.push(...r.summary);
  }
  if (want('throughput')) {
    log('');
    const r = await throughputPart(totalMB, reps, args.extraToml);
    figures.push(...r.figures);
    summary.push(...r.summary);
  }
  log('');
  log('summary:');
  for (const s of summary) log(s);
  log(`total time ${fmt((Date.now() - t0) / 1000, 1)} s`);
  printFigures('bundle', figures, { mode: args.quick ? 'quick' : 'full', rounds, windowSeconds: WINDOW_SECONDS, bundleMB: totalMB, reps });
}

runMain(main);
