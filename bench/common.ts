// Shared helpers for the benchmarks: args, temp dirs and child processes that are always cleaned
// up (also on error and on SIGINT/SIGTERM), the sidecar child process, /status polling, percentiles
// and the final JSON figures line. Benchmarks print figures; they never assert timings.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { deepMerge } from '../sidecar/common/config.js';
import { LOOPBACK_DEFAULTS, SidecarProcess, shebangOf } from '../test/testkit/sidecar-process.js';
export { prng } from '../test/testkit/events.js';

/** dist/ (this file is dist/bench/common.js once built). */
export const DIST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const PLUGIN_MAIN = join(DIST_DIR, 'plugin', 'main.js');
export const SIDECAR_MAIN = join(DIST_DIR, 'sidecar', 'main.js');

// ---------------------------------------------------------------------------------------------
// Arguments

export interface BenchArgs {
  quick: boolean;
  /** --n=COUNT overrides the event count. */
  n: number | null;
  /** --only=a,b: run only these parts (plugin bench: up, down, stalled; ingest bench: inproc, socket). */
  only: string[] | null;
  /** --toml=TEXT: extra TOML appended to every generated config (to compare settings). */
  extraToml: string;
}

export function parseArgs(argv: string[] = process.argv.slice(2)): BenchArgs {
  const out: BenchArgs = { quick: false, n: null, only: null, extraToml: '' };
  for (const a of argv) {
    if (a === '--quick') out.quick = true;
    else if (a.startsWith('--n=')) {
      const n = Number(a.slice(4));
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`bad ${a}`);
      out.n = n;
    } else if (a.startsWith('--only=')) {
      out.only = a.slice(7).split(',').filter(Boolean);
    } else if (a.startsWith('--toml=')) {
      out.extraToml += a.slice(7).replace(/\\n/g, '\n') + '\n';
    } else if (a === '--help' || a === '-h') {
      process.stdout.write("usage: node <bench>.js [--quick] [--n=COUNT] [--only=PART,...] [--toml='[section]\\nkey = value']\n");
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cleanup: temp dirs and child processes, on success, error, signals and exit.

const tempDirs = new Set<string>();
const sidecars = new Set<SidecarProcess>();
const asyncCleanups: (() => Promise<void>)[] = [];
let hooksInstalled = false;
let aborted = false;

/** True once SIGINT/SIGTERM arrived: loops should stop (cleanup is already running). */
export function isAborted(): boolean {
  return aborted;
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', () => {
    // Last resort, synchronous.
    for (const sc of sidecars) if (sc.proc) killHard(sc.proc);
    for (const d of tempDirs) rmSafe(d);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      aborted = true;
      process.stderr.write(`\n${sig}: cleaning up\n`);
      const t = setTimeout(() => process.exit(130), 10_000);
      t.unref();
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}

function killHard(c: ChildProcess): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(c.pid, 'SIGCONT');
  } catch {
    /* gone */
  }
  try {
    process.kill(c.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** BENCH_KEEP_TMP=1 keeps the benchmarks' temporary directories (to inspect an index or bundles afterwards). */
function rmSafe(d: string): void {
  if (process.env.BENCH_KEEP_TMP) {
    process.stderr.write(`kept ${d}\n`);
    return;
  }
  try {
    rmSync(d, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
}

export function makeTempDir(prefix: string): string {
  installHooks();
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Registers an async cleanup (run in reverse order by cleanupAll). */
export function onCleanup(fn: () => Promise<void>): void {
  installHooks();
  asyncCleanups.push(fn);
}

/** `stop` made idempotent and registered as a cleanup: call it when done; runs once either way. */
export function stopOnce(stop: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  const once = () => (running ??= stop());
  onCleanup(once);
  return once;
}

export async function cleanupAll(): Promise<void> {
  while (asyncCleanups.length > 0) {
    const fn = asyncCleanups.pop()!;
    try {
      await withTimeout(fn(), 15_000, undefined);
    } catch (err) {
      process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
    }
  }
  for (const sc of sidecars) if (sc.proc) killHard(sc.proc);
  sidecars.clear();
  for (const d of tempDirs) rmSafe(d);
  tempDirs.clear();
}

/** Runs `main`, then cleans up; prints errors; sets the exit code. */
export function runMain(main: () => Promise<void>): void {
  installHooks();
  main()
    .then(
      () => cleanupAll(),
      async (err) => {
        if (aborted) return; // interrupted: the signal handler cleans up and exits
        process.stderr.write(`benchmark failed: ${(err as Error)?.stack ?? String(err)}\n`);
        await cleanupAll();
        process.exitCode = 1;
      },
    )
    .finally(() => {
      // Nothing we started should keep the process alive; exit promptly in any case.
      setTimeout(() => process.exit(), 200).unref();
    });
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => resolve(fallback), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Environment for children without our own config overrides leaking in. */
export { pluginEnv as cleanEnv } from '../test/testkit/plugin-run.js';

/**
 * Loopback-only settings for every benchmark sidecar (as in test/testkit/sidecar-process.ts):
 * free ports, DHT on 127.0.0.1 with no bootstrap nodes, so nothing leaves the machine.
 */
export const LOOPBACK_CONFIG: Record<string, Record<string, unknown>> = { ...LOOPBACK_DEFAULTS, log: { level: 'warn' } };

/** Writes a TOML config (loopback defaults, then `extraToml` merged over them); returns its path. */
export function writeConfig(dir: string, dataDir: string, extraToml = ''): string {
  const path = join(dir, 'config.toml');
  let config: Record<string, unknown> = { dataDir };
  for (const [k, v] of Object.entries(LOOPBACK_CONFIG)) config[k] = { ...v };
  if (extraToml.trim()) config = deepMerge(config, parseToml(extraToml) as Record<string, unknown>);
  writeFileSync(path, stringifyToml(config) + '\n');
  return path;
}

/** Sorted copy → percentile (nearest rank). */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** `median (min–max)` of a figure over rounds, as every benchmark prints it. */
export function medianSpread(xs: number[], digits = 0): string {
  return `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;
}

export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  goal: string | null;
}

export function figure(name: string, value: number, unit: string, baseline: number | null = null, goal: string | null = null): Figure {
  const ratio = baseline !== null && baseline !== 0 && Number.isFinite(baseline) ? round(value / baseline, 3) : null;
  return { name, value: round(value, 2), unit, baseline: baseline === null ? null : round(baseline, 2), ratio, goal };
}

export function printFigures(bench: string, figures: Figure[], extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ bench, ...extra, figures }) + '\n');
}

export function log(msg = ''): void {
  process.stdout.write(msg + '\n');
}

/** Files and bytes in a directory (spool), plus the number of lines in them. */
export function dirUsage(dir: string, countLines = false): { files: number; bytes: number; lines: number; names: string[] } {
  let files = 0;
  let bytes = 0;
  let lines = 0;
  const names: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return { files, bytes, lines, names };
  }
  for (const name of entries) {
    const p = join(dir, name);
    try {
      const st = statSync(p);
      if (!st.isFile()) continue;
      files++;
      bytes += st.size;
      names.push(name);
      if (countLines) {
        const buf = readFileSync(p);
        for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) lines++;
      }
    } catch {
      /* gone meanwhile */
    }
  }
  return { files, bytes, lines, names };
}

// ---------------------------------------------------------------------------------------------
// Sidecar as a child process (the testkit's harness, cleaned up with everything else)

/**
 * Starts the sidecar as its command runs (test/testkit/sidecar-process.ts), registered for cleanup.
 * A variable the shebang sets that is already set here wins (A/B runs, e.g. MALLOC_ARENA_MAX=8);
 * BENCH_SIDECAR_NODE_ARGS: extra node flags (e.g. --cpu-prof); BENCH_SIDECAR_STDOUT: a file for
 * its stdout (e.g. with --trace-gc). `main`: another build's dist/sidecar/main.js (a baseline).
 */
export async function startSidecarChild(
  configPath: string,
  dataDir: string,
  timeoutMs = 20_000,
  main = SIDECAR_MAIN,
): Promise<SidecarProcess> {
  installHooks();
  const kept = Object.keys(shebangOf(main).env).filter((k) => process.env[k] !== undefined);
  const sc = new SidecarProcess(configPath, dataDir, Object.fromEntries(kept.map((k) => [k, process.env[k]])), {
    nodeArgs: (process.env.BENCH_SIDECAR_NODE_ARGS ?? '').split(' ').filter(Boolean),
    stdoutFile: process.env.BENCH_SIDECAR_STDOUT || undefined,
    main,
  });
  sidecars.add(sc);
  onCleanup(async () => void (await sc.terminate(10_000)));
  await sc.start(timeoutMs);
  return sc;
}

export interface StatusDoc {
  events: { received: number; indexed: number; duplicates: number; stored: number };
  skippedByPolicy: Record<string, number>;
  removed: Record<string, number>;
  invalid: Record<string, number>;
  spool: { files: number; bytes: number; drainedFiles?: number; drainedLines?: number };
  ingest?: { backlog: number; connections: number; error: string | null };
  bundles?: {
    active: number;
    bytes: number;
    events: number;
    byLevel?: Record<string, number>;
    pendingEvents?: number;
    newest?: string | null;
    built?: number;
  };
}

export function getStatus(addr: string, ms = 2000): Promise<StatusDoc> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/status', method: 'GET', timeout: ms }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as StatusDoc);
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('status request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls /status until `done(status)` or the deadline; returns the last status (null if none). */
export async function pollStatus(
  addr: string,
  done: (s: StatusDoc) => boolean,
  timeoutMs = 30_000,
): Promise<{ status: StatusDoc | null; ok: boolean; waitedMs: number }> {
  const t0 = Date.now();
  let last: StatusDoc | null = null;
  for (let i = 0; i < 100_000 && Date.now() - t0 < timeoutMs; i++) {
    try {
      last = await getStatus(addr);
      if (done(last)) return { status: last, ok: true, waitedMs: Date.now() - t0 };
    } catch {
      /* not answering right now */
    }
    await sleep(100);
  }
  return { status: last, ok: false, waitedMs: Date.now() - t0 };
}

export function describeStatus(s: StatusDoc | null): string {
  if (!s) return 'no status';
  const e = s.events;
  const extra: string[] = [];
  if (Object.keys(s.invalid).length) extra.push(`invalid=${JSON.stringify(s.invalid)}`);
  if (Object.keys(s.skippedByPolicy).length) extra.push(`skipped=${JSON.stringify(s.skippedByPolicy)}`);
  if (Object.keys(s.removed).length) extra.push(`removed=${JSON.stringify(s.removed)}`);
  if (s.ingest?.error) extra.push(`ingestError=${s.ingest.error}`);
  if (s.bundles && s.bundles.active > 0) extra.push(`bundles=${s.bundles.active} (${s.bundles.events} events, ${s.bundles.bytes} B)`);
  return (
    `received=${e.received} indexed=${e.indexed} duplicates=${e.duplicates} stored=${e.stored} ` +
    `spool=${s.spool.files} files/${s.spool.bytes} B drained=${s.spool.drainedFiles ?? 0} files/${s.spool.drainedLines ?? 0} lines` +
    (extra.length ? ' ' + extra.join(' ') : '')
  );
}

// ---------------------------------------------------------------------------------------------
// CPU time of other processes (Linux /proc), for "CPU µs per event" diagnostics.

/** USER_HZ: 100 on every mainstream Linux build (node cannot ask sysconf). */
const clkTck = 100;

/** user+system CPU ms of a process (all threads), or null when unreadable. */
/** CPU time (user + system) of a process, or of one of its threads when `tid` is given. */
export function procCpuMs(pid: number | undefined | null, tid?: number): number | null {
  if (!pid || pid <= 0) return null;
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / clkTck;
  } catch {
    return null;
  }
}

/** The process doing the work behind a `/bin/sh -c` wrapper: the wrapper itself if sh exec'd. */
export function workerPid(shPid: number | undefined): number | null {
  if (!shPid) return null;
  try {
    const comm = readFileSync(`/proc/${shPid}/comm`, 'utf8').trim();
    if (comm !== 'sh' && comm !== 'dash' && comm !== 'bash') return shPid;
    const kids = readFileSync(`/proc/${shPid}/task/${shPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length === 1 ? Number(kids[0]) : shPid;
  } catch {
    return null;
  }
}

/** Resolves when a socket can take more data (or closes), or after `ms`. */
export function waitForDrain(sock: import('node:net').Socket, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      sock.off('drain', done);
      sock.off('close', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    sock.on('drain', done);
    sock.on('close', done);
  });
}

/** The baseline write-policy plugin: node:readline, parse the line, answer accept (a no-op plugin as an operator would write it). */
export const BARE_PLUGIN = `import { createInterface } from 'node:readline';
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  const req = JSON.parse(line);
  process.stdout.write(JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n');
});
`;
