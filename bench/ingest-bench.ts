// Sidecar ingest benchmark: events/s of ~1 KB events into LMDB with dedupe and policy.
//   1. in process: Sidecar.ingestor.submit(line, sink), respecting `saturated`/'drain', then idle();
//   2. end to end over the Unix socket: a client writes the lines to a sidecar child process and
//      counts the cumulative acks it sends back after each commit.
// Baseline measured in the same run: the raw rate of JSON.parse over the same lines.
// Goal: >= 20,000 events/s on this 2-core machine. Prints figures; never asserts timings.
//
//   node dist/bench/ingest-bench.js [--quick] [--n=COUNT] [--only=inproc,socket] [--toml='[ingest]\nbatchMaxEvents = 500']
// Judge worker A/B: --toml='[ingest]\njudgeThreads = 0' judges lines on the ingest thread (default 1:
// in a worker). Both runs print the ingest (main) thread's CPU per event.
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import { canonicalJson, eventFromLine, validateEvent } from '../sidecar/formats/nostr-event.js';
import { classify } from '../sidecar/policy/content-policy.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { unsignedEvent, pluginLine, contentOf, pubkeyN } from '../test/testkit/events.js';
import {
  describeStatus,
  figure,
  fmt,
  isAborted,
  log,
  makeTempDir,
  onCleanup,
  stopOnce,
  parseArgs,
  pollStatus,
  printFigures,
  procCpuMs,
  prng,
  runMain,
  sleep,
  startSidecarChild,
  writeConfig,
  type Figure,
  type StatusDoc,
  waitForDrain,
} from './common.js';

const GOAL = 20_000;
const AUTHORS = 5000;

interface Workload {
  lines: string[];
  bytes: number;
  kinds: Record<number, number>;
  duplicates: number;
  distinct: number;
}

/**
 * ~1 KB events: 80% kind 1 (with e/p tags), 10% kind 7, 5% kind 0 and 5% kind 3 (replaceable:
 * newer versions replace older ones, ~10% arrive late and are superseded), ~5% exact duplicates
 * of an earlier line (what the spool + socket overlap produces).
 */
function makeWorkload(n: number, seed: number): Workload {
  const rnd = prng(seed);
  const now = Math.floor(Date.now() / 1000);
  const authors = Array.from({ length: AUTHORS }, (_, i) => pubkeyN(i));
  const lines: string[] = new Array(n);
  const kinds: Record<number, number> = {};
  let duplicates = 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    if (i > 10 && rnd() < 0.05) {
      lines[i] = lines[Math.floor(rnd() * i)]!;
      duplicates++;
    } else {
      const r = rnd();
      const kind = r < 0.8 ? 1 : r < 0.9 ? 7 : r < 0.95 ? 0 : 3;
      const author = authors[Math.floor(rnd() * AUTHORS)]!;
      const tags: string[][] = [];
      if (kind === 1) {
        if (rnd() < 0.5) tags.push(['e', pubkeyN(1_000_000 + i), '', 'root']);
        if (rnd() < 0.5) tags.push(['p', authors[Math.floor(rnd() * AUTHORS)]!]);
      } else if (kind === 7) {
        tags.push(['e', pubkeyN(2_000_000 + i)], ['p', authors[Math.floor(rnd() * AUTHORS)]!]);
      } else if (kind === 3) {
        for (let j = 0; j < 10; j++) tags.push(['p', authors[Math.floor(rnd() * AUTHORS)]!]);
      }
      const late = rnd() < 0.1 ? 7200 : 0;
      const e = unsignedEvent(author, {
        kind,
        created_at: now - 86_400 + Math.floor(i / 4) - late,
        tags,
        content: contentOf(1024, seed * 10_000_000 + i),
      });
      lines[i] = pluginLine(e, { receivedAt: now });
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    }
    bytes += lines[i]!.length + 1;
  }
  return { lines, bytes, kinds, duplicates, distinct: n - duplicates };
}

/** Best of up to 3 passes (bounded by time) of `fn` over the lines; returns lines/s. */
function ratePasses(lines: string[], fn: (line: string) => number, maxMs: number): { rate: number; passes: number; check: number } {
  let best = 0;
  let check = 0;
  let passes = 0;
  const stopAt = performance.now() + maxMs;
  for (let p = 0; p < 3 && (p === 0 || performance.now() < stopAt); p++) {
    const t0 = performance.now();
    let i = 0;
    for (; i < lines.length; i++) {
      check += fn(lines[i]!);
      if ((i & 1023) === 0 && performance.now() > stopAt + 30_000) break; // hard cap
    }
    const rate = i / ((performance.now() - t0) / 1000);
    if (rate > best) best = rate;
    passes++;
  }
  return { rate: best, passes, check };
}

interface IngestRun {
  events: number;
  seconds: number;
  rate: number;
  committed: number;
  timedOut: boolean;
  saturatedWaits: number;
  batches: number;
  maxBatchMs: number;
  status: StatusDoc | null;
  /** Commit rate over each successive segment (up to ten) of the lines (in process only). */
  deciles: number[];
  /** CPU ms (user+system, all threads) of the process doing the ingest, during the run. */
  cpuMs: number | null;
  /** In process only: CPU time of the main thread (the index transactions, bundling, ...). */
  mainThreadCpuMs?: number | null;
  /** How long the graceful stop took afterwards. */
  stopMs?: number;
}

async function ingestInProcess(w: Workload, maxMs: number, extraToml: string): Promise<IngestRun> {
  const dir = makeTempDir('nostr-bt-ingest-bench-inproc-');
  const dataDir = join(dir, 'data');
  const cfgPath = writeConfig(dir, dataDir, extraToml);
  const config = loadConfig({ configPath: cfgPath, env: {} });
  const sidecar = new Sidecar(config, createLogger('ingest-bench', 'silent'), { statusHttp: false });
  let stopMs = 0;
  const stop = stopOnce(async () => {
    const t = performance.now();
    await sidecar.stop();
    stopMs = performance.now() - t;
  });
  try {
    await sidecar.start();
    const ing = sidecar.ingestor;
    let committed = 0;
    const sink: IngestSink = { source: 'bench', trusted: true, committed: (n) => (committed += n) };
    let batches = 0;
    let maxBatchMs = 0;
    let lastBatchAt = 0;
    // Segments of at least 4 batches (two are committed in parallel), at most 10.
    const segments = Math.min(10, Math.max(1, Math.floor(w.lines.length / (config.ingest.batchMaxEvents * 4))));
    const tenth = Math.max(1, Math.floor(w.lines.length / segments));
    const deciles: number[] = [];
    let decileStart = 0;
    let decileCount = 0;
    ing.on('batch', (report: { lines: number }) => {
      batches++;
      const now = performance.now();
      if (lastBatchAt) maxBatchMs = Math.max(maxBatchMs, now - lastBatchAt);
      lastBatchAt = now;
      decileCount += report.lines;
      if (decileCount >= tenth && deciles.length < segments) {
        deciles.push(decileCount / ((now - decileStart) / 1000));
        decileStart = now;
        decileCount = 0;
      }
    });
    let saturatedWaits = 0;
    let timedOut = false;
    const cpu0 = process.cpuUsage();
    const main0 = procCpuMs(process.pid, process.pid);
    const t0 = performance.now();
    lastBatchAt = decileStart = t0;
    const deadline = t0 + maxMs;
    let i = 0;
    for (; i < w.lines.length; i++) {
      if ((i & 255) === 0 && isAborted()) throw new Error('interrupted');
      ing.submit(w.lines[i]!, sink);
      if (ing.saturated) {
        saturatedWaits++;
        // 'drain' comes after a batch commits; bounded in case commits keep failing.
        for (let k = 0; k < 100 && ing.saturated; k++) {
          await ing.waitForCapacity();
          if (performance.now() > deadline) break;
        }
        if (performance.now() > deadline) {
          timedOut = true;
          i++;
          break;
        }
      }
    }
    const submitted = i;
    await Promise.race([ing.idle(), sleep(Math.max(30_000, maxMs))]);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const main1 = procCpuMs(process.pid, process.pid);
    const status = sidecar.status() as unknown as StatusDoc;
    const run: IngestRun = {
      mainThreadCpuMs: main0 === null || main1 === null ? null : main1 - main0,
      events: submitted,
      seconds,
      rate: submitted / seconds,
      committed,
      timedOut,
      saturatedWaits,
      batches,
      maxBatchMs,
      status,
      deciles,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
    await stop();
    run.stopMs = stopMs;
    return run;
  } finally {
    await stop();
  }
}

async function ingestOverSocket(
  w: Workload,
  maxMs: number,
  extraToml: string,
): Promise<IngestRun & { ackLines: number; stalls: number; stopNote: string; stopMs: number }> {
  const dir = makeTempDir('nostr-bt-ingest-bench-socket-');
  const dataDir = join(dir, 'data');
  const cfgPath = writeConfig(dir, dataDir, extraToml);
  const socketPath = join(dataDir, 'ingest.sock');
  const sc = await startSidecarChild(cfgPath, dataDir);
  let stopNote = '';
  let stopMs = 0;
  try {
    const n = w.lines.length;
    const sock = createConnection(socketPath);
    onCleanup(async () => void sock.destroy());
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    let acked = 0;
    let ackLines = 0;
    let ackBuf = '';
    let lastAckAt = performance.now();
    let longestAckGapMs = 0;
    let ackWaiter: (() => void) | null = null;
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      ackBuf += chunk;
      let nl: number;
      while ((nl = ackBuf.indexOf('\n')) >= 0) {
        const v = Number(ackBuf.slice(0, nl));
        ackBuf = ackBuf.slice(nl + 1);
        ackLines++;
        if (Number.isSafeInteger(v) && v > acked) acked = v;
      }
      const now = performance.now();
      longestAckGapMs = Math.max(longestAckGapMs, now - lastAckAt);
      lastAckAt = now;
      ackWaiter?.();
    });
    let sockError: Error | null = null;
    sock.on('error', (err) => (sockError = err));
    let stalls = 0;
    let timedOut = false;
    const cpu0 = procCpuMs(sc.pid);
    const main0 = procCpuMs(sc.pid, sc.pid);
    const t0 = performance.now();
    lastAckAt = t0;
    const deadline = t0 + maxMs;
    let sent = 0;
    // Like the plugin: one write per line; wait for 'drain' when the socket pushes back.
    for (; sent < n; sent++) {
      if ((sent & 255) === 0 && isAborted()) throw new Error('interrupted');
      if (!sock.write(w.lines[sent]! + '\n')) {
        stalls++;
        await waitForDrain(sock, 5000);
        if (sockError || sock.destroyed) throw new Error(`socket failed: ${sockError ?? 'closed'}`);
        if (performance.now() > deadline) {
          timedOut = true;
          sent++;
          break;
        }
      }
    }
    // Wait for the last ack (bounded).
    const ackDeadline = performance.now() + Math.max(30_000, maxMs);
    for (let k = 0; k < 100_000 && acked < sent && performance.now() < ackDeadline && !sock.destroyed; k++) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ackWaiter = null;
          resolve();
        }, 200);
        ackWaiter = () => {
          clearTimeout(t);
          ackWaiter = null;
          resolve();
        };
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = procCpuMs(sc.pid);
    const main1 = procCpuMs(sc.pid, sc.pid);
    sock.end();
    let status: StatusDoc | null = null;
    if (sc.statusAddr) {
      const r = await pollStatus(sc.statusAddr, (s) => s.events.received >= acked, 10_000);
      status = r.status;
    }
    // main.ts gives up on a graceful stop after 15 s; allow a little more before SIGKILL.
    const st = await sc.terminate(20_000);
    stopNote =
      `sidecar child stopped ${st.graceful ? 'by itself' : 'by SIGKILL'} ${fmt(st.ms)} ms after SIGTERM (exit code ${st.code}${st.signal ? `, signal ${st.signal}` : ''})` +
      (st.code !== 0 ? `; stderr: ${sc.tail().trim().split('\n').slice(-3).join(' | ')}` : '');
    stopMs = st.ms;
    const mainThreadCpuMs = main0 === null || main1 === null ? null : main1 - main0;
    return {
      mainThreadCpuMs,
      events: sent,
      seconds,
      rate: acked / seconds,
      committed: acked,
      timedOut: timedOut || acked < sent,
      saturatedWaits: stalls,
      batches: ackLines,
      maxBatchMs: longestAckGapMs,
      status,
      deciles: [],
      cpuMs: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0,
      ackLines,
      stalls,
      stopNote,
      stopMs,
    };
  } finally {
    await sc.terminate(10_000);
  }
}

function cpuNote(r: IngestRun): string {
  if (r.cpuMs === null) return 'unknown';
  return `${fmt((r.cpuMs * 1000) / Math.max(1, r.events), 1)} µs per event, ${fmt((100 * r.cpuMs) / (r.seconds * 1000))}% of one core over the run`;
}

function expectNote(run: IngestRun, w: Workload, n: number): string {
  const s = run.status;
  if (!s) return 'no status';
  const e = s.events;
  const superseded = s.skippedByPolicy['superseded'] ?? 0;
  const accounted = e.indexed + e.duplicates + superseded + Object.values(s.invalid).reduce((a, b) => a + b, 0);
  const parts = [`lines accounted for (indexed+duplicates+superseded+invalid) = ${accounted} of ${n}`];
  // A copy of a kind 0/3 version that was replaced meanwhile counts as superseded, not duplicate.
  if (run.events === n && (e.duplicates > w.duplicates || e.duplicates + superseded < w.duplicates)) {
    parts.push(`UNEXPECTED duplicates ${e.duplicates} (generated ${w.duplicates} duplicate lines, ${superseded} superseded)`);
  }
  if (run.events === n && e.received !== n) parts.push(`RECEIVED ${e.received} != ${n} SENT`);
  if (accounted !== e.received) parts.push(`MISMATCH: received ${e.received} != accounted ${accounted}`);
  return parts.join('; ');
}

async function main(): Promise<void> {
  const args = parseArgs();
  const N = args.n ?? (args.quick ? 20_000 : 200_000);
  const maxMs = args.quick ? 6000 : 60_000;
  const tStart = Date.now();
  log(`ingest bench (${args.quick ? 'quick' : 'full'}): N=${N}`);

  const tg = performance.now();
  const w = makeWorkload(N, 7);
  log(
    `generated ${N} plugin lines (${fmt(w.bytes / 1e6, 1)} MB, avg ${fmt(w.bytes / N)} B; kinds ${JSON.stringify(w.kinds)}; ` +
      `${w.duplicates} duplicate lines) in ${fmt(performance.now() - tg)} ms`,
  );

  // Baselines (same process, same lines).
  const raw = ratePasses(w.lines, (l) => (JSON.parse(l) as { receivedAt: number }).receivedAt & 1, args.quick ? 2000 : 8000);
  log(`baseline: JSON.parse            ${fmt(raw.rate).padStart(9)} lines/s (best of ${raw.passes} passes)`);
  const cfgDir = makeTempDir('nostr-bt-ingest-bench-cfg-');
  const defaults = loadConfig({ configPath: writeConfig(cfgDir, join(cfgDir, 'data')), env: {} });
  const policy = { ...defaults.policy, maxEventBytes: defaults.ingest.maxEventBytes };
  const now = Math.floor(Date.now() / 1000);
  const cpu = ratePasses(
    w.lines,
    (l) => {
      const e = validateEvent(eventFromLine(l));
      const json = canonicalJson(e);
      return classify(e, json.length, policy, now).skip ? 1 : 0;
    },
    args.quick ? 2000 : 8000,
  );
  log(`info: parse+validate+canonical+classify (CPU only, no LMDB) ${fmt(cpu.rate)} lines/s (best of ${cpu.passes})`);

  const want = (part: string) => !args.only || args.only.includes(part);
  if (!want('inproc') && !want('socket')) throw new Error('--only: no such part (inproc, socket)');
  const figures: Figure[] = [
    figure('JSON.parse of the same lines (baseline)', raw.rate, 'lines/s'),
    figure('parse+validate+canonical+classify, no LMDB (info)', cpu.rate, 'lines/s', raw.rate),
  ];
  const summary: string[] = [];

  // 1. In process.
  if (want('inproc')) {
    const inproc = await ingestInProcess(w, maxMs, args.extraToml);
    log(
      `ingest in process:            ${fmt(inproc.rate).padStart(9)} events/s (${inproc.events} lines in ${fmt(inproc.seconds, 2)} s; ` +
        `${inproc.batches} batches, longest gap between commits ${fmt(inproc.maxBatchMs)} ms; paused on 'saturated' ${inproc.saturatedWaits}x)` +
        (inproc.timedOut ? ' [time cap hit]' : ''),
    );
    log(
      `  CPU: ${cpuNote(inproc)}; main thread ${inproc.mainThreadCpuMs == null ? '?' : fmt((inproc.mainThreadCpuMs * 1000) / Math.max(1, inproc.events), 1)} µs per event`,
    );
    log(
      `  rate per ${inproc.deciles.length === 10 ? 'tenth' : `1/${inproc.deciles.length}`} of the run (index growing): ${inproc.deciles.map((r) => fmt(r)).join(', ')} events/s`,
    );
    log(`  ${describeStatus(inproc.status)}`);
    log(`  committed callbacks: ${inproc.committed}/${inproc.events}; ${expectNote(inproc, w, N)}`);
    log(`  Sidecar.stop() afterwards took ${fmt(inproc.stopMs ?? NaN)} ms`);
    figures.push(figure('ingest in process: events/s', inproc.rate, 'events/s', raw.rate, `>= ${GOAL} events/s`));
    if (inproc.deciles.length >= 2) {
      const k = inproc.deciles.length;
      figures.push(
        figure(
          `ingest in process: events/s, first 1/${k} of the run (small index)`,
          inproc.deciles[0]!,
          'events/s',
          raw.rate,
          `>= ${GOAL} events/s`,
        ),
      );
      figures.push(
        figure(
          `ingest in process: events/s, last 1/${k} of the run (full index)`,
          inproc.deciles[k - 1]!,
          'events/s',
          raw.rate,
          `>= ${GOAL} events/s`,
        ),
      );
    }
    if (inproc.stopMs !== undefined) figures.push(figure('Sidecar.stop() after the in-process run', inproc.stopMs, 'ms', null, null));
    if (inproc.status)
      figures.push(
        figure(
          'ingest in process: lines received by the index',
          inproc.status.events.received,
          'lines',
          inproc.events,
          `== ${inproc.events}`,
        ),
      );
    summary.push(
      `in process ${fmt(inproc.rate)} events/s (${inproc.rate >= GOAL ? 'meets' : 'MISSES'} >= ${fmt(GOAL)}/s; ${fmt(inproc.rate / raw.rate, 3)}x raw JSON.parse)`,
    );
  }

  // 2. Over the Unix socket, sidecar in a child process.
  if (want('socket')) {
    if (!args.quick && Date.now() - tStart > 100_000) {
      log('socket run skipped: time budget');
    } else {
      const sock = await ingestOverSocket(w, maxMs, args.extraToml);
      log(
        `ingest over the Unix socket:  ${fmt(sock.rate).padStart(9)} events/s (${sock.committed}/${sock.events} lines acked in ${fmt(sock.seconds, 2)} s; ` +
          `${sock.ackLines} ack lines, longest gap between acks ${fmt(sock.maxBatchMs)} ms; client waited for 'drain' ${sock.stalls}x)` +
          (sock.timedOut ? ' [time cap hit or acks missing]' : ''),
      );
      log(
        `  sidecar child CPU: ${cpuNote(sock)}; main thread ${sock.mainThreadCpuMs == null ? '?' : fmt((sock.mainThreadCpuMs * 1000) / Math.max(1, sock.events), 1)} µs per event`,
      );
      log(`  ${describeStatus(sock.status)}`);
      log(`  ${expectNote(sock, w, N)}`);
      log(`  ${sock.stopNote}`);
      figures.push(figure('ingest over Unix socket (child sidecar): events/s', sock.rate, 'events/s', raw.rate, `>= ${GOAL} events/s`));
      figures.push(figure('ingest over Unix socket: lines acked', sock.committed, 'lines', sock.events, `== ${sock.events}`));
      figures.push(
        figure('sidecar graceful stop after the socket run', sock.stopMs, 'ms', null, '< 20000 ms (service.stopTimeoutSeconds)'),
      );
      summary.push(`over the socket ${fmt(sock.rate)} events/s (${sock.rate >= GOAL ? 'meets' : 'MISSES'} >= ${fmt(GOAL)}/s)`);
    }
  }
  log('');
  log(`summary: ${summary.join('; ')}`);
  log(`total time ${fmt((Date.now() - tStart) / 1000, 1)} s`);
  printFigures('ingest', figures, { mode: args.quick ? 'quick' : 'full', n: N });
}

runMain(main);
