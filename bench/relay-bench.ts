// Relay benchmark: what the plugin + sidecar cost a strfry relay on this machine.
//
// strfry cannot be installed here, so a stand-in of its write path (relay-standin.ts,
// relay-writer.ts) takes the load: P websocket publisher processes (relay-publisher.ts) send
// pre-signed kind-1 events; the stand-in's websocket thread parses each message and hands the event
// to a single writer thread that checks the Schnorr signature, skips duplicates, asks the
// write-policy plugin synchronously (strfry's exact input line on a FIFO, a blocking read of the
// reply) and writes the accepted events to LMDB, one transaction per queue it took, then sends the
// OKs. Publishers and stand-in together keep both cores busy, as with the real relay.
//
// Saturated mode, alternated rounds (the order rotates each round), each run on fresh databases:
//   none  no write policy
//   bare  a bare node:readline plugin (parse, write accept)
//   up    nostr-bt-plugin with the sidecar running (its defaults, DHT off)
//   down  nostr-bt-plugin with no sidecar (lines go to the spool)
// → events/s, the ratios (bare/none, up/bare, down/bare) and CPU µs per event of each process
// (/proc/<pid>/stat utime+stime, all threads): stand-in, publishers, plugin, sidecar (the sidecar's
// until it has indexed everything, so work it deferred is counted).
//
// Paced mode (2,000 events/s, nothing else busy): bare and up → plugin and sidecar CPU per event,
// accept → indexed and accept → in a bundle, p50/p99 (the stand-in records when the plugin
// accepted each event; the bench reads the sidecar's indexed counter and bundle frontier from its
// LMDB index every 20 ms, which costs the sidecar no CPU, unlike a /status request; a latency is
// an upper bound, ≤ 20 ms over). Each paced run first sends 5 s at the paced rate (a sidecar's
// first seconds of traffic are spent compiling its hot code: reported apart). With
// RELAY_BENCH_BASELINE_DIST=<another build's dist/> the paced 'up' run alternates this build and
// that one, round by round, for before/after figures measured in the same run.
//
//   node dist/bench/relay-bench.js [--quick] [--n=EVENTS] [--only=none,bare,up,down,paced|paced-up]
//                                  [--toml='[ingest]\nbatchMaxDelayMs = 50']
// Env: RELAY_BENCH_ROUNDS (default 3; quick 1), RELAY_BENCH_PUBLISHERS (4), RELAY_BENCH_RATE (2000),
// RELAY_BENCH_PACED_SECONDS (10; quick 3), RELAY_BENCH_PACED_WARMUP_SECONDS (5; quick 1),
// RELAY_BENCH_PACED_ROUNDS (1; 3 with a baseline), RELAY_BENCH_WINDOW (bundle window of the paced
// runs, s: 60, the default; quick 2), RELAY_BENCH_BASELINE_DIST, RELAY_BENCH_TIDS=1 (CPU by thread).
// The last line before the figures, `SUMMARY relay-bench: ...`, is the run in one line.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { initNostrWasm } from 'nostr-wasm';
import {
  DIST_DIR,
  PLUGIN_MAIN,
  cleanEnv,
  dirUsage,
  figure,
  fmt,
  getStatus,
  log,
  makeTempDir,
  median,
  onCleanup,
  parseArgs,
  printFigures,
  procCpuMs,
  runMain,
  sleep,
  startSidecarChild,
  workerPid,
  writeConfig,
  type Figure,
  BARE_PLUGIN,
} from './common.js';
import type { SidecarProcess } from '../test/testkit/sidecar-process.js';
import { contentOf, prng } from '../test/testkit/events.js';
import { IndexedProbe } from './relay-progress.js';
import type { WriterData } from './relay-writer.js';

const MODES = ['none', 'bare', 'up', 'down'] as const;
type Mode = (typeof MODES)[number];
const WARMUP = 400;
const WINDOW = 64;
/** How often the paced mode reads the indexed count (from LMDB: it costs the sidecar nothing). */
const PROBE_MS = 20;
/** The pace of the /status polls whose cost the paced mode reports (what a dashboard might do). */
const POLL_MS = 200;
const RATIO_GOAL = 0.95;
const SIDECAR_PACED_GOAL_US = 30;
const P99_GOAL_MS = 2000;

/** A child process whose stdout lines can be awaited. */
class Child {
  readonly proc: ChildProcess;
  private lines: string[] = [];
  private waiters: (() => void)[] = [];
  stderr = '';
  exited = false;

  constructor(args: string[], env: NodeJS.ProcessEnv = cleanEnv()) {
    this.proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (s: string) => {
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      this.wake();
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-8000)));
    this.proc.once('exit', () => {
      this.exited = true;
      this.wake();
    });
    this.proc.stdin!.on('error', () => {});
    onCleanup(async () => this.kill());
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(line: string): void {
    if (!this.exited) this.proc.stdin!.write(line + '\n');
  }

  /** The next stdout line (after `timeoutMs`, or if the child exits: an error with its stderr). */
  async next(what: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.exited) throw new Error(`${what}: the child exited: ${this.stderr.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: no answer within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }

  async stop(ms = 10_000): Promise<void> {
    if (this.exited) return;
    this.proc.stdin!.end();
    const t0 = Date.now();
    while (!this.exited && Date.now() - t0 < ms) await sleep(20);
    this.kill();
  }

  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

interface Files {
  warm: string;
  timed: string;
  paced: string;
  /** Sent at the paced rate before the paced measurement (JIT compilation, caches): `pacedWarmCount` events. */
  pacedWarm: string;
  pacedWarmCount: number;
}

/** Pre-signed kind-1 notes, one JSON per line: `count` of them from 100 authors. */
async function signEvents(path: string, count: number, seed: number): Promise<void> {
  const w = await initNostrWasm();
  const keys = Array.from({ length: 100 }, () => w.generateSecretKey());
  const rnd = prng(seed);
  const now = Math.floor(Date.now() / 1000);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const tags: string[][] = [];
    if (rnd() < 0.3) tags.push(['t', 'nostr']);
    const e = {
      kind: 1,
      created_at: now - (count - i),
      tags,
      content: contentOf(80 + Math.floor(rnd() * 400), seed * 1_000_000 + i),
    } as Record<string, unknown>;
    w.finalizeEvent(e as never, keys[i % keys.length]!);
    out.push(JSON.stringify(e));
  }
  writeFileSync(path, out.join('\n') + '\n');
}

interface CpuSet {
  standin: number | null;
  publishers: number | null;
  plugin: number | null;
  sidecar: number | null;
}

interface Rig {
  standin: Child;
  publishers: Child[];
  pluginPid: number | null;
  sidecar: SidecarProcess | null;
  /** The sidecar's indexed count, read from its index (null without a sidecar). */
  probe: IndexedProbe | null;
  spoolDir: string;
  cpu(): CpuSet;
  stop(): Promise<void>;
}

function sumCpu(pids: number[]): number | null {
  let t = 0;
  for (const p of pids) {
    const v = procCpuMs(p);
    if (v === null) return null;
    t += v;
  }
  return t;
}

/** `dist`: the build whose plugin and sidecar run (this one, or a baseline's: RELAY_BENCH_BASELINE_DIST). */
async function startRig(mode: Mode, publishers: number, extraToml: string, dist = DIST_DIR): Promise<Rig> {
  const dir = makeTempDir(`nostr-bt-relay-bench-${mode}-`);
  const dataDir = join(dir, 'data');
  const cfg = writeConfig(dir, dataDir, `[dht]\nenabled = false\n${extraToml}`);
  mkdirSync(dataDir, { recursive: true });
  const sidecar = mode === 'up' ? await startSidecarChild(cfg, dataDir, 20_000, join(dist, 'sidecar', 'main.js')) : null;
  const probe = sidecar ? new IndexedProbe(dataDir) : null;
  if (probe) onCleanup(() => probe.close());
  const fifoDir = join(dir, 'fifo');
  mkdirSync(fifoDir);
  execFileSync('mkfifo', [join(fifoDir, 'plugin.in'), join(fifoDir, 'plugin.out')]);
  let plugin: string | null = null;
  let env: Record<string, string> = {};
  if (mode === 'bare') {
    const bare = join(dir, 'bare.mjs');
    writeFileSync(bare, BARE_PLUGIN);
    plugin = `'${process.execPath}' '${bare}'`;
  } else if (mode === 'up' || mode === 'down') {
    plugin = `'${process.execPath}' '${dist === DIST_DIR ? PLUGIN_MAIN : join(dist, 'plugin', 'main.js')}'`;
    env = { NOSTR_BT_CONFIG: cfg };
  }
  const wd: WriterData = {
    dbDir: join(dir, 'strfry-db'),
    plugin,
    env: Object.fromEntries(Object.entries(cleanEnv(env)).filter((kv): kv is [string, string] => kv[1] !== undefined)),
    fifoDir,
    pluginStderr: join(dir, 'plugin.stderr'),
  };
  const standin = new Child([join(DIST_DIR, 'bench', 'relay-standin.js'), JSON.stringify(wd)]);
  const ready = JSON.parse(await standin.next('stand-in start', 30_000)) as { port: number; pluginPid: number | null };
  const url = `ws://127.0.0.1:${ready.port}`;
  const pubs: Child[] = [];
  for (let i = 0; i < publishers; i++)
    pubs.push(new Child([join(DIST_DIR, 'bench', 'relay-publisher.js'), url, String(i), String(publishers), String(WINDOW)]));
  for (const p of pubs) if ((await p.next('publisher start', 30_000)) !== 'ready') throw new Error('publisher did not say ready');
  // The plugin's own process behind the /bin/sh wrapper (found once it runs).
  let pluginPid: number | null = null;
  const rig: Rig = {
    standin,
    publishers: pubs,
    get pluginPid() {
      if (pluginPid === null && ready.pluginPid !== null) {
        const w = workerPid(ready.pluginPid);
        if (w !== ready.pluginPid) pluginPid = w;
        return w;
      }
      return pluginPid;
    },
    sidecar,
    probe,
    spoolDir: join(dataDir, 'spool'),
    cpu: () => ({
      standin: procCpuMs(standin.pid),
      publishers: sumCpu(pubs.map((p) => p.pid)),
      plugin: rig.pluginPid === null ? null : procCpuMs(rig.pluginPid),
      sidecar: sidecar && !sidecar.exited ? procCpuMs(sidecar.pid) : null,
    }),
    stop: async () => {
      for (const p of pubs) p.send('exit');
      await Promise.all(pubs.map((p) => p.stop(5000)));
      standin.send('close');
      await standin.stop(15_000);
      await probe?.close();
      if (sidecar) await sidecar.terminate(10_000);
    },
  };
  return rig;
}

/** Every publisher sends its share of `file` (at `rate` events/s in all, or flat out); resolves when all are answered. */
async function sendAll(rig: Rig, file: string, rate: number | null, timeoutMs: number): Promise<{ ok: number; failed: number }> {
  const per = rate === null ? '' : ` ${rate / rig.publishers.length}`;
  for (const p of rig.publishers) p.send(`go ${file}${per}`);
  let ok = 0;
  let failed = 0;
  for (const p of rig.publishers) {
    const r = JSON.parse(await p.next('publisher run', timeoutMs)) as { ok: number; failed: number };
    ok += r.ok;
    failed += r.failed;
  }
  return { ok, failed };
}

const delta = (a: number | null, b: number | null) => (a === null || b === null ? null : b - a);
const perEvent = (ms: number | null, n: number) => (ms === null || n === 0 ? null : (ms * 1000) / n);

interface RunResult {
  mode: Mode;
  round: number;
  events: number;
  wallMs: number;
  rate: number;
  failed: number;
  /** CPU µs per event during the timed sending. */
  cpu: CpuSet;
  /** Sidecar CPU µs per event from the start until it indexed everything. */
  sidecarTotalUs: number | null;
  /** How long after the last OK the sidecar had indexed everything. */
  catchUpMs: number | null;
  indexed: number | null;
  spoolLines: number | null;
  load: number;
}

async function waitIndexed(rig: Rig, expected: number, timeoutMs = 60_000): Promise<number | null> {
  return rig.probe ? rig.probe.waitFor(expected, timeoutMs) : null;
}

async function saturatedRun(mode: Mode, round: number, files: Files, n: number, publishers: number, extraToml: string): Promise<RunResult> {
  const rig = await startRig(mode, publishers, extraToml);
  try {
    const w = await sendAll(rig, files.warm, null, 60_000);
    if (w.failed > 0) throw new Error(`${mode}: ${w.failed} warm-up events refused`);
    if (rig.sidecar) await waitIndexed(rig, WARMUP);
    await sleep(300);
    const c0 = rig.cpu();
    const t0 = performance.now();
    const r = await sendAll(rig, files.timed, null, 300_000);
    const wallMs = performance.now() - t0;
    const c1 = rig.cpu();
    let sidecarTotalUs: number | null = null;
    let catchUpMs: number | null = null;
    let indexed: number | null = null;
    if (rig.sidecar) {
      indexed = await waitIndexed(rig, WARMUP + n);
      catchUpMs = performance.now() - t0 - wallMs;
      sidecarTotalUs = perEvent(delta(c0.sidecar, procCpuMs(rig.sidecar.pid)), n);
    }
    const cpu: CpuSet = {
      standin: perEvent(delta(c0.standin, c1.standin), n),
      publishers: perEvent(delta(c0.publishers, c1.publishers), n),
      plugin: perEvent(delta(c0.plugin, c1.plugin), n),
      sidecar: perEvent(delta(c0.sidecar, c1.sidecar), n),
    };
    await rig.stop();
    const spoolLines = mode === 'down' ? dirUsage(rig.spoolDir, true).lines : null;
    return {
      mode,
      round,
      events: r.ok,
      wallMs,
      rate: (r.ok + r.failed) / (wallMs / 1000),
      failed: r.failed,
      cpu,
      sidecarTotalUs,
      catchUpMs,
      indexed,
      spoolLines,
      load: loadavg()[0]!,
    };
  } finally {
    await rig.stop();
  }
}

interface PacedResult {
  mode: Mode;
  /** 'this build' or 'baseline' (RELAY_BENCH_BASELINE_DIST). */
  build: string;
  round: number;
  /** Sidecar CPU µs per event of the paced warm-up (its first seconds of traffic, JIT compilation included). */
  warmSidecarUs: number | null;
  events: number;
  rate: number;
  pluginUs: number | null;
  sidecarUs: number | null;
  standinUs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  indexed: number | null;
  /** Accept → in a bundle (the bundle frontier passed the event), ms; null when not all were bundled in time. */
  bundledP50Ms: number | null;
  bundledP99Ms: number | null;
  bundledMaxMs: number | null;
  /** Events of the paced run in bundles when the bench stopped waiting. */
  bundled: number | null;
  /** Sidecar CPU µs per paced event from the start until every event was in a bundle (the cuts included). */
  sidecarBundledUs: number | null;
  /** Sidecar CPU ms per second while idle: polled like during the run, and not polled. */
  pollCostMsPerSec: number | null;
  idleMsPerSec: number | null;
  /** Sidecar CPU µs per event by thread name. */
  threads: string;
  load: number;
}

/** The latency of each accepted event (accept times in order) to the first probe at which `reached(seq)` held. */
function latencies(
  times: number[],
  base: number,
  polls: { at: number; indexed: number; frontier: number }[],
  reached: (p: { indexed: number; frontier: number }, seq: number) => boolean,
): number[] {
  const lat: number[] = [];
  let p = 0;
  for (let i = 0; i < times.length; i++) {
    const seq = base + i + 1;
    while (p < polls.length && !reached(polls[p]!, seq)) p++;
    if (p === polls.length) break;
    lat.push(polls[p]!.at - times[i]!);
  }
  return lat.sort((a, b) => a - b);
}

function pctOf(lat: number[], q: number): number | null {
  return lat.length ? lat[Math.min(lat.length - 1, Math.ceil((q / 100) * lat.length) - 1)]! : null;
}

async function pacedRun(
  mode: Mode,
  files: Files,
  k: number,
  rate: number,
  publishers: number,
  extraToml: string,
  windowSeconds: number,
  build: string,
  dist: string,
  round: number,
): Promise<PacedResult> {
  const rig = await startRig(mode, publishers, extraToml, dist);
  try {
    const w = await sendAll(rig, files.warm, null, 60_000);
    if (w.failed > 0) throw new Error(`${mode}: ${w.failed} warm-up events refused`);
    if (rig.sidecar) await waitIndexed(rig, WARMUP);
    // Then at the paced rate for a while: a sidecar that just started compiles its hot code on
    // V8's background threads during its first seconds of traffic (measured: about a third of its
    // CPU in a 10 s run right after the start), a cost paid once, not per event of a running relay.
    // Reported on its own.
    const base = WARMUP + files.pacedWarmCount;
    let warmSidecarUs: number | null = null;
    if (files.pacedWarmCount > 0) {
      const cw = rig.cpu();
      const ww = await sendAll(rig, files.pacedWarm, rate, 120_000);
      if (ww.failed > 0) throw new Error(`${mode}: ${ww.failed} paced warm-up events refused`);
      if (rig.sidecar) {
        await waitIndexed(rig, base);
        warmSidecarUs = perEvent(delta(cw.sidecar, procCpuMs(rig.sidecar.pid)), files.pacedWarmCount);
      }
    }
    rig.standin.send('times'); // forget the warm-up's accept times
    await rig.standin.next('accept times', 10_000);
    await sleep(300);
    const sc = rig.sidecar;
    const polls: { at: number; indexed: number; frontier: number }[] = [];
    let polling = sc !== null;
    const probe = rig.probe;
    // Until every paced event is in a bundle (or the bench stops waiting).
    const poller = (async () => {
      while (polling && probe) {
        const { indexed, frontier } = probe.progress();
        polls.push({ at: performance.timeOrigin + performance.now(), indexed, frontier });
        if (frontier > base + k) return;
        await sleep(PROBE_MS);
      }
    })();
    const th0 = sc ? threadCpu(sc.pid) : new Map<string, number>();
    const c0 = rig.cpu();
    const r = await sendAll(rig, files.paced, rate, 120_000);
    const c1 = rig.cpu();
    let sidecarUs: number | null = null;
    let indexed: number | null = null;
    let p50Ms: number | null = null;
    let p99Ms: number | null = null;
    let maxMs: number | null = null;
    let pollCost: number | null = null;
    let idle: number | null = null;
    let threads = '';
    let bundledP50Ms: number | null = null;
    let bundledP99Ms: number | null = null;
    let bundledMaxMs: number | null = null;
    let bundled: number | null = null;
    let sidecarBundledUs: number | null = null;
    if (sc) {
      const deadline = Date.now() + 60_000;
      while ((polls.at(-1)?.indexed ?? 0) < base + k && Date.now() < deadline) await sleep(50);
      indexed = (polls.at(-1)?.indexed ?? 0) - base;
      sidecarUs = perEvent(delta(c0.sidecar, procCpuMs(sc.pid)), k);
      threads = threadDelta(th0, threadCpu(sc.pid), k);
      // The last paced events are cut at the end of their window: wait for it (and 10 s more).
      const bundleDeadline = Date.now() + (windowSeconds + 10) * 1000;
      while ((polls.at(-1)?.frontier ?? 0) <= base + k && Date.now() < bundleDeadline) await sleep(50);
      polling = false;
      await poller;
      sidecarBundledUs = perEvent(delta(c0.sidecar, procCpuMs(sc.pid)), k);
      bundled = Math.max(0, Math.min(k, (polls.at(-1)?.frontier ?? 1) - 1 - base));
      rig.standin.send('times');
      const times = (JSON.parse(await rig.standin.next('accept times', 10_000)) as { times: number[] }).times;
      const lat = latencies(times, base, polls, (p, seq) => p.indexed >= seq);
      p50Ms = pctOf(lat, 50);
      p99Ms = pctOf(lat, 99);
      maxMs = lat.at(-1) ?? null;
      const blat = latencies(times, base, polls, (p, seq) => p.frontier > seq);
      if (blat.length === times.length) {
        bundledP50Ms = pctOf(blat, 50);
        bundledP99Ms = pctOf(blat, 99);
        bundledMaxMs = blat.at(-1) ?? null;
      }
      // What /status polls would cost the sidecar (the run itself reads the index instead): 2 s idle, polled every POLL_MS.
      const i0 = procCpuMs(sc.pid);
      const tI = performance.now();
      for (let i = 0; i < 10; i++) {
        await getStatus(sc.statusAddr!).catch(() => null);
        await sleep(POLL_MS);
      }
      const i1 = procCpuMs(sc.pid);
      pollCost = i0 === null || i1 === null ? null : (i1 - i0) / ((performance.now() - tI) / 1000);
      const tJ = performance.now();
      await sleep(2000);
      const i2 = procCpuMs(sc.pid);
      idle = i1 === null || i2 === null ? null : (i2 - i1) / ((performance.now() - tJ) / 1000);
    }
    await rig.stop();
    return {
      mode,
      build,
      round,
      warmSidecarUs,
      events: r.ok,
      rate,
      pluginUs: perEvent(delta(c0.plugin, c1.plugin), k),
      sidecarUs,
      standinUs: perEvent(delta(c0.standin, c1.standin), k),
      p50Ms,
      p99Ms,
      maxMs,
      indexed,
      bundledP50Ms,
      bundledP99Ms,
      bundledMaxMs,
      bundled,
      sidecarBundledUs,
      pollCostMsPerSec: pollCost,
      idleMsPerSec: idle,
      threads,
      load: loadavg()[0]!,
    };
  } finally {
    await rig.stop();
  }
}

/** CPU ms of a process's main thread and of its other threads (libuv pool, LMDB, workers, GC): node names none of them. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const name = Number(tid) === pid ? 'main thread' : process.env.RELAY_BENCH_TIDS ? threadName(pid, Number(tid)) : 'other threads';
      out.set(name, (out.get(name) ?? 0) + (procCpuMs(pid, Number(tid)) ?? 0));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** A thread's name (libuv's pool, V8's workers, worker threads), and its place among the process's threads. */
function threadName(pid: number, tid: number): string {
  let comm = '?';
  try {
    comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    /* gone */
  }
  return `${comm}+${tid - pid}`;
}

function threadDelta(a: Map<string, number>, b: Map<string, number>, n: number): string {
  const parts: [string, number][] = [];
  for (const [k, v] of b) parts.push([k, ((v - (a.get(k) ?? 0)) * 1000) / n]);
  return parts
    .filter(([, v]) => v > 0)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k} ${fmt(v, 1)}`)
    .join(', ');
}

const us = (v: number | null) => (v === null ? '?' : fmt(v, 1));

function describe(r: RunResult): string {
  let s =
    `round ${r.round} ${r.mode.padEnd(5)} ${fmt(r.rate).padStart(6)} events/s (${r.events} in ${fmt(r.wallMs)} ms)  CPU µs/event: ` +
    `stand-in ${us(r.cpu.standin)}, publishers ${us(r.cpu.publishers)}, plugin ${us(r.cpu.plugin)}` +
    (r.mode === 'up'
      ? `, sidecar ${us(r.cpu.sidecar)} during / ${us(r.sidecarTotalUs)} until indexed (caught up ${fmt(r.catchUpMs ?? NaN)} ms after the last OK; indexed ${r.indexed})`
      : '') +
    (r.spoolLines !== null ? `, spool ${r.spoolLines} lines` : '') +
    `  [load ${r.load.toFixed(2)}]`;
  if (r.failed) s += ` FAILED=${r.failed}`;
  return s;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const quick = args.quick;
  const n = args.n ?? (quick ? 2000 : 20_000);
  const rounds = Number(process.env.RELAY_BENCH_ROUNDS ?? (quick ? 1 : 3));
  const publishers = Number(process.env.RELAY_BENCH_PUBLISHERS ?? 4);
  const rate = Number(process.env.RELAY_BENCH_RATE ?? 2000);
  const pacedSeconds = Number(process.env.RELAY_BENCH_PACED_SECONDS ?? (quick ? 3 : 10));
  const k = Math.round(rate * pacedSeconds);
  const only = args.only;
  const modes = MODES.filter((m) => !only || only.includes(m));
  const paced = !only || only.includes('paced') || only.includes('paced-up');
  const baselineDist = process.env.RELAY_BENCH_BASELINE_DIST ? resolve(process.env.RELAY_BENCH_BASELINE_DIST) : null;
  if (baselineDist && !existsSync(join(baselineDist, 'sidecar', 'main.js')))
    throw new Error(`RELAY_BENCH_BASELINE_DIST: no sidecar/main.js under ${baselineDist}`);
  const pacedRounds = Number(process.env.RELAY_BENCH_PACED_ROUNDS ?? (baselineDist ? 3 : 1));
  // The bundle window of the paced runs: the default (60 s) unless RELAY_BENCH_WINDOW says
  // otherwise (quick: 2 s, so the bench need not wait a minute for the last cut).
  const windowSeconds = Number(process.env.RELAY_BENCH_WINDOW ?? (quick ? 2 : 60));
  const pacedToml =
    /^\s*\[bundle\]/m.test(args.extraToml) || windowSeconds === 60
      ? args.extraToml
      : `[bundle]\nwindowSeconds = ${windowSeconds}\n${args.extraToml}`;
  const t0 = Date.now();
  log(
    `relay bench (${quick ? 'quick' : 'full'}): ${publishers} websocket publishers → strfry stand-in (single writer: verify, plugin, LMDB); load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const root = makeTempDir('nostr-bt-relay-bench-');
  const pacedWarmCount = paced ? Math.round(rate * Number(process.env.RELAY_BENCH_PACED_WARMUP_SECONDS ?? (quick ? 1 : 5))) : 0;
  const files: Files = {
    warm: join(root, 'warm.jsonl'),
    timed: join(root, 'timed.jsonl'),
    paced: join(root, 'paced.jsonl'),
    pacedWarm: join(root, 'paced-warm.jsonl'),
    pacedWarmCount,
  };
  const ts = performance.now();
  await signEvents(files.warm, WARMUP, 1);
  if (modes.length > 0) await signEvents(files.timed, n, 2);
  if (paced) await signEvents(files.paced, k, 3);
  if (pacedWarmCount > 0) await signEvents(files.pacedWarm, pacedWarmCount, 4);
  log(
    `signed ${WARMUP}${modes.length > 0 ? ` + ${n}` : ''}${paced ? ` + ${pacedWarmCount} + ${k}` : ''} kind-1 events in ${fmt(performance.now() - ts)} ms`,
  );
  if (!existsSync(join(DIST_DIR, 'bench', 'relay-standin.js'))) throw new Error('not built');

  const results: RunResult[] = [];
  for (let round = 1; round <= rounds && modes.length > 0; round++) {
    const order = modes.map((_, i) => modes[(i + round - 1) % modes.length]!);
    for (const mode of order) {
      const r = await saturatedRun(mode, round, files, n, publishers, args.extraToml);
      results.push(r);
      log(describe(r));
    }
  }

  const pacedResults: PacedResult[] = [];
  if (paced) {
    log('');
    log(
      `paced: ${rate} events/s for ${pacedSeconds} s (${k} events) after ${pacedWarmCount} at that rate (warm-up), ${pacedRounds} round(s): ${only?.includes('paced-up') ? '' : 'bare plugin, '}nostr-bt (sidecar up)` +
        `${baselineDist ? ` of this build and of the baseline ${baselineDist}, alternated` : ''}; bundle window ${windowSeconds} s; accept → indexed and → bundled by reading the index every ${PROBE_MS} ms`,
    );
    const builds: [string, string][] = [
      ['this build', DIST_DIR],
      ...(baselineDist ? ([['baseline', baselineDist]] as [string, string][]) : []),
    ];
    for (let round = 1; round <= pacedRounds; round++) {
      const runs: [Mode, string, string][] = only?.includes('paced-up') ? [] : [['bare', 'this build', DIST_DIR]];
      // The builds' order alternates each round (the machine's load drifts).
      for (let i = 0; i < builds.length; i++) {
        const [b, d] = builds[(i + round - 1) % builds.length]!;
        runs.push(['up', b, d]);
      }
      for (const [mode, build, dist] of runs) {
        const r = await pacedRun(mode, files, k, rate, publishers, pacedToml, windowSeconds, build, dist, round);
        pacedResults.push(r);
        log(
          `  round ${round} ${mode.padEnd(4)}${baselineDist && mode === 'up' ? ` ${build.padEnd(10)}` : ''} ${r.events} events: CPU µs/event plugin ${us(r.pluginUs)}, stand-in ${us(r.standinUs)}` +
            (mode === 'up'
              ? `, sidecar ${us(r.sidecarUs)} until indexed, ${us(r.sidecarBundledUs)} until bundled (its first ${pacedWarmCount} paced events: ${us(r.warmSidecarUs)}) [by thread: ${r.threads}] (idle afterwards: ${fmt(r.pollCostMsPerSec ?? NaN, 1)} ms/s with /status every ${POLL_MS} ms, ${fmt(r.idleMsPerSec ?? NaN, 1)} ms/s without); ` +
                `accept → indexed p50 ${fmt(r.p50Ms ?? NaN)} ms, p99 ${fmt(r.p99Ms ?? NaN)} ms, max ${fmt(r.maxMs ?? NaN)} ms; indexed ${r.indexed}/${k}; ` +
                `accept → bundled p50 ${fmt(r.bundledP50Ms ?? NaN)} ms, p99 ${fmt(r.bundledP99Ms ?? NaN)} ms, max ${fmt(r.bundledMaxMs ?? NaN)} ms; bundled ${r.bundled}/${k}`
              : '') +
            `  [load ${r.load.toFixed(2)}]`,
        );
      }
    }
  }

  log('');
  const figures: Figure[] = [];
  const byMode = (m: Mode) => results.filter((r) => r.mode === m);
  const rateOf = (m: Mode, round: number) => results.find((r) => r.mode === m && r.round === round)?.rate ?? NaN;
  for (const m of modes) {
    const rs = byMode(m);
    const med = (f: (r: RunResult) => number | null) => median(rs.map(f).filter((v): v is number => v !== null));
    log(
      `${m.padEnd(5)} events/s ${rs.map((r) => fmt(r.rate)).join(' / ')}; CPU µs/event (median) stand-in ${fmt(
        med((r) => r.cpu.standin),
        1,
      )}, publishers ${fmt(
        med((r) => r.cpu.publishers),
        1,
      )}, plugin ${fmt(
        med((r) => r.cpu.plugin),
        1,
      )}${
        m === 'up'
          ? `, sidecar ${fmt(
              med((r) => r.sidecarTotalUs),
              1,
            )}`
          : ''
      }`,
    );
    figures.push(figure(`${m}: events/s (median of ${rs.length})`, median(rs.map((r) => r.rate)), 'events/s'));
    if (m !== 'none')
      figures.push(
        figure(
          `${m}: plugin CPU per event`,
          med((r) => r.cpu.plugin),
          'µs',
        ),
      );
    figures.push(
      figure(
        `${m}: stand-in CPU per event`,
        med((r) => r.cpu.standin),
        'µs',
      ),
    );
    if (m === 'up') {
      figures.push(
        figure(
          'up: sidecar CPU per event (saturated, until indexed)',
          med((r) => r.sidecarTotalUs),
          'µs',
        ),
      );
      figures.push(
        figure(
          'up: events indexed (fewest of the rounds)',
          Math.min(...rs.map((r) => r.indexed ?? 0)),
          'events',
          WARMUP + n,
          `== ${WARMUP + n}`,
        ),
      );
    }
    if (m === 'down')
      figures.push(
        figure(
          'down: lines in the spool (fewest of the rounds)',
          Math.min(...rs.map((r) => r.spoolLines ?? 0)),
          'lines',
          WARMUP + n,
          `== ${WARMUP + n}`,
        ),
      );
  }
  const ratio = (a: Mode, b: Mode) => {
    const xs: number[] = [];
    for (let round = 1; round <= rounds; round++) xs.push(rateOf(a, round) / rateOf(b, round));
    return xs.filter(Number.isFinite);
  };
  for (const [a, b, goal] of [
    ['bare', 'none', null],
    ['up', 'bare', `>= ${RATIO_GOAL}x bare plugin`],
    ['down', 'bare', null],
  ] as const) {
    const xs = ratio(a, b);
    if (xs.length === 0) continue;
    log(`ratio ${a}/${b}: ${fmt(median(xs), 3)} (rounds ${xs.map((x) => fmt(x, 3)).join(', ')})`);
    const f = figure(`${a} / ${b} events/s (median of rounds)`, median(xs), '×', null, goal);
    f.ratio = f.value;
    figures.push(f);
  }
  const pacedOf = (mode: Mode, build = 'this build') => pacedResults.filter((r) => r.mode === mode && r.build === build);
  const medOf = (rs: PacedResult[], f: (r: PacedResult) => number | null) => median(rs.map(f).filter((v): v is number => v !== null));
  const spread = (rs: PacedResult[], f: (r: PacedResult) => number | null) => rs.map((r) => us(f(r))).join(' / ');
  const pu = pacedOf('up');
  const pb = pacedOf('bare');
  const pbase = pacedOf('up', 'baseline');
  const summary: string[] = [];
  if (pu.length > 0) {
    const sidecarUs = medOf(pu, (r) => r.sidecarUs);
    figures.push(
      figure(
        `paced ${rate}/s: sidecar CPU per event (median of ${pu.length})`,
        sidecarUs,
        'µs',
        pbase.length ? medOf(pbase, (r) => r.sidecarUs) : null,
        `<= ${SIDECAR_PACED_GOAL_US} µs`,
      ),
    );
    figures.push(
      figure(
        `paced ${rate}/s: sidecar CPU per event until bundled (median of ${pu.length})`,
        medOf(pu, (r) => r.sidecarBundledUs),
        'µs',
        pbase.length ? medOf(pbase, (r) => r.sidecarBundledUs) : null,
      ),
    );
    figures.push(
      figure(
        `paced ${rate}/s: nostr-bt plugin CPU per event (baseline: bare plugin)`,
        medOf(pu, (r) => r.pluginUs),
        'µs',
        pb.length ? medOf(pb, (r) => r.pluginUs) : null,
        '<= 1x bare plugin',
      ),
    );
    figures.push(
      figure(
        `paced ${rate}/s: accept → indexed p50`,
        medOf(pu, (r) => r.p50Ms),
        'ms',
      ),
    );
    figures.push(
      figure(
        `paced ${rate}/s: accept → indexed p99 (worst round)`,
        Math.max(...pu.map((r) => r.p99Ms ?? Infinity)),
        'ms',
        null,
        `<= ${P99_GOAL_MS} ms`,
      ),
    );
    figures.push(
      figure(
        `paced ${rate}/s: accept → bundled p99 (worst round; window ${windowSeconds} s)`,
        Math.max(...pu.map((r) => r.bundledP99Ms ?? Infinity)),
        'ms',
        null,
        `<= ${(windowSeconds + 2) * 1000} ms`,
      ),
    );
    figures.push(
      figure(`paced ${rate}/s: events indexed (fewest of the rounds)`, Math.min(...pu.map((r) => r.indexed ?? 0)), 'events', k, `== ${k}`),
    );
    summary.push(
      `paced ${rate}/s sidecar ${fmt(sidecarUs, 1)} µs/event (${spread(pu, (r) => r.sidecarUs)}` +
        (pbase.length
          ? `; baseline ${fmt(
              medOf(pbase, (r) => r.sidecarUs),
              1,
            )}: ${spread(pbase, (r) => r.sidecarUs)}`
          : '') +
        `), plugin ${fmt(
          medOf(pu, (r) => r.pluginUs),
          1,
        )}${
          pb.length
            ? ` vs bare ${fmt(
                medOf(pb, (r) => r.pluginUs),
                1,
              )}`
            : ''
        } µs/event, ` +
        `p99 indexed ${fmt(Math.max(...pu.map((r) => r.p99Ms ?? Infinity)))} ms, bundled ${fmt(Math.max(...pu.map((r) => r.bundledP99Ms ?? Infinity)))} ms (window ${windowSeconds} s)`,
    );
  }
  const upBare = ratio('up', 'bare');
  if (upBare.length > 0) summary.unshift(`up/bare ${fmt(median(upBare), 3)} (${upBare.map((x) => fmt(x, 3)).join(', ')})`);
  if (summary.length > 0)
    log(
      `SUMMARY relay-bench: ${summary.join('; ')}; load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  log(
    `total time ${fmt((Date.now() - t0) / 1000, 1)} s; load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  printFigures('relay', figures, { mode: quick ? 'quick' : 'full', n, rounds, publishers, pacedRate: rate, pacedEvents: k });
}

runMain(main);
