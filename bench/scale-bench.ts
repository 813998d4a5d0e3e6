// Scale benchmark: the sidecar's memory and active torrents after archiving 1,000,000 events
// (50,000 in --quick).
//
// The sidecar runs as a child process (dist/sidecar/main.js --config <toml>, loopback only: ports 0,
// DHT on 127.0.0.1 without bootstrap nodes) with small windows (5 s) and a tight active-torrent
// bound (20), so that cutting, size cuts, early merges and compaction all happen during the run.
// The benchmark streams N realistic events (300–1000 B content, 50,000 authors; kinds 1, 7 and a
// few replaceable 0/3) into its Unix socket like the plugin does (at most 20,000 lines unacked),
// then waits until /status shows every line received and every stored event in an active bundle.
// Throughout, it samples /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile) and /status.
//
// Stages, each timed: generate → ingest (send until the last ack) → bundling catch-up (until
// bundles.events == events.stored) → graceful stop. A stage that exceeds the time budget is
// reported with where it stood, rather than waited for.
// Goal: peak RSS ≤ 1 GB; active torrents within the bound. Prints figures; never asserts timings.
//
//   node dist/bench/scale-bench.js [--quick] [--n=EVENTS] [--toml='[bundle]\nmaxActiveTorrents = 50']
//   env SCALE_BENCH_BUDGET_S (ingest + bundling budget, default 600; quick 240),
//       SCALE_BENCH_REPLACEABLE=0 (no kind 0/3 events: no replacements, no rewrites),
//       SCALE_BENCH_CPU_PROF=DIR (the sidecar child writes a V8 CPU profile there on exit)
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { contentOf, pubkeyN } from '../test/testkit/events.js';
import {
  describeStatus,
  figure,
  fmt,
  getStatus,
  isAborted,
  log,
  makeTempDir,
  onCleanup,
  parseArgs,
  printFigures,
  prng,
  runMain,
  sleep,
  startSidecarChild,
  writeConfig,
  type Figure,
  type StatusDoc,
  waitForDrain,
} from './common.js';
import type { SidecarProcess } from '../test/testkit/sidecar-process.js';

const AUTHORS = 50_000;
const MAX_UNACKED = 20_000;
const LINES_PER_WRITE = 1000;
const RSS_GOAL_MB = 1024;
const DEFAULT_TOML = `
[bundle]
windowSeconds = 5
maxActiveTorrents = 20

[log]
level = "info"
`;

// ---------------------------------------------------------------------------------------------
// Workload: plugin lines packed into Buffers (outside the JS heap), with line offsets.

interface Chunk {
  buf: Buffer;
  /** offsets[i] = start of line i in buf; offsets[lines] = buf.length. */
  offsets: Uint32Array;
  lines: number;
}

interface Workload {
  chunks: Chunk[];
  n: number;
  bytes: number;
  kinds: Record<number, number>;
  authorsUsed: number;
}

const SIG = 'ab'.repeat(64); // placeholder: the plugin socket is trusted (strfry checked signatures)

function makeWorkload(n: number, seed: number, replaceable: boolean): Workload {
  const rnd = prng(seed);
  const pubkeys: string[] = Array.from({ length: AUTHORS }, (_, i) => pubkeyN(i));
  const used = new Uint8Array(AUTHORS);
  const kinds: Record<number, number> = {};
  const chunks: Chunk[] = [];
  const PER_CHUNK = 10_000;
  const now = Math.floor(Date.now() / 1000);
  const start = now - 30 * 86_400;
  let bytes = 0;
  for (let c = 0; c * PER_CHUNK < n; c++) {
    const count = Math.min(PER_CHUNK, n - c * PER_CHUNK);
    const parts: string[] = new Array(count);
    const offsets = new Uint32Array(count + 1);
    let off = 0;
    for (let j = 0; j < count; j++) {
      const i = c * PER_CHUNK + j;
      const r = rnd();
      const kind = !replaceable ? (r < 0.9 ? 1 : 7) : r < 0.88 ? 1 : r < 0.97 ? 7 : r < 0.99 ? 0 : 3;
      const a = Math.floor(rnd() * AUTHORS);
      used[a] = 1;
      const pubkey = pubkeys[a]!;
      const tags: string[][] = [];
      let content: string;
      if (kind === 7) {
        tags.push(['e', sha(`target-${i}`)], ['p', pubkeys[Math.floor(rnd() * AUTHORS)]!]);
        content = rnd() < 0.8 ? '+' : '🤙';
        // Reactions are small; pad the mix so the average content stays in 300–1000 B overall.
      } else if (kind === 3) {
        for (let k = 0; k < 20; k++) tags.push(['p', pubkeys[Math.floor(rnd() * AUTHORS)]!]);
        content = '';
      } else if (kind === 0) {
        content = JSON.stringify({
          name: `user${a}`,
          about: contentOf(300 + Math.floor(rnd() * 300), i),
          picture: `https://example.com/${a}.png`,
        });
      } else {
        if (rnd() < 0.4) tags.push(['e', sha(`root-${i}`), '', 'root']);
        if (rnd() < 0.4) tags.push(['p', pubkeys[Math.floor(rnd() * AUTHORS)]!]);
        content = contentOf(300 + Math.floor(rnd() * 700), seed * 10_000_000 + i);
      }
      const created_at = start + Math.floor((i * 30 * 86_400) / n) + Math.floor(rnd() * 60);
      const id = createHash('sha256')
        .update(JSON.stringify([0, pubkey, created_at, kind, tags, content]))
        .digest('hex');
      // strfry's plugin line: keys sorted at every level, minified.
      const line =
        `{"event":{"content":${JSON.stringify(content)},"created_at":${created_at},"id":"${id}","kind":${kind},"pubkey":"${pubkey}","sig":"${SIG}","tags":${JSON.stringify(tags)}},` +
        `"receivedAt":${now},"sourceInfo":"127.0.0.1","sourceType":"IP4","type":"new"}\n`;
      parts[j] = line;
      offsets[j] = off;
      off += Buffer.byteLength(line);
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    }
    offsets[count] = off;
    const buf = Buffer.from(parts.join(''));
    if (buf.length !== off) throw new Error('offset bookkeeping');
    bytes += off;
    chunks.push({ buf, offsets, lines: count });
  }
  let authorsUsed = 0;
  for (const u of used) authorsUsed += u;
  return { chunks, n, bytes, kinds, authorsUsed };
}

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// The bundler's operations, from its log lines (info level).

const BUNDLER_MSGS = [
  'window bundle seeded',
  'bundles merged',
  'bundle rewritten',
  'active torrents over the bound: merging early',
  'bundler operation failed',
];

interface BundlerOp {
  at: number;
  msg: string;
  events: number | null;
  authors: number | null;
  bytes: number | null;
  err: string | null;
}

function describeOps(ops: BundlerOp[], t0: number, n: number): string[] {
  const out: string[] = [];
  const by = new Map<string, { count: number; events: number }>();
  for (const o of ops) {
    const key =
      o.msg === 'bundler operation failed' ? `${o.msg} (${(o.err ?? '?').replace(/[0-9a-f]{64}/g, '<pubkey>').slice(0, 60)})` : o.msg;
    const b = by.get(key) ?? { count: 0, events: 0 };
    b.count++;
    b.events += o.events ?? 0;
    by.set(key, b);
  }
  const written = ops
    .filter((o) => o.msg === 'window bundle seeded' || o.msg === 'bundles merged' || o.msg === 'bundle rewritten')
    .reduce((a, o) => a + (o.events ?? 0), 0);
  out.push(
    `bundler operations (from its info log): ${[...by].map(([k, v]) => `${v.count}× ${k}${v.events ? ` (${v.events} events)` : ''}`).join('; ')}`,
  );
  out.push(`events written into bundle files in total: ${written} (${fmt(written / n, 2)}× the ${n} events sent)`);
  // Serial operations: the time since the previous line approximates each one's duration when busy.
  const rows = ops.map((o, i) => ({ o, gap: i === 0 ? NaN : o.at - ops[i - 1]!.at }));
  const slow = rows
    .filter((r) => Number.isFinite(r.gap))
    .sort((a, b) => b.gap - a.gap)
    .slice(0, 8);
  if (slow.length) {
    out.push('longest intervals between consecutive bundler log lines (≈ duration of the later operation when the bundler is busy):');
    for (const r of slow) {
      out.push(
        `  t=${fmt((r.o.at - t0) / 1000, 1)} s: ${fmt(r.gap / 1000, 1)} s before "${r.o.msg}"` +
          (r.o.events !== null ? ` ${r.o.events} events` : '') +
          (r.o.authors !== null ? `, ${r.o.authors} files` : '') +
          (r.o.bytes !== null ? `, ${fmt(r.o.bytes / 1e6, 1)} MB` : '') +
          (r.o.err ? ` (${r.o.err.slice(0, 100)})` : ''),
      );
    }
  }
  return out;
}

const CPU_PROF_PRELOAD = `
const inspector = require('node:inspector');
const fs = require('node:fs');
const session = new inspector.Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 1000 });
session.post('Profiler.start');
process.on('exit', () => {
  session.post('Profiler.stop', (err, res) => {
    if (!err) fs.writeFileSync(require('node:path').join(__DIR__, 'sidecar-' + process.pid + '.cpuprofile'), JSON.stringify(res.profile));
  });
});
`;

// ---------------------------------------------------------------------------------------------
// Process memory

interface Mem {
  rss: number;
  hwm: number;
  anon: number;
  file: number;
  shmem: number;
  threads: number;
}

function readMem(pid: number): Mem | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => {
      const m = new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : 0;
    };
    const th = /^Threads:\s+(\d+)/m.exec(text);
    return {
      rss: kb('VmRSS'),
      hwm: kb('VmHWM'),
      anon: kb('RssAnon'),
      file: kb('RssFile'),
      shmem: kb('RssShmem'),
      threads: th ? Number(th[1]) : 0,
    };
  } catch {
    return null;
  }
}

const MB = (b: number) => b / 1024 / 1024;

function duBytes(path: string): number {
  try {
    return Number(
      execFileSync('du', ['-sb', path], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'ignore'] }).split('\t')[0],
    );
  } catch {
    return NaN;
  }
}

function countEntries(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Monitor: /proc and /status samples in the background.

interface Sample {
  t: number;
  acked: number;
  status: StatusDoc | null;
  statusMs: number;
  mem: Mem | null;
}

interface ExtStatus extends StatusDoc {
  bundles?: StatusDoc['bundles'] & { pendingRewrites?: number; pendingEvents?: number; newest?: string | null };
  seeding?: { torrents: number; peers: number };
  memory?: { heapUsed: number; heapTotal: number; external: number };
}

class Monitor {
  samples: Sample[] = [];
  peak = { rss: 0, anon: 0, file: 0, active: 0, torrents: 0 };
  maxStatusMs = 0;
  statusFailures = 0;
  last: ExtStatus | null = null;
  lastAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly sc: SidecarProcess,
    private readonly acked: () => number,
    private readonly t0: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async tick(): Promise<Sample> {
    const mem = readMem(this.sc.pid);
    if (mem) {
      this.peak.rss = Math.max(this.peak.rss, mem.rss, mem.hwm);
      this.peak.anon = Math.max(this.peak.anon, mem.anon);
      this.peak.file = Math.max(this.peak.file, mem.file);
    }
    let status: ExtStatus | null = null;
    let statusMs = NaN;
    if (!this.busy && this.sc.statusAddr) {
      this.busy = true;
      const t = performance.now();
      try {
        status = (await getStatus(this.sc.statusAddr, 30_000)) as ExtStatus;
        statusMs = performance.now() - t;
        this.maxStatusMs = Math.max(this.maxStatusMs, statusMs);
        this.last = status;
        this.lastAt = Date.now();
        this.peak.active = Math.max(this.peak.active, status.bundles?.active ?? 0);
        this.peak.torrents = Math.max(this.peak.torrents, status.seeding?.torrents ?? 0);
      } catch {
        this.statusFailures++;
        statusMs = performance.now() - t;
        this.maxStatusMs = Math.max(this.maxStatusMs, statusMs);
      } finally {
        this.busy = false;
      }
    }
    const s: Sample = { t: (Date.now() - this.t0) / 1000, acked: this.acked(), status, statusMs, mem };
    this.samples.push(s);
    return s;
  }
}

function describeSample(s: Sample, bound: number): string {
  const st = s.status as ExtStatus | null;
  const m = s.mem;
  const parts = [`t=${fmt(s.t, 0).padStart(4)} s`, `acked ${String(s.acked).padStart(8)}`];
  if (st) {
    parts.push(
      `stored ${st.events.stored}`,
      `bundled ${st.bundles?.events ?? '?'}`,
      `active ${st.bundles?.active ?? '?'}/${bound} ${JSON.stringify(st.bundles?.byLevel ?? {})}`,
    );
    if (st.bundles?.pendingRewrites) parts.push(`pendingRewrites ${st.bundles.pendingRewrites}`);
    if (st.ingest?.backlog) parts.push(`backlog ${st.ingest.backlog}`);
    if (st.memory) parts.push(`heap ${fmt(st.memory.heapUsed)}/${fmt(st.memory.heapTotal)} MB, external ${fmt(st.memory.external)} MB`);
  } else parts.push('status: no answer yet (previous request pending)');
  parts.push(`/status ${fmt(s.statusMs)} ms`);
  if (m)
    parts.push(
      `RSS ${fmt(MB(m.rss))} MB (anon ${fmt(MB(m.anon))}, file ${fmt(MB(m.file))}) HWM ${fmt(MB(m.hwm))} MB, ${m.threads} threads`,
    );
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------

function mergedToml(extra: string): string {
  const a = parseToml(DEFAULT_TOML) as Record<string, unknown>;
  const b = extra.trim() ? (parseToml(extra) as Record<string, unknown>) : {};
  const merge = (x: Record<string, unknown>, y: Record<string, unknown>): Record<string, unknown> => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) {
      const p = out[k];
      out[k] =
        v && typeof v === 'object' && !Array.isArray(v) && p && typeof p === 'object' && !Array.isArray(p)
          ? merge(p as Record<string, unknown>, v as Record<string, unknown>)
          : v;
    }
    return out;
  };
  return stringifyToml(merge(a, b));
}

async function main(): Promise<void> {
  const args = parseArgs();
  const N = args.n ?? (args.quick ? 30_000 : 1_000_000);
  const budgetS = Number(process.env.SCALE_BENCH_BUDGET_S ?? (args.quick ? 240 : 600));
  const replaceable = process.env.SCALE_BENCH_REPLACEABLE !== '0';
  const tStart = Date.now();
  log(
    `scale bench (${args.quick ? 'quick' : 'full'}): N=${N} events from ${AUTHORS} authors into a sidecar child process; budget ${budgetS} s for ingest + bundling`,
  );

  // Stage 1: generate.
  const tg = performance.now();
  const w = makeWorkload(N, 11, replaceable);
  const genS = (performance.now() - tg) / 1000;
  log(
    `generated ${N} plugin lines (${fmt(w.bytes / 1e6, 1)} MB, avg ${fmt(w.bytes / N)} B/line; kinds ${JSON.stringify(w.kinds)}; ${w.authorsUsed} distinct authors) in ${fmt(genS, 1)} s`,
  );

  const dir = makeTempDir('nostr-bt-scale-bench-');
  const dataDir = join(dir, 'data');
  const toml = mergedToml(args.extraToml);
  const cfgPath = writeConfig(dir, dataDir, toml);
  const cfg = parseToml(readFileSync(cfgPath, 'utf8')) as {
    bundle?: { maxActiveTorrents?: number; windowSeconds?: number; windowMaxBytes?: number };
  };
  const bound = cfg.bundle?.maxActiveTorrents ?? 1000;
  log(`config: ${toml.replace(/\n+/g, ' ').trim()} (plus loopback ports/DHT); data in ${dataDir}`);
  const socketPath = join(dataDir, 'ingest.sock');
  // SCALE_BENCH_CPU_PROF=DIR: the sidecar child writes a V8 CPU profile into DIR when it exits.
  const profDir = process.env.SCALE_BENCH_CPU_PROF;
  const savedNodeOptions = process.env.NODE_OPTIONS;
  if (profDir) {
    // --cpu-prof is not allowed in NODE_OPTIONS; a preloaded script runs the inspector's profiler.
    const preload = join(dir, 'cpu-prof-preload.cjs');
    writeFileSync(preload, CPU_PROF_PRELOAD.replace('__DIR__', JSON.stringify(profDir)));
    process.env.NODE_OPTIONS = `${savedNodeOptions ?? ''} --require=${preload}`.trim();
  }
  const sc = await startSidecarChild(cfgPath, dataDir, 30_000);
  if (profDir) {
    if (savedNodeOptions === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = savedNodeOptions;
    log(`sidecar child is CPU-profiled (inspector, 1 ms sampling; profile in ${profDir} after it exits)`);
  }
  log(`sidecar pid ${sc.pid}, status ${sc.statusAddr}; RSS at start ${fmt(MB(readMem(sc.pid)?.rss ?? NaN))} MB`);
  // The bundler's log lines, as a timeline of its operations (it runs them one at a time).
  const ops: BundlerOp[] = [];
  const noteBundlerLine = (l: string) => {
    if (!l.includes('bundle') || ops.length > 20_000) return;
    try {
      const j = JSON.parse(l) as {
        time?: string;
        msg?: string;
        events?: number;
        authors?: number;
        bytes?: number;
        err?: { message?: string };
      };
      if (!j.msg || !BUNDLER_MSGS.includes(j.msg)) return;
      ops.push({
        at: Date.parse(j.time ?? '') || Date.now(),
        msg: j.msg,
        events: j.events ?? null,
        authors: j.authors ?? null,
        bytes: j.bytes ?? null,
        err: j.err?.message ?? null,
      });
    } catch {
      /* not JSON */
    }
  };
  // Every line of the sidecar's log (common.ts keeps only the last 4 KB).
  const logLines: string[] = [];
  let logPartial = '';
  let logDropped = 0;
  sc.proc!.stderr!.on('data', (d: string) => {
    const parts = (logPartial + d).split('\n');
    logPartial = parts.pop() ?? '';
    for (const l of parts) {
      if (!l.trim()) continue;
      noteBundlerLine(l);
      if (logLines.length < 5000) logLines.push(l.length > 4000 ? l.slice(0, 4000) : l);
      else logDropped++;
    }
  });

  // Stage 2: ingest over the socket.
  const sock: Socket = createConnection(socketPath);
  onCleanup(async () => void sock.destroy());
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  let acked = 0;
  let ackBuf = '';
  let lastAckAt = performance.now();
  let longestAckGapMs = 0;
  let longestGapAt = 0;
  const ackGaps: { at: number; ms: number }[] = [];
  let wake: (() => void) | null = null;
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    ackBuf += d;
    let nl: number;
    while ((nl = ackBuf.indexOf('\n')) >= 0) {
      const v = Number(ackBuf.slice(0, nl));
      ackBuf = ackBuf.slice(nl + 1);
      if (Number.isSafeInteger(v) && v > acked) acked = v;
    }
    const now = performance.now();
    if (now - lastAckAt > 2000 && ackGaps.length < 200) ackGaps.push({ at: Date.now(), ms: now - lastAckAt });
    if (now - lastAckAt > longestAckGapMs) {
      longestAckGapMs = now - lastAckAt;
      longestGapAt = acked;
    }
    lastAckAt = now;
    wake?.();
  });
  let sockError: Error | null = null;
  sock.on('error', (err) => (sockError = err));
  sock.on('close', () => wake?.());
  const waitWake = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = null;
        resolve();
      }
      wake = done;
    });

  const t0 = Date.now();
  const mon = new Monitor(sc, () => acked, t0);
  mon.start();
  const printer = setInterval(() => {
    const s = mon.samples[mon.samples.length - 1];
    if (s) log('  ' + describeSample(s, bound));
  }, 10_000);
  onCleanup(async () => {
    clearInterval(printer);
    mon.stop();
  });

  const deadline = t0 + budgetS * 1000;
  let sent = 0;
  let stalledOn: string | null = null;
  let ci = 0;
  let li = 0; // line index within chunk ci
  lastAckAt = performance.now();
  while (sent < N) {
    if (isAborted()) throw new Error('interrupted');
    if (sockError || sock.destroyed) throw new Error(`socket failed: ${sockError ?? 'closed'}; sidecar stderr: ${sc.tail()}`);
    if (sc.exited) throw new Error(`sidecar exited: ${sc.tail()}`);
    if (Date.now() > deadline) {
      stalledOn = 'ingest';
      break;
    }
    const room = acked + MAX_UNACKED - sent;
    if (room <= 0) {
      await waitWake(1000);
      continue;
    }
    const chunk = w.chunks[ci]!;
    const k = Math.min(room, LINES_PER_WRITE, chunk.lines - li);
    const ok = sock.write(chunk.buf.subarray(chunk.offsets[li]!, chunk.offsets[li + k]!));
    sent += k;
    li += k;
    if (li === chunk.lines) {
      ci++;
      li = 0;
    }
    if (!ok) {
      await waitForDrain(sock, 5000);
    }
  }
  // Last acks.
  for (let i = 0; i < 100_000 && acked < sent && Date.now() < deadline && !sock.destroyed && !sc.exited; i++) await waitWake(500);
  const ingestS = (Date.now() - t0) / 1000;
  const ingestRate = acked / ingestS;
  if (acked < sent && !stalledOn) stalledOn = 'ingest (acks)';
  const atIngestEnd = await mon.tick();
  log(
    `ingest: sent ${sent}, acked ${acked} in ${fmt(ingestS, 1)} s = ${fmt(ingestRate)} events/s; longest gap between acks ${fmt(longestAckGapMs)} ms (at ${longestGapAt} acked)`,
  );
  if (ackGaps.length) {
    const total = ackGaps.reduce((a, g) => a + g.ms, 0);
    log(
      `  ${ackGaps.length} gaps of more than 2 s without an ack, ${fmt(total / 1000, 1)} s in all (${fmt((100 * total) / (ingestS * 1000))}% of the ingest stage)`,
    );
  }
  log('  ' + describeSample(atIngestEnd, bound));
  sock.end();

  // Stage 3: bundling catch-up: everything stored is in an active bundle (no event waits for a
  // cut, no bundle for a rewrite). Superseded versions of replaceable events stay in their
  // bundles until the next merge, so bundles may hold more events than the index.
  const tb = Date.now();
  let bundled = false;
  let lastProgress = { events: -1, at: Date.now() };
  /** First time no event waits for a cut: level-0 cuts caught up (removed events may still be in bundles). */
  let firstCoveredS: number | null = null;
  for (let i = 0; i < 100_000 && !stalledOn; i++) {
    if (isAborted()) throw new Error('interrupted');
    if (sc.exited) throw new Error(`sidecar exited: ${sc.tail()}`);
    const st = mon.last;
    const cutsDone =
      !!st && mon.lastAt > tb && st.events.received >= acked && (st.ingest?.backlog ?? 0) === 0 && st.bundles?.pendingEvents === 0;
    if (firstCoveredS === null && cutsDone) firstCoveredS = (Date.now() - tb) / 1000;
    if (cutsDone && st!.bundles?.pendingRewrites === 0) {
      bundled = true;
      break;
    }
    if (st && (st.bundles?.events ?? 0) !== lastProgress.events) lastProgress = { events: st.bundles?.events ?? 0, at: Date.now() };
    if (Date.now() > deadline) {
      stalledOn = 'bundling';
      break;
    }
    await sleep(500);
  }
  const bundleS = (Date.now() - tb) / 1000;
  const final = await mon.tick();
  clearInterval(printer);
  mon.stop();
  const fst = final.status as ExtStatus | null;
  log(
    `level-0 cuts caught up (no event waiting for a cut) ${firstCoveredS === null ? 'NEVER' : `${fmt(firstCoveredS, 1)} s after the last ack`}`,
  );
  log(
    bundled
      ? `bundling caught up (every event in a bundle, removed events rewritten out) ${fmt(bundleS, 1)} s after the last ack`
      : `bundling NOT caught up after ${fmt(bundleS, 1)} s (stopped on: ${stalledOn}); bundles.events last changed ${fmt((Date.now() - lastProgress.at) / 1000, 1)} s ago`,
  );
  log('  ' + describeSample(final, bound));
  log(`  ${describeStatus(fst)}`);
  if (fst) log(`  bundles: ${JSON.stringify(fst.bundles)}; seeding: ${JSON.stringify(fst.seeding)}`);

  const memEnd = readMem(sc.pid);

  // Stage 4: graceful stop.
  // main.ts gives up on a graceful stop after 15 s (if its event loop gets a turn); a profile is
  // only written on exit, so wait longer then.
  const stop = await sc.terminate(profDir ? 180_000 : 25_000);
  if (logPartial.trim()) logLines.push(logPartial);
  log(
    `sidecar stop: ${stop.graceful ? 'exited by itself' : 'SIGKILLed'} ${fmt(stop.ms)} ms after SIGTERM, code ${stop.code}${stop.signal ? `, signal ${stop.signal}` : ''}`,
  );
  const indexBytes = duBytes(join(dataDir, 'index'));
  const bundleBytes = duBytes(join(dataDir, 'bundles'));
  const bundleEntries = countEntries(join(dataDir, 'bundles'));
  let lmdbFile = NaN;
  try {
    lmdbFile = statSync(join(dataDir, 'index', 'data.mdb')).size;
  } catch {
    /* other layout */
  }
  log(
    `disk after the stop: index ${fmt(indexBytes / 1e6)} MB (data.mdb ${fmt(lmdbFile / 1e6)} MB), bundles ${fmt(bundleBytes / 1e6)} MB in ${bundleEntries} entries`,
  );
  const activeIh = new Set<string>();
  const bundlesDir = join(dataDir, 'bundles');
  let stray: string[] = [];
  try {
    stray = readdirSync(bundlesDir).filter((name) => {
      const ih = name.replace(/\.(torrent|data)$/, '');
      if (/^[0-9a-f]{40}$/.test(ih) && ih !== name) {
        activeIh.add(ih);
        return false;
      }
      return true;
    });
  } catch {
    /* none */
  }
  if (fst?.bundles && activeIh.size !== fst.bundles.active)
    log(`  NOTE: ${activeIh.size} bundle infohashes on disk for ${fst.bundles.active} active bundles`);
  if (stray.length) log(`  NOTE: other entries in the bundle dir: ${stray.slice(0, 10).join(', ')}${stray.length > 10 ? ', ...' : ''}`);

  const stderrLines = logLines;
  if (logDropped) log(`  (${logDropped} more log lines not kept)`);
  const msgs = new Map<string, number>();
  for (const l of stderrLines) {
    try {
      const j = JSON.parse(l) as { msg?: string; level?: number };
      const key = `${j.level ?? '?'}: ${j.msg ?? l.slice(0, 80)}`;
      msgs.set(key, (msgs.get(key) ?? 0) + 1);
    } catch {
      msgs.set(l.slice(0, 120), (msgs.get(l.slice(0, 120)) ?? 0) + 1);
    }
  }
  if (msgs.size) log(`sidecar stderr (warn+): ${[...msgs].map(([m, n]) => `${n}× ${m}`).join(' | ')}`);
  for (const l of stderrLines.filter((x) => /"level":(50|60)/.test(x)).slice(0, 3)) log(`  sidecar error: ${l.slice(0, 1500)}`);
  for (const l of describeOps(ops, t0, N)) log(l);
  if (ackGaps.length) {
    log('longest gaps without an ack (the sidecar event loop was busy), with the bundler line logged next:');
    for (const g of [...ackGaps].sort((a, b) => b.ms - a.ms).slice(0, 6)) {
      const start = g.at - g.ms;
      const next = ops.find((o) => o.at >= start);
      log(
        `  ${fmt(g.ms / 1000, 1)} s from t=${fmt((start - t0) / 1000, 1)} s` +
          (next
            ? `; next bundler line at t=${fmt((next.at - t0) / 1000, 1)} s: "${next.msg}"${next.events !== null ? ` (${next.events} events${next.authors !== null ? `, ${next.authors} files` : ''})` : ''}`
            : ''),
      );
    }
  }

  // Accounting.
  const problems: string[] = [];
  if (fst) {
    const e = fst.events;
    const superseded = fst.skippedByPolicy['superseded'] ?? 0;
    const invalid = Object.values(fst.invalid).reduce((a, b) => a + b, 0);
    const replaced = fst.removed['replaced'] ?? 0;
    if (e.received !== acked) problems.push(`received ${e.received} != acked ${acked}`);
    if (e.indexed + e.duplicates + superseded + invalid !== e.received)
      problems.push(`indexed+duplicates+superseded+invalid = ${e.indexed + e.duplicates + superseded + invalid} != received ${e.received}`);
    if (e.stored !== e.indexed - replaced - (fst.removed['deleted'] ?? 0) - (fst.removed['expired'] ?? 0) - (fst.removed['vanished'] ?? 0))
      problems.push(`stored ${e.stored} != indexed ${e.indexed} − removed ${JSON.stringify(fst.removed)}`);
    if (invalid) problems.push(`invalid lines: ${JSON.stringify(fst.invalid)}`);
  } else problems.push('no final status');
  if (acked < N) problems.push(`only ${acked} of ${N} lines acked within the budget`);
  if (fst && (fst.bundles?.active ?? 0) > bound) problems.push(`active torrents ${fst.bundles?.active} > bound ${bound} at the end`);
  if (mon.peak.active > bound) problems.push(`active torrents peaked at ${mon.peak.active} > bound ${bound} (sampled every second)`);
  for (const p of problems) log(`PROBLEM: ${p}`);

  const peakRss = Math.max(mon.peak.rss, memEnd?.hwm ?? 0);
  log('');
  log('summary:');
  log(`  ingest ${fmt(ingestRate)} events/s over the socket (${acked}/${N} acked in ${fmt(ingestS, 1)} s)`);
  log(
    `  peak RSS (VmHWM) ${fmt(MB(peakRss))} MB (goal ≤ ${RSS_GOAL_MB} MB) — ${MB(peakRss) <= RSS_GOAL_MB ? 'meets' : 'MISSES'}; ` +
      `peak anonymous ${fmt(MB(mon.peak.anon))} MB, peak file-backed (LMDB map, mapped files) ${fmt(MB(mon.peak.file))} MB; RSS at the end ${fmt(MB(memEnd?.rss ?? NaN))} MB`,
  );
  log(
    `  active torrents: ${fst?.bundles?.active ?? '?'} at the end, peak ${mon.peak.active} (bound ${bound}); seeding ${fst?.seeding?.torrents ?? '?'} torrents`,
  );
  log(
    `  bundling: cuts caught up ${firstCoveredS === null ? 'never' : `${fmt(firstCoveredS, 1)} s`} after the last ack; ${bundled ? `with rewrites done ${fmt(bundleS, 1)} s after it` : `NOT caught up (${stalledOn})`}; /status slowest answer ${fmt(mon.maxStatusMs)} ms, ${mon.statusFailures} failed`,
  );
  log(`  total time ${fmt((Date.now() - tStart) / 1000, 1)} s`);

  const figures: Figure[] = [
    figure('ingest over the socket', ingestRate, 'events/s', null, null),
    figure('peak RSS (VmHWM)', MB(peakRss), 'MB', null, `<= ${RSS_GOAL_MB} MB`),
    figure('peak anonymous RSS', MB(mon.peak.anon), 'MB', null, null),
    figure('peak file-backed RSS', MB(mon.peak.file), 'MB', null, null),
    figure('RSS at the end', MB(memEnd?.rss ?? NaN), 'MB', null, null),
    figure('active torrents at the end', fst?.bundles?.active ?? NaN, 'torrents', bound, `<= ${bound} (maxActiveTorrents)`),
    figure('active torrents, peak (1 s samples)', mon.peak.active, 'torrents', bound, `<= ${bound} (maxActiveTorrents)`),
    figure('events received', fst?.events.received ?? NaN, 'events', N, `== ${N}`),
    figure(
      'events in active bundles (incl. superseded versions kept until the next merge)',
      fst?.bundles?.events ?? NaN,
      'events',
      fst?.events.stored ?? null,
      '>= stored',
    ),
    figure('ingest stage', ingestS, 's', null, null),
    figure('level-0 cuts caught up after the last ack', firstCoveredS ?? NaN, 's', null, null),
    figure(bundled ? 'bundling incl. rewrites caught up after the last ack' : 'bundling catch-up (NOT finished)', bundleS, 's', null, null),
    figure('longest gap between acks', longestAckGapMs, 'ms', null, null),
    figure('slowest /status answer', mon.maxStatusMs, 'ms', null, null),
    figure('index size on disk', indexBytes / 1e6, 'MB', null, null),
    figure('bundles size on disk', bundleBytes / 1e6, 'MB', null, null),
    figure('graceful stop', stop.ms, 'ms', null, null),
  ];
  printFigures('scale', figures, {
    mode: args.quick ? 'quick' : 'full',
    n: N,
    authors: AUTHORS,
    replaceable,
    bound,
    windowSeconds: cfg.bundle?.windowSeconds,
    stalledOn,
    problems,
  });
}

runMain(main);
