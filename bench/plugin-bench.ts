// Plugin benchmark: events/s and p50/p99 answer latency of dist/plugin/main.js driven exactly as
// strfry drives a write-policy plugin (test/testkit/strfry-harness.ts: one line out, wait for the
// answer, next line), against a bare node:readline accept-all plugin measured in the same run.
//
// For each sidecar state (up: child process; down: no socket, lines go to the spool; stalled:
// sidecar child frozen with SIGSTOP after warm-up) both plugins run side by side and the N timed
// lines are sent in alternating chunks (bare, ours, ours, bare, ...), so drift in machine speed
// hits both equally. Goal: >= 0.8x the bare plugin's events/s and p99 <= 1 ms in every state.
// Prints figures; never asserts timings.
//
//   node dist/bench/plugin-bench.js [--quick] [--n=COUNT] [--only=up,down,stalled]
//                                   [--toml='[ingest]\nbatchMaxEvents = 200']
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StrfryHarness, PluginError } from '../test/testkit/strfry-harness.js';
import { unsignedEvent, pluginLine, contentOf, pubkeyN } from '../test/testkit/events.js';
import {
  PLUGIN_MAIN,
  cleanEnv,
  describeStatus,
  dirUsage,
  figure,
  fmt,
  isAborted,
  log,
  makeTempDir,
  median,
  onCleanup,
  parseArgs,
  percentile,
  pollStatus,
  procCpuMs,
  workerPid,
  printFigures,
  prng,
  runMain,
  sleep,
  startSidecarChild,
  writeConfig,
  type Figure,
  type StatusDoc,
  BARE_PLUGIN,
} from './common.js';
import type { SidecarProcess } from '../test/testkit/sidecar-process.js';

const WARMUP = 500;
const P99_GOAL_US = 1000;
const RATIO_GOAL = 0.8;
const STATES = ['up', 'down', 'stalled'] as const;
type State = (typeof STATES)[number];

interface Line {
  line: string;
  id: string;
}

/** Realistic strfry input lines: ~1 KB text notes from 1000 authors, with e/p/t tags. */
function makeLines(count: number, seed: number): Line[] {
  const rnd = prng(seed);
  const now = Math.floor(Date.now() / 1000);
  const out: Line[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = seed * 1_000_000 + i;
    const tags: string[][] = [];
    if (rnd() < 0.5) tags.push(['e', pubkeyN(n + 7), '', 'root']);
    if (rnd() < 0.5) tags.push(['p', pubkeyN(n % 977)]);
    if (rnd() < 0.2) tags.push(['t', 'nostr']);
    const e = unsignedEvent(pubkeyN(i % 1000), { kind: 1, created_at: now - 3600 + (i % 3600), tags, content: contentOf(1024, n) });
    out[i] = { line: pluginLine(e, { sourceInfo: `10.0.${(i >> 8) & 255}.${i & 255}`, receivedAt: now }), id: e.id };
  }
  return out;
}

interface RunStats {
  label: string;
  count: number;
  wallMs: number;
  eventsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** events/s of each chunk, in order. */
  chunkRates: number[];
  /** CPU µs per timed event: the plugin process, this (harness) process, the sidecar child. */
  pluginCpuUs: number | null;
  harnessCpuUs: number;
  sidecarCpuUs: number | null;
  errors: Record<string, number>;
  actions: Record<string, number>;
  restarts: number;
  warnings: number;
  stderr: string;
  timedOut: boolean;
  closedByItself: boolean;
}

/** One plugin process behind a strfry-like harness; accumulates timings over chunks. */
class Runner {
  readonly h: StrfryHarness;
  private readonly lat: Float64Array;
  private count = 0;
  private wallMs = 0;
  private readonly chunkRates: number[] = [];
  private readonly errors: Record<string, number> = {};
  private readonly actions: Record<string, number> = {};
  private closed: Promise<{ exitedByItself: boolean }> | null = null;
  private pluginPid: number | null = null;
  private pluginCpuMs: number | null = 0;
  private harnessCpuMs = 0;
  private sidecarCpuMs: number | null = 0;
  timedOut = false;

  constructor(
    readonly label: string,
    command: string,
    env: NodeJS.ProcessEnv,
    capacity: number,
  ) {
    this.h = new StrfryHarness(command, { env, timeoutMs: 10_000 });
    this.lat = new Float64Array(capacity);
    onCleanup(async () => void (await this.close()));
  }

  close(): Promise<{ exitedByItself: boolean }> {
    this.closed ??= this.h.close(5000);
    return this.closed;
  }

  private noteError(err: unknown, prefix: string, limit: number): void {
    if (isAborted()) throw new Error('interrupted');
    const k = prefix + (err instanceof PluginError ? err.kind : 'other');
    this.errors[k] = (this.errors[k] ?? 0) + 1;
    if (this.errors[k]! > limit)
      throw new Error(`${this.label}: too many plugin errors (${k}): ${(err as Error).message}; stderr:\n${this.h.stderr.slice(-2000)}`);
  }

  async warmup(lines: Line[]): Promise<void> {
    const deadline = performance.now() + 20_000;
    for (let i = 0; i < lines.length && performance.now() < deadline; i++) {
      try {
        await this.h.send(lines[i]!.line, lines[i]!.id);
      } catch (err) {
        this.noteError(err, 'warmup-', 10);
      }
    }
  }

  /** Sends lines[from, to) one at a time, like strfry; stops at the deadline. */
  async chunk(lines: Line[], from: number, to: number, deadline: number, sidecarPid: number | null): Promise<void> {
    this.pluginPid ??= workerPid(this.h.pid);
    const p0 = procCpuMs(this.pluginPid);
    const s0 = procCpuMs(sidecarPid);
    const h0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    for (let i = from; i < to; i++) {
      if (performance.now() > deadline) {
        this.timedOut = true;
        break;
      }
      try {
        const r = await this.h.send(lines[i]!.line, lines[i]!.id);
        this.lat[this.count++] = Number(r.latencyNs);
        n++;
        this.actions[r.reply.action] = (this.actions[r.reply.action] ?? 0) + 1;
      } catch (err) {
        this.noteError(err, '', 50);
      }
    }
    const ms = performance.now() - t0;
    const h = process.cpuUsage(h0);
    const p1 = procCpuMs(this.pluginPid);
    const s1 = procCpuMs(sidecarPid);
    this.harnessCpuMs += (h.user + h.system) / 1000;
    this.pluginCpuMs = p0 === null || p1 === null || this.pluginCpuMs === null ? null : this.pluginCpuMs + (p1 - p0);
    this.sidecarCpuMs = s0 === null || s1 === null || this.sidecarCpuMs === null ? null : this.sidecarCpuMs + (s1 - s0);
    this.wallMs += ms;
    this.chunkRates.push(n / (ms / 1000));
  }

  async finish(): Promise<RunStats> {
    const c = await this.close();
    const sorted = this.lat.slice(0, this.count).sort();
    return {
      label: this.label,
      count: this.count,
      wallMs: this.wallMs,
      eventsPerSec: this.count / (this.wallMs / 1000),
      p50Us: percentile(sorted, 50) / 1000,
      p99Us: percentile(sorted, 99) / 1000,
      p999Us: percentile(sorted, 99.9) / 1000,
      maxUs: (sorted[sorted.length - 1] ?? NaN) / 1000,
      chunkRates: this.chunkRates,
      pluginCpuUs: this.pluginCpuMs === null || this.count === 0 ? null : (this.pluginCpuMs * 1000) / this.count,
      harnessCpuUs: (this.harnessCpuMs * 1000) / Math.max(1, this.count),
      sidecarCpuUs: this.sidecarCpuMs === null || this.count === 0 ? null : (this.sidecarCpuMs * 1000) / this.count,
      errors: this.errors,
      actions: this.actions,
      restarts: this.h.restarts,
      warnings: this.h.warningCount,
      stderr: this.h.stderr,
      timedOut: this.timedOut,
      closedByItself: c.exitedByItself,
    };
  }
}

function describeRun(r: RunStats): string {
  let s =
    `${r.label.padEnd(26)} ${fmt(r.eventsPerSec).padStart(7)} events/s  ` +
    `p50 ${fmt(r.p50Us, 1).padStart(6)} µs  p99 ${fmt(r.p99Us, 1).padStart(7)} µs  ` +
    `p99.9 ${fmt(r.p999Us, 1).padStart(7)} µs  max ${fmt(r.maxUs, 1).padStart(8)} µs  ` +
    `(${r.count} lines, ${fmt(r.wallMs)} ms; per chunk ${r.chunkRates.map((x) => fmt(x)).join('/')})`;
  if (r.timedOut) s += ' [time cap hit]';
  if (Object.keys(r.errors).length) s += ` ERRORS=${JSON.stringify(r.errors)}`;
  if (Object.keys(r.actions).some((a) => a !== 'accept')) s += ` actions=${JSON.stringify(r.actions)}`;
  if (r.restarts !== 1) s += ` restarts=${r.restarts}`;
  if (r.warnings) s += ` stdoutWarnings=${r.warnings}`;
  if (!r.closedByItself) s += ' [did not exit by itself on stdin EOF]';
  s +=
    `\n${''.padEnd(27)} CPU per event: plugin ${r.pluginCpuUs === null ? '?' : fmt(r.pluginCpuUs, 1)} µs, harness ${fmt(r.harnessCpuUs, 1)} µs` +
    (r.sidecarCpuUs !== null ? `, sidecar (during these chunks) ${fmt(r.sidecarCpuUs, 1)} µs` : '');
  return s;
}

/** Summarizes the plugin's pino stderr: distinct messages with their level and count. */
function describeStderr(stderr: string): string {
  const msgs = new Map<string, number>();
  let other = 0;
  for (const l of stderr.split('\n')) {
    if (!l) continue;
    try {
      const o = JSON.parse(l) as { level?: number; msg?: string };
      const key = `[level ${o.level ?? '?'}] ${o.msg ?? ''}`;
      msgs.set(key, (msgs.get(key) ?? 0) + 1);
    } catch {
      other++;
    }
  }
  const parts = [...msgs.entries()].map(([m, n]) => `${m} x${n}`);
  if (other) parts.push(`${other} non-JSON stderr lines`);
  return parts.length ? parts.join('; ') : '(nothing)';
}

interface StateResult {
  state: State;
  bare: RunStats;
  ours: RunStats;
  notes: string[];
  /** Events the sidecar indexed in the end, of `expected` (warm-up + timed) sent. */
  indexed: number | null;
  expected: number;
  spoolBytes: number | null;
  /** Lines that went to the spool although the sidecar was up (drained from spool files). */
  spooledLines: number | null;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const N = args.n ?? (args.quick ? 3000 : 30_000);
  const CHUNKS = N >= 6 ? 6 : 1;
  const maxStateMs = args.quick ? 8000 : 60_000;
  const tStart = Date.now();

  log(
    `plugin bench (${args.quick ? 'quick' : 'full'}): N=${N} timed lines per plugin and state (+${WARMUP} warm-up), sequential like strfry,`,
  );
  log(`bare and nostr-bt plugins alternating in ${CHUNKS} chunks (bare first, then ours first, ...)`);
  const tg = performance.now();
  const warm = makeLines(WARMUP, 1);
  const timed = makeLines(N, 2);
  const avgBytes = timed.reduce((a, l) => a + l.line.length, 0) / timed.length;
  log(`generated ${WARMUP + N} lines (avg ${fmt(avgBytes)} B) in ${fmt(performance.now() - tg)} ms`);

  const root = makeTempDir('nostr-bt-plugin-bench-');
  const bareFile = join(root, 'bare.mjs');
  writeFileSync(bareFile, BARE_PLUGIN);
  const bareCmd = `'${process.execPath}' '${bareFile}'`;
  const oursCmd = `'${process.execPath}' '${PLUGIN_MAIN}'`;
  const total = WARMUP + N;

  {
    // Untimed: warm up this process's JIT (harness, reply parsing).
    const w = new Runner('harness warm-up', bareCmd, cleanEnv(), 2000);
    await w.warmup(timed.slice(0, 2000));
    await w.finish();
  }

  const states = STATES.filter((s) => !args.only || args.only.includes(s));
  if (states.length === 0) throw new Error('--only: no such state (up, down, stalled)');
  const results: StateResult[] = [];
  for (const state of states) {
    log('');
    log(`--- sidecar ${state} ---`);
    const dir = makeTempDir(`nostr-bt-plugin-bench-${state}-`);
    const dataDir = join(dir, 'data');
    const cfg = writeConfig(dir, dataDir, args.extraToml);
    const spoolDir = join(dataDir, 'spool');
    const notes: string[] = [];
    let indexed: number | null = null;
    let spoolBytes: number | null = null;
    let spooledLines: number | null = null;
    let sc: SidecarProcess | null = null;

    const finalCheck = async (what: string): Promise<StatusDoc | null> => {
      if (!sc?.statusAddr) {
        notes.push(`${what}: no status address`);
        return null;
      }
      const done = (s: StatusDoc) =>
        s.events.indexed >= total && s.events.received >= total && s.spool.files === 0 && (s.ingest?.backlog ?? 0) === 0;
      const r = await pollStatus(sc.statusAddr, done, 30_000);
      indexed = r.status?.events.indexed ?? null;
      spooledLines = r.status?.spool.drainedLines ?? null;
      notes.push(
        `${what} (${r.ok ? `after ${fmt(r.waitedMs)} ms` : 'NOT COMPLETE after 30 s'}): ${describeStatus(r.status)}; sent ${total} distinct events`,
      );
      if (r.status && r.status.events.received !== total) {
        notes.push(
          `NOTE: the sidecar received ${r.status.events.received} lines for ${total} sent (${r.status.events.received > total ? 'some twice: socket + spool' : 'SOME LOST'})`,
        );
      }
      return r.status;
    };

    let bare: RunStats;
    let ours: RunStats;
    try {
      if (state !== 'down') sc = await startSidecarChild(cfg, dataDir);
      const bareR = new Runner('bare readline plugin', bareCmd, cleanEnv(), N);
      const oursR = new Runner(`nostr-bt plugin (${state})`, oursCmd, cleanEnv({ NOSTR_BT_CONFIG: cfg }), N);
      await bareR.warmup(warm);
      await oursR.warmup(warm);
      if (state === 'stalled') {
        await sleep(200); // the warm-up's lines are acked
        sc!.signal('SIGSTOP');
        notes.push(`sidecar pid ${sc!.pid} stopped with SIGSTOP after the warm-up`);
      }
      await sleep(100);
      const deadline = performance.now() + maxStateMs;
      const per = Math.ceil(N / CHUNKS);
      for (let c = 0; c < CHUNKS; c++) {
        const from = c * per;
        const to = Math.min(N, from + per);
        const order = c % 2 === 0 ? [bareR, oursR] : [oursR, bareR];
        for (const r of order) await r.chunk(timed, from, to, deadline, sc && !sc.exited ? sc.pid : null);
      }
      if (state === 'stalled') {
        const u = dirUsage(spoolDir, true);
        spoolBytes = u.bytes;
        notes.push(
          `spool while the sidecar was stopped: ${u.files} files, ${fmt(u.bytes)} bytes, ${u.lines} lines written so far (${N} timed lines sent) [${u.names.join(', ')}]`,
        );
        sc!.signal('SIGCONT');
        await sleep(200);
      }
      bare = await bareR.finish();
      ours = await oursR.finish();
      if (state === 'down') {
        const u = dirUsage(spoolDir, true);
        spoolBytes = u.bytes;
        notes.push(
          `spool after the plugin exited: ${u.files} files, ${fmt(u.bytes)} bytes, ${u.lines} lines (${total} sent) [${u.names.join(', ')}]`,
        );
        // Nothing lost? Let a sidecar drain the spool and count.
        sc = await startSidecarChild(cfg, dataDir);
        await finalCheck('after starting a sidecar to drain the spool');
      } else {
        if (state === 'up') spoolBytes = dirUsage(spoolDir).bytes;
        await finalCheck(state === 'up' ? 'sidecar indexed' : 'after SIGCONT');
      }
      if (sc) {
        const st = await sc.terminate(10_000);
        if (!st.graceful || st.code !== 0)
          notes.push(`SIDECAR STOP: code=${st.code} signal=${st.signal} graceful=${st.graceful}; stderr: ${sc.tail()}`);
        else if (sc.tail().trim()) notes.push(`sidecar stderr (warn+): ${sc.tail().trim().split('\n').slice(-5).join(' | ')}`);
      }
    } finally {
      if (sc) await sc.terminate(10_000);
    }
    log(describeRun(bare));
    log(describeRun(ours));
    log(
      `  ${state}: ${fmt(ours.eventsPerSec / bare.eventsPerSec, 3)}x the bare plugin (goal >= ${RATIO_GOAL}x); p99 ${fmt(ours.p99Us, 1)} µs (goal <= ${P99_GOAL_US} µs)`,
    );
    log(`  plugin stderr: ${describeStderr(ours.stderr)}`);
    for (const n of notes) log(`  ${n}`);
    results.push({ state, bare, ours, notes, indexed, expected: total, spoolBytes, spooledLines });
    if (Date.now() - tStart > (args.quick ? 15_000 : 150_000)) {
      log('time budget exhausted; skipping remaining states');
      break;
    }
  }

  log('');
  log('summary (each state against the bare plugin run alongside it):');
  const figures: Figure[] = [];
  figures.push(figure('bare plugin: events/s (median over states)', median(results.map((r) => r.bare.eventsPerSec)), 'events/s'));
  figures.push(figure('bare plugin: p50 latency (median over states)', median(results.map((r) => r.bare.p50Us)), 'µs'));
  figures.push(figure('bare plugin: p99 latency (median over states)', median(results.map((r) => r.bare.p99Us)), 'µs'));
  for (const r of results) {
    const { state: s, ours: o, bare: b } = r;
    const ratio = o.eventsPerSec / b.eventsPerSec;
    log(
      `  sidecar ${s.padEnd(8)} ${fmt(o.eventsPerSec).padStart(7)} events/s = ${fmt(ratio, 3)}x bare (${fmt(b.eventsPerSec)}) ${ratio >= RATIO_GOAL ? 'meets' : 'MISSES'} >= ${RATIO_GOAL}x; ` +
        `p50 ${fmt(o.p50Us, 1)} µs (bare ${fmt(b.p50Us, 1)}), p99 ${fmt(o.p99Us, 1)} µs (bare ${fmt(b.p99Us, 1)}) ${o.p99Us <= P99_GOAL_US ? 'meets' : 'MISSES'} <= ${P99_GOAL_US} µs; max ${fmt(o.maxUs, 1)} µs` +
        (r.indexed !== null ? `; indexed ${r.indexed}/${r.expected}` : ''),
    );
    figures.push(figure(`sidecar ${s}: events/s`, o.eventsPerSec, 'events/s', b.eventsPerSec, `>= ${RATIO_GOAL}x bare plugin`));
    figures.push(figure(`sidecar ${s}: p50 latency`, o.p50Us, 'µs', b.p50Us, null));
    figures.push(figure(`sidecar ${s}: p99 latency`, o.p99Us, 'µs', b.p99Us, `<= ${P99_GOAL_US} µs`));
    figures.push(figure(`sidecar ${s}: max latency`, o.maxUs, 'µs', b.maxUs, null));
    if (o.pluginCpuUs !== null && b.pluginCpuUs !== null)
      figures.push(figure(`sidecar ${s}: plugin CPU per event`, o.pluginCpuUs, 'µs', b.pluginCpuUs, null));
    if (s === 'up' && o.sidecarCpuUs !== null)
      figures.push(figure('sidecar up: sidecar CPU per event (during our chunks)', o.sidecarCpuUs, 'µs', null, null));
    if (r.indexed !== null)
      figures.push(figure(`sidecar ${s}: events indexed in the end`, r.indexed, 'events', r.expected, `== ${r.expected}`));
    if (s === 'up' && r.spooledLines !== null)
      figures.push(figure('sidecar up: lines that went through the spool anyway', r.spooledLines, 'lines', r.expected, null));
    if (r.spoolBytes !== null && s !== 'up') figures.push(figure(`sidecar ${s}: spool bytes`, r.spoolBytes, 'bytes', null, null));
  }
  log(`total time ${fmt((Date.now() - tStart) / 1000, 1)} s`);
  printFigures('plugin', figures, { mode: args.quick ? 'quick' : 'full', n: N, warmup: WARMUP, chunks: CHUNKS });
}

runMain(main);
