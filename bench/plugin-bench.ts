// Plugin benchmark: events/s and p50/p99 answer latency of dist/plugin/main.js driven exactly as
// strfry drives a write-policy plugin (test/support/strfry-harness.ts: one line out, wait for the
// answer, next line), against a bare node:readline accept-all plugin measured in the same run.
// Three sidecar states: up (child process), down (no socket: lines go to the spool), stalled
// (sidecar child frozen with SIGSTOP after warm-up). Goal: >= 0.8x the bare plugin's events/s and
// p99 <= 1 ms in every state. Prints figures; never asserts timings.
//
//   node dist/bench/plugin-bench.js [--quick] [--n=COUNT]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StrfryHarness, PluginError } from '../test/support/strfry-harness.js';
import { unsignedEvent, pluginLine, contentOf, pubkeyN } from '../test/support/events.js';
import {
  PLUGIN_MAIN,
  cleanEnv,
  describeStatus,
  dirUsage,
  figure,
  fmt,
  log,
  makeTempDir,
  median,
  onCleanup,
  parseArgs,
  percentile,
  pollStatus,
  printFigures,
  prng,
  runMain,
  sleep,
  startSidecarChild,
  writeConfig,
  type Figure,
  type SidecarChild,
  type StatusDoc,
} from './common.js';

const WARMUP = 500;
const P99_GOAL_US = 1000;
const RATIO_GOAL = 0.8;
/** Pause between runs so disk writeback and exiting processes of the previous run settle. */
const SETTLE_MS = 300;

interface Line {
  line: string;
  id: string;
}

interface RunResult {
  label: string;
  count: number;
  wallMs: number;
  eventsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  errors: Record<string, number>;
  actions: Record<string, number>;
  restarts: number;
  warnings: number;
  stderr: string;
  timedOut: boolean;
  closedByItself: boolean;
}

/** Realistic strfry input lines: ~1 KB text notes from 1000 authors, with e/p tags. */
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

const BARE_PLUGIN = `import { createInterface } from 'node:readline';
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  const req = JSON.parse(line);
  process.stdout.write(JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n');
});
`;

interface RunHooks {
  afterWarmup?: () => Promise<void> | void;
  afterTimed?: () => Promise<void> | void;
}

async function runPlugin(label: string, command: string, env: NodeJS.ProcessEnv, warm: Line[], timed: Line[], maxMs: number, hooks: RunHooks = {}): Promise<RunResult> {
  const h = new StrfryHarness(command, { env, timeoutMs: 10_000 });
  let closed = false;
  const close = async () => {
    if (closed) return { exitedByItself: true };
    closed = true;
    return h.close(5000);
  };
  onCleanup(async () => void (await close()));
  const errors: Record<string, number> = {};
  const actions: Record<string, number> = {};
  const lat = new Float64Array(timed.length);
  let count = 0;
  let timedOut = false;
  let wallMs = 0;
  let closedByItself = false;
  try {
    const warmDeadline = performance.now() + 20_000;
    for (let i = 0; i < warm.length && performance.now() < warmDeadline; i++) {
      try {
        await h.send(warm[i]!.line, warm[i]!.id);
      } catch (err) {
        const k = err instanceof PluginError ? `warmup-${err.kind}` : 'warmup-other';
        errors[k] = (errors[k] ?? 0) + 1;
        if (errors[k]! > 10) throw new Error(`${label}: plugin keeps failing in warm-up (${k}); stderr:\n${h.stderr.slice(-2000)}`);
      }
    }
    await hooks.afterWarmup?.();
    const t0 = performance.now();
    const deadline = t0 + maxMs;
    for (let i = 0; i < timed.length; i++) {
      if (performance.now() > deadline) {
        timedOut = true;
        break;
      }
      try {
        const r = await h.send(timed[i]!.line, timed[i]!.id);
        lat[count++] = Number(r.latencyNs);
        actions[r.reply.action] = (actions[r.reply.action] ?? 0) + 1;
      } catch (err) {
        const k = err instanceof PluginError ? err.kind : 'other';
        errors[k] = (errors[k] ?? 0) + 1;
        if ((errors[k] ?? 0) > 50) throw new Error(`${label}: too many plugin errors (${k}); stderr:\n${h.stderr.slice(-2000)}`);
      }
    }
    wallMs = performance.now() - t0;
    await hooks.afterTimed?.();
  } finally {
    const c = await close();
    closedByItself = c.exitedByItself;
  }
  const sorted = lat.subarray(0, count).sort();
  return {
    label,
    count,
    wallMs,
    eventsPerSec: count / (wallMs / 1000),
    p50Us: percentile(sorted, 50) / 1000,
    p99Us: percentile(sorted, 99) / 1000,
    p999Us: percentile(sorted, 99.9) / 1000,
    maxUs: (sorted[sorted.length - 1] ?? NaN) / 1000,
    errors,
    actions,
    restarts: h.restarts,
    warnings: h.warningCount,
    stderr: h.stderr,
    timedOut,
    closedByItself,
  };
}

function describeRun(r: RunResult): string {
  let s =
    `${r.label.padEnd(22)} ${fmt(r.eventsPerSec).padStart(8)} events/s  ` +
    `p50 ${fmt(r.p50Us, 1).padStart(7)} µs  p99 ${fmt(r.p99Us, 1).padStart(7)} µs  ` +
    `p99.9 ${fmt(r.p999Us, 1).padStart(8)} µs  max ${fmt(r.maxUs, 1).padStart(9)} µs  ` +
    `(${r.count} lines in ${fmt(r.wallMs)} ms)`;
  if (r.timedOut) s += ' [time cap hit]';
  if (Object.keys(r.errors).length) s += ` errors=${JSON.stringify(r.errors)}`;
  const nonAccept = Object.entries(r.actions).filter(([a]) => a !== 'accept');
  if (nonAccept.length) s += ` actions=${JSON.stringify(r.actions)}`;
  if (r.restarts !== 1) s += ` restarts=${r.restarts}`;
  if (r.warnings) s += ` stdoutWarnings=${r.warnings}`;
  if (!r.closedByItself) s += ' [did not exit by itself on stdin EOF]';
  return s;
}

/** Summarizes the plugin's pino stderr: counts per level and distinct messages. */
function describeStderr(stderr: string): string {
  const levels: Record<string, number> = {};
  const msgs = new Map<string, number>();
  let other = 0;
  for (const l of stderr.split('\n')) {
    if (!l) continue;
    try {
      const o = JSON.parse(l) as { level?: number; msg?: string };
      const lv = String(o.level ?? '?');
      levels[lv] = (levels[lv] ?? 0) + 1;
      const key = `[${lv}] ${o.msg ?? ''}`;
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
  state: 'up' | 'down' | 'stalled';
  /** The bare plugin measured just before and just after this state (drift cancels out). */
  bareBefore: RunResult;
  bareAfter: RunResult;
  bare: { eventsPerSec: number; p50Us: number; p99Us: number; maxUs: number };
  ours: RunResult;
  notes: string[];
  /** Events the sidecar indexed in the end / events sent (warm-up + timed). */
  indexed: number | null;
  expected: number;
  spoolBytes: number | null;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const N = args.n ?? (args.quick ? 3000 : 30_000);
  const maxRunMs = args.quick ? 4000 : 45_000;
  const root = makeTempDir('nostr-bt-plugin-bench-');
  const tStart = Date.now();

  log(`plugin bench (${args.quick ? 'quick' : 'full'}): N=${N} timed lines + ${WARMUP} warm-up per run, sequential like strfry`);
  const tg = performance.now();
  const warm = makeLines(WARMUP, 1);
  const timed = makeLines(N, 2);
  const avgBytes = timed.reduce((a, l) => a + l.line.length, 0) / timed.length;
  log(`generated ${WARMUP + N} lines (avg ${fmt(avgBytes)} B) in ${fmt(performance.now() - tg)} ms`);

  const bareFile = join(root, 'bare.mjs');
  writeFileSync(bareFile, BARE_PLUGIN);
  const bareCmd = `'${process.execPath}' '${bareFile}'`;
  const oursCmd = `'${process.execPath}' '${PLUGIN_MAIN}'`;
  const total = WARMUP + N;

  const results: StateResult[] = [];
  const runBare = async () => {
    await sleep(SETTLE_MS);
    const r = await runPlugin(`bare readline plugin`, bareCmd, cleanEnv(), warm, timed, maxRunMs);
    log(describeRun(r));
    return r;
  };
  // Order: bare, up, bare, down, bare, stalled, bare; each state is compared with the mean of
  // the bare runs on either side of it.
  log('');
  let bareBefore = await runBare();
  for (const state of ['up', 'down', 'stalled'] as const) {
    log('');
    log(`--- sidecar ${state} ---`);
    await sleep(SETTLE_MS);

    const dir = makeTempDir(`nostr-bt-plugin-bench-${state}-`);
    const dataDir = join(dir, 'data');
    const cfg = writeConfig(dir, dataDir);
    const socketPath = join(dataDir, 'ingest.sock');
    const spoolDir = join(dataDir, 'spool');
    const env = cleanEnv({ NOSTR_BT_CONFIG: cfg });
    const notes: string[] = [];
    let indexed: number | null = null;
    let spoolBytes: number | null = null;
    let sc: SidecarChild | null = null;
    let ours: RunResult;

    const finalCheck = async (what: string): Promise<StatusDoc | null> => {
      if (!sc?.statusAddr) {
        notes.push(`${what}: no status address`);
        return null;
      }
      const done = (s: StatusDoc) => s.events.indexed >= total && s.events.received >= total && s.spool.files === 0 && (s.ingest?.backlog ?? 0) === 0;
      const r = await pollStatus(sc.statusAddr, done, 30_000);
      indexed = r.status?.events.indexed ?? null;
      notes.push(`${what} (${r.ok ? `after ${fmt(r.waitedMs)} ms` : 'NOT COMPLETE after 30 s'}): ${describeStatus(r.status)}; expected ${total} distinct events`);
      if (r.status && r.status.events.received !== total) {
        notes.push(`note: received (${r.status.events.received}) != lines sent (${total}): ${r.status.events.received - total} lines reached the sidecar twice (socket + spool) or were lost`);
      }
      return r.status;
    };

    try {
      if (state === 'up') {
        sc = await startSidecarChild(cfg, dataDir, socketPath);
        ours = await runPlugin(`nostr-bt plugin (up)`, oursCmd, env, warm, timed, maxRunMs);
        spoolBytes = dirUsage(spoolDir).bytes;
        await finalCheck('sidecar indexed');
      } else if (state === 'down') {
        ours = await runPlugin(`nostr-bt plugin (down)`, oursCmd, env, warm, timed, maxRunMs);
        const u = dirUsage(spoolDir, true);
        spoolBytes = u.bytes;
        notes.push(`spool after the plugin exited: ${u.files} files, ${fmt(u.bytes)} bytes, ${u.lines} lines (expected ${total}) [${u.names.join(', ')}]`);
        // Nothing lost: let a sidecar drain the spool and count.
        sc = await startSidecarChild(cfg, dataDir, socketPath);
        await finalCheck('after starting a sidecar to drain the spool');
      } else {
        sc = await startSidecarChild(cfg, dataDir, socketPath);
        const frozen = sc;
        ours = await runPlugin(`nostr-bt plugin (stalled)`, oursCmd, env, warm, timed, maxRunMs, {
          afterWarmup: async () => {
            await sleep(100); // let the warm-up's acks arrive
            frozen.stopSignal('SIGSTOP');
            await sleep(50);
          },
          afterTimed: async () => {
            const u = dirUsage(spoolDir, true);
            spoolBytes = u.bytes;
            notes.push(`spool while the sidecar was stopped: ${u.files} files, ${fmt(u.bytes)} bytes, ${u.lines} lines flushed so far (of ${N} timed lines)`);
            frozen.stopSignal('SIGCONT');
            await sleep(200);
          },
        });
        await finalCheck('after SIGCONT');
      }
      if (sc) {
        const st = await sc.stop();
        if (!st.graceful || st.code !== 0) notes.push(`sidecar stop: code=${st.code} signal=${st.signal} graceful=${st.graceful}; stderr: ${sc.stderrTail()}`);
        else if (sc.stderrTail().trim()) notes.push(`sidecar stderr (warn+): ${sc.stderrTail().trim().split('\n').slice(-5).join(' | ')}`);
      }
    } finally {
      if (sc) await sc.stop();
    }
    log(describeRun(ours));
    log(`  plugin stderr: ${describeStderr(ours.stderr)}`);
    for (const n of notes) log(`  ${n}`);
    const bareAfter = await runBare();
    const mean = (f: (r: RunResult) => number) => (f(bareBefore) + f(bareAfter)) / 2;
    const bare = { eventsPerSec: mean((r) => r.eventsPerSec), p50Us: mean((r) => r.p50Us), p99Us: mean((r) => r.p99Us), maxUs: mean((r) => r.maxUs) };
    log(`  ${state}: ${fmt(ours.eventsPerSec / bare.eventsPerSec, 3)}x the bare plugin (mean of the runs before/after: ${fmt(bare.eventsPerSec)} events/s; goal >= ${RATIO_GOAL}x); p99 ${fmt(ours.p99Us, 1)} µs (goal <= ${P99_GOAL_US} µs)`);
    results.push({ state, bareBefore, bareAfter, bare, ours, notes, indexed, expected: total, spoolBytes });
    bareBefore = bareAfter;
    if (!args.quick && Date.now() - tStart > 150_000) {
      log('time budget exhausted; skipping remaining states');
      break;
    }
  }

  // Summary
  log('');
  log('summary (ours vs the mean of the bare plugin runs just before and after it):');
  const figures: Figure[] = [];
  const bareRuns = [results[0]!.bareBefore, ...results.map((r) => r.bareAfter)];
  log(`  bare plugin runs: ${bareRuns.map((r) => fmt(r.eventsPerSec)).join(', ')} events/s`);
  figures.push(figure('bare plugin: events/s (median of runs)', median(bareRuns.map((r) => r.eventsPerSec)), 'events/s'));
  figures.push(figure('bare plugin: p50 latency (median of runs)', median(bareRuns.map((r) => r.p50Us)), 'µs'));
  figures.push(figure('bare plugin: p99 latency (median of runs)', median(bareRuns.map((r) => r.p99Us)), 'µs'));
  for (const r of results) {
    const s = r.state;
    const o = r.ours;
    const b = r.bare;
    const ratioOk = o.eventsPerSec / b.eventsPerSec >= RATIO_GOAL;
    const p99Ok = o.p99Us <= P99_GOAL_US;
    log(
      `  sidecar ${s.padEnd(8)} ${fmt(o.eventsPerSec).padStart(7)} events/s = ${fmt(o.eventsPerSec / b.eventsPerSec, 3)}x bare (${fmt(b.eventsPerSec)}) ${ratioOk ? 'meets' : 'MISSES'} >= ${RATIO_GOAL}x; ` +
        `p50 ${fmt(o.p50Us, 1)} µs, p99 ${fmt(o.p99Us, 1)} µs ${p99Ok ? 'meets' : 'MISSES'} <= ${P99_GOAL_US} µs; max ${fmt(o.maxUs, 1)} µs` +
        (r.indexed !== null ? `; indexed ${r.indexed}/${r.expected}` : ''),
    );
    figures.push(figure(`sidecar ${s}: events/s`, o.eventsPerSec, 'events/s', b.eventsPerSec, `>= ${RATIO_GOAL}x bare plugin`));
    figures.push(figure(`sidecar ${s}: p50 latency`, o.p50Us, 'µs', b.p50Us, null));
    figures.push(figure(`sidecar ${s}: p99 latency`, o.p99Us, 'µs', b.p99Us, `<= ${P99_GOAL_US} µs`));
    figures.push(figure(`sidecar ${s}: max latency`, o.maxUs, 'µs', b.maxUs, null));
    if (r.indexed !== null) figures.push(figure(`sidecar ${s}: events indexed in the end`, r.indexed, 'events', r.expected, `== ${r.expected}`));
    if (r.spoolBytes !== null && s !== 'up') figures.push(figure(`sidecar ${s}: spool bytes`, r.spoolBytes, 'bytes', null, null));
  }
  log(`total time ${fmt((Date.now() - tStart) / 1000, 1)} s`);
  printFigures('plugin', figures, { mode: args.quick ? 'quick' : 'full', n: N, warmup: WARMUP });
}

runMain(main);
