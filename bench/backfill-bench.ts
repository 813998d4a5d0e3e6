// Backfill benchmark: N generated events (strfry export form, 50,000 authors, realistic sizes)
// replayed from a JSONL file by the real `nostr-bt-backfill` command into a real sidecar child
// process (loopback only: ports 0, DHT on 127.0.0.1 without bootstrap nodes).
//
// Figures:
// - backfill events/s (lines acknowledged by the sidecar ÷ the command's run time), against the raw
//   rate of reading and JSON-parsing the same file in this process in the same run (ratio; goal
//   ≥ 0.25× raw and ≥ 15,000 events/s);
// - peak RSS of the sidecar and of the backfill command (VmHWM; anonymous and file-backed
//   separately, sampled from /proc/<pid>/status every second; goal ≤ 1 GB);
// - active torrents at the end, once the bundler caught up (goal: within bundle.maxActiveTorrents);
// - a second, end-to-end run with --restart: everything is a duplicate (re-run adds nothing).
// The source is trusted (as strfry export is): signatures are placeholders, ids are real.
//
//   node dist/bench/backfill-bench.js [--quick] [--n=EVENTS] [--toml='[ingest]\nbatchMaxEvents = 10000']
// The sidecar runs with the defaults except bundle.windowSeconds = 10 (3 in --quick; so bundling catches up in
// seconds); --toml settings are merged over that.
//   env BACKFILL_BENCH_BUDGET_S (backfill + bundling budget, default 900; quick 120)
//   env BENCH_BACKFILL_ARGS (extra options for the command, e.g. '--max-unacked 40000'),
//   BENCH_SIDECAR_NODE_ARGS / BENCH_SIDECAR_STDOUT (node flags for the sidecar, its stdout: bench/common.ts)
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, readFileSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { deepMerge } from '../sidecar/common/config.js';
import { exportLines } from '../test/testkit/export-lines.js';
import {
  DIST_DIR,
  cleanEnv,
  figure,
  fmt,
  getStatus,
  log,
  makeTempDir,
  onCleanup,
  parseArgs,
  printFigures,
  procCpuMs,
  runMain,
  sleep,
  startSidecarChild,
  writeConfig,
  type Figure,
  type StatusDoc,
} from './common.js';

const AUTHORS = 50_000;
const RSS_GOAL_MB = 1024;
const RATE_GOAL = 15_000;
const RATIO_GOAL = 0.25;
const BACKFILL_MAIN = join(DIST_DIR, 'scripts', 'backfill.js');
const MB = (b: number) => b / 1024 / 1024;

interface Mem {
  rss: number;
  hwm: number;
  anon: number;
  file: number;
}

function readMem(pid: number | undefined): Mem | null {
  if (!pid) return null;
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return null;
  }
}

class Peak {
  rss = 0;
  anon = 0;
  file = 0;
  note(m: Mem | null): void {
    if (!m) return;
    this.rss = Math.max(this.rss, m.rss, m.hwm);
    this.anon = Math.max(this.anon, m.anon);
    this.file = Math.max(this.file, m.file);
  }
}

/** Writes the export file; returns its size and the kinds in it. */
function writeExport(path: string, n: number): { bytes: number; kinds: Record<number, number> } {
  const fd = openSync(path, 'w');
  const kinds: Record<number, number> = {};
  let bytes = 0;
  let parts: string[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (const e of exportLines({
    n,
    authors: AUTHORS,
    seed: 11,
    startSec: now - 365 * 86_400,
    spanSec: 365 * 86_400 - 3600,
    replaceable: true,
  })) {
    parts.push(e.line + '\n');
    kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
    if (parts.length === 2000) {
      bytes += writeSync(fd, parts.join(''));
      parts = [];
    }
  }
  if (parts.length) bytes += writeSync(fd, parts.join(''));
  closeSync(fd);
  return { bytes, kinds };
}

/** The baseline: read the file in 1 MiB chunks, split lines, JSON.parse each. */
async function rawParseRate(path: string): Promise<{ lines: number; seconds: number }> {
  const t = performance.now();
  let lines = 0;
  let tail = '';
  let sink = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, encoding: 'utf8' })) {
    const text = tail + (chunk as string);
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) >= 0) {
      const e = JSON.parse(text.slice(start, nl)) as { created_at: number };
      sink += e.created_at & 1;
      lines++;
      start = nl + 1;
    }
    tail = text.slice(start);
  }
  if (sink < 0) log('unreachable');
  return { lines, seconds: (performance.now() - t) / 1000 };
}

interface RunResult {
  summary: Record<string, unknown> & {
    read: number;
    acked: number;
    new: number;
    duplicates: number;
    elapsedMs: number;
    complete: boolean;
    skipped: Record<string, number>;
    invalid: Record<string, number>;
  };
  wallS: number;
  code: number | null;
  peak: Peak;
  sidecarPeak: Peak;
  /** CPU seconds used during the run by the backfill command and by the sidecar. */
  cpuS: number;
  sidecarCpuS: number;
  stderrTail: string;
}

async function runBackfill(cfgPath: string, file: string, extra: string[], sidecarPid: number, deadline: number): Promise<RunResult> {
  const t = performance.now();
  const more = (process.env.BENCH_BACKFILL_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [
      BACKFILL_MAIN,
      '--config',
      cfgPath,
      '--file',
      file,
      '--trusted',
      '--json',
      '--progress-interval',
      '10',
      '--log-level',
      'info',
      ...more,
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cleanEnv(),
    },
  );
  onCleanup(async () => void child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
    for (const l of d.split('\n')) if (l.includes('"backfill progress"')) log(`  ${progressLine(l)}`);
  });
  const peak = new Peak();
  const sidecarPeak = new Peak();
  const sidecarCpu0 = procCpuMs(sidecarPid) ?? NaN;
  let cpuMs = 0;
  const sampler = setInterval(() => {
    peak.note(readMem(child.pid));
    sidecarPeak.note(readMem(sidecarPid));
    cpuMs = procCpuMs(child.pid) ?? cpuMs;
    if (Date.now() > deadline) child.kill('SIGINT');
  }, 1000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearInterval(sampler);
  const sidecarCpuS = ((procCpuMs(sidecarPid) ?? NaN) - sidecarCpu0) / 1000;
  sidecarPeak.note(readMem(sidecarPid));
  const wallS = (performance.now() - t) / 1000;
  let summary: RunResult['summary'];
  try {
    summary = JSON.parse(out.trim().split('\n').pop() ?? '') as RunResult['summary'];
  } catch {
    throw new Error(`backfill printed no summary (exit ${code}):\n${err.slice(-3000)}`);
  }
  return { summary, wallS, code, peak, sidecarPeak, cpuS: cpuMs / 1000, sidecarCpuS, stderrTail: err.slice(-3000) };
}

function progressLine(l: string): string {
  try {
    const j = JSON.parse(l) as { read: number; acked: number; eventsPerSec: number; percent?: number };
    return `progress: read ${j.read}, acked ${j.acked}, ${j.eventsPerSec} ev/s${j.percent !== undefined ? `, ${j.percent}%` : ''}`;
  } catch {
    return l.slice(0, 200);
  }
}

async function main(): Promise<void> {
  const args = parseArgs();
  const N = args.n ?? (args.quick ? 50_000 : 1_000_000);
  const budgetS = Number(process.env.BACKFILL_BENCH_BUDGET_S ?? (args.quick ? 120 : 900));
  const load0 = loadavg();
  log(
    `backfill bench (${args.quick ? 'quick' : 'full'}): N=${N} events from ${AUTHORS} authors, JSONL file → nostr-bt-backfill → sidecar child; budget ${budgetS} s`,
  );
  const dir = makeTempDir('nostr-bt-backfill-bench-');
  const file = join(dir, 'export.jsonl');

  let t = performance.now();
  const w = writeExport(file, N);
  log(
    `generated ${fmt(N)} events (${fmt(w.bytes / 1e6, 1)} MB, avg ${fmt(w.bytes / N)} B/line; kinds ${JSON.stringify(w.kinds)}) in ${fmt((performance.now() - t) / 1000, 1)} s`,
  );

  const raw = await rawParseRate(file);
  const rawRate = raw.lines / raw.seconds;
  log(`baseline: read + split + JSON.parse of the same file: ${fmt(rawRate)} lines/s (${fmt(raw.seconds, 2)} s)`);

  const dataDir = join(dir, 'data');
  // Short windows so the bundler's catch-up is measured in seconds, not a 60 s window wait.
  const toml = stringifyToml(
    deepMerge({ bundle: { windowSeconds: args.quick ? 3 : 10 } }, parseToml(args.extraToml) as Record<string, unknown>),
  );
  const cfgPath = writeConfig(dir, dataDir, toml);
  const cfg = parseToml(readFileSync(cfgPath, 'utf8')) as { bundle?: { maxActiveTorrents?: number } };
  const bound = cfg.bundle?.maxActiveTorrents ?? 1000;
  const sc = await startSidecarChild(cfgPath, dataDir, 30_000);
  log(`sidecar pid ${sc.pid}, status ${sc.statusAddr}; config ${toml.replace(/\n+/g, ' ').trim()} (otherwise defaults, loopback)`);

  const deadline = Date.now() + budgetS * 1000;
  t = performance.now();
  const first = await runBackfill(cfgPath, file, [], sc.pid, deadline);
  const s1 = first.summary;
  const rate = s1.acked / (s1.elapsedMs / 1000);
  log(
    `CPU during the backfill: command ${fmt(first.cpuS, 1)} s (sampled up to its last second), sidecar ${fmt(first.sidecarCpuS, 1)} s, over ${fmt(first.wallS, 1)} s of wall time on ${availableParallelism()} cores`,
  );
  log(
    `backfill: exit ${first.code}, read ${s1.read}, acked ${s1.acked}, new ${s1.new}, duplicates ${s1.duplicates}, skipped ${JSON.stringify(s1.skipped)}, errors ${JSON.stringify(s1.invalid)} in ${fmt(s1.elapsedMs / 1000, 1)} s (process wall ${fmt(first.wallS, 1)} s) = ${fmt(rate)} events/s`,
  );

  // Bundling catch-up: every stored event in an active bundle.
  const tb = Date.now();
  type ExtStatus = StatusDoc & {
    bundles?: { active: number; events: number; byLevel?: Record<string, number>; pendingEvents?: number; pendingRewrites?: number };
    seeding?: { torrents: number };
  };
  let st: ExtStatus | null = null;
  let caughtUp = false;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    try {
      st = (await getStatus(sc.statusAddr!, 30_000)) as ExtStatus;
      // Caught up: no event waits for a cut, no removal waits for a rewrite (superseded versions
      // of replaceable events stay in their bundle until its next merge, by design).
      if (st && (st.ingest?.backlog ?? 0) === 0 && st.bundles?.pendingEvents === 0 && st.bundles?.pendingRewrites === 0) {
        caughtUp = true;
        break;
      }
    } catch {
      /* busy */
    }
    first.sidecarPeak.note(readMem(sc.pid));
    await sleep(250);
  }
  const bundleS = (Date.now() - tb) / 1000;
  log(
    caughtUp
      ? `bundling caught up ${fmt(bundleS, 1)} s after the backfill ended`
      : `bundling NOT caught up after ${fmt(bundleS, 1)} s (budget)`,
  );
  log(
    `  stored ${st?.events.stored}, in active bundles ${st?.bundles?.events} (superseded versions included), active torrents ${st?.bundles?.active} ${JSON.stringify(st?.bundles?.byLevel ?? {})} (bound ${bound}), seeding ${st?.seeding?.torrents}`,
  );

  // Re-run end to end: nothing new.
  const second = Date.now() < deadline ? await runBackfill(cfgPath, file, ['--restart'], sc.pid, deadline) : null;
  const s2 = second?.summary;
  const rate2 = s2 ? s2.acked / (s2.elapsedMs / 1000) : NaN;
  if (s2)
    log(
      `re-run (--restart): read ${s2.read}, new ${s2.new}, duplicates ${s2.duplicates} in ${fmt(s2.elapsedMs / 1000, 1)} s = ${fmt(rate2)} events/s`,
    );
  const sidecarEnd = readMem(sc.pid);
  const stop = await sc.terminate(30_000);
  log(`sidecar stop: ${stop.graceful ? 'graceful' : 'SIGKILLed'} after ${fmt(stop.ms)} ms`);

  const problems: string[] = [];
  if (first.code !== 0) problems.push(`backfill exited ${first.code}: ${first.stderrTail.slice(-500)}`);
  if (!s1.complete) problems.push('first run not complete');
  if (s1.acked !== N) problems.push(`acked ${s1.acked} != ${N}`);
  if (s2 && s2.new !== 0) problems.push(`re-run added ${s2.new} events`);
  if (!caughtUp) problems.push('bundling did not catch up within the budget');
  if ((st?.bundles?.active ?? 0) > bound) problems.push(`active torrents ${st?.bundles?.active} > bound ${bound}`);
  for (const p of problems) log(`PROBLEM: ${p}`);

  const sidecarPeak = first.sidecarPeak;
  if (second) {
    sidecarPeak.note({ rss: second.sidecarPeak.rss, hwm: 0, anon: second.sidecarPeak.anon, file: second.sidecarPeak.file });
  }
  sidecarPeak.note(sidecarEnd);
  const clientPeak = first.peak;
  log('');
  log('summary:');
  log(
    `  backfill ${fmt(rate)} events/s (goal ≥ ${fmt(RATE_GOAL)}: ${rate >= RATE_GOAL ? 'met' : 'MISSED'}) = ${fmt(rate / rawRate, 3)}× the raw read+parse rate ${fmt(rawRate)} lines/s (goal ≥ ${RATIO_GOAL}×: ${rate / rawRate >= RATIO_GOAL ? 'met' : 'MISSED'})`,
  );
  log(
    `  sidecar peak RSS ${fmt(MB(sidecarPeak.rss))} MB (anonymous ${fmt(MB(sidecarPeak.anon))} MB, file-backed ${fmt(MB(sidecarPeak.file))} MB); backfill command peak RSS ${fmt(MB(clientPeak.rss))} MB (anonymous ${fmt(MB(clientPeak.anon))} MB, file-backed ${fmt(MB(clientPeak.file))} MB); goal ≤ ${RSS_GOAL_MB} MB`,
  );
  log(`  active torrents at the end ${st?.bundles?.active ?? '?'} (bound ${bound})`);
  log(
    `  load average at the start ${load0.map((x) => fmt(x, 1)).join(' ')}, at the end ${loadavg()
      .map((x) => fmt(x, 1))
      .join(' ')} (${availableParallelism()} cores; other processes on this machine count)`,
  );

  const figures: Figure[] = [
    figure('backfill, against raw read + JSON.parse', rate, 'events/s', rawRate, `>= ${RATIO_GOAL}×`),
    figure('backfill', rate, 'events/s', null, `>= ${RATE_GOAL} events/s`),
    figure('raw read + JSON.parse', rawRate, 'lines/s'),
    figure('re-run (all duplicates)', rate2, 'events/s', rawRate),
    figure('sidecar peak RSS (VmHWM)', MB(sidecarPeak.rss), 'MB', null, `<= ${RSS_GOAL_MB} MB`),
    figure('sidecar peak anonymous RSS', MB(sidecarPeak.anon), 'MB'),
    figure('sidecar peak file-backed RSS', MB(sidecarPeak.file), 'MB'),
    figure('backfill command peak RSS (VmHWM)', MB(clientPeak.rss), 'MB', null, `<= ${RSS_GOAL_MB} MB`),
    figure('backfill command peak anonymous RSS', MB(clientPeak.anon), 'MB'),
    figure('CPU of the backfill command per event', (first.cpuS * 1e6) / Math.max(1, s1.acked), 'µs'),
    figure('CPU of the sidecar per event', (first.sidecarCpuS * 1e6) / Math.max(1, s1.acked), 'µs'),
    figure('active torrents at the end', st?.bundles?.active ?? NaN, 'torrents', bound, `<= ${bound}`),
    figure('bundling caught up after the backfill', caughtUp ? bundleS : NaN, 's'),
  ];
  printFigures('backfill', figures, {
    mode: args.quick ? 'quick' : 'full',
    n: N,
    authors: AUTHORS,
    bytes: w.bytes,
    problems,
    loadavg: { start: load0, end: loadavg() },
  });
}

runMain(main);
