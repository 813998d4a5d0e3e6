// The real sidecar (dist/sidecar/main.js) as a child process, and the workspace it runs in: one
// harness for the tests, the benchmarks and the demo (docs/testing.md, Testkit).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, stringify } from 'smol-toml';
import type { Status } from '../../sidecar/ops/status.js';
import { pluginEnv } from './plugin-run.js';

export const DIST = resolve(fileURLToPath(import.meta.url), '../../..');
export const PLUGIN_BIN = join(DIST, 'plugin/main.js');
export const SIDECAR_BIN = join(DIST, 'sidecar/main.js');
export const CLI_BIN = join(DIST, 'scripts/cli.js');
export const FIXTURES = resolve(DIST, '../test/fixtures');

/** Loopback-only defaults for every test sidecar: free ports, no public DHT bootstrap. */
export const LOOPBACK_DEFAULTS = {
  status: { listen: '127.0.0.1:0' },
  bittorrent: { port: 0 },
  dht: { port: 0, host: '127.0.0.1', bootstrap: [] as string[] },
  discovery: { listen: '127.0.0.1:0' },
};

/** A temp dir with a config file; `extra` sections are merged over the loopback defaults. */
export function makeWorkspace(extra: Record<string, unknown> = {}): {
  dir: string;
  configPath: string;
  dataDir: string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-'));
  const dataDir = join(dir, 'data');
  const config: Record<string, unknown> = { dataDir, ...extra };
  for (const [section, defaults] of Object.entries(LOOPBACK_DEFAULTS)) {
    config[section] = { ...defaults, ...((extra[section] as object) ?? {}) };
  }
  const configPath = join(dir, 'config.toml');
  writeFileSync(configPath, stringify(config));
  return { dir, configPath, dataDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** sidecar.json, written by the sidecar once it serves (docs/operations.md). */
export interface Runtime {
  pid: number;
  status: string | null;
  socket: string;
  torrentPort: number;
  dhtPort: number | null;
}

export interface StopResult {
  code: number | null;
  signal: string | null;
  /** Exited by itself after SIGTERM (not SIGKILLed by us). */
  graceful: boolean;
  /** From SIGTERM to exit. */
  ms: number;
}

export interface SidecarOptions {
  /** Node flags after the shebang's (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** A file for the child's stdout (e.g. with --trace-gc); ignored otherwise. */
  stdoutFile?: string;
  /** Another build's dist/sidecar/main.js (a benchmark's baseline) instead of this one's. */
  main?: string;
}

/** `#!/usr/bin/env -S NAME=value node --flag`: the variables and node flags a script's shebang sets. */
export function shebangOf(script: string): { env: Record<string, string>; nodeArgs: string[] } {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0]!;
  const words = first
    .replace(/^#!\S*env\s+(-S\s+)?/, '')
    .split(/\s+/)
    .filter(Boolean);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^\w+=/.test(words[i]!); i++) {
    const [name, ...value] = words[i]!.split('=');
    env[name!] = value.join('=');
  }
  if (words[i] !== 'node') throw new Error(`${script}: unexpected shebang ${first}`);
  return { env, nodeArgs: words.slice(i + 1) };
}

/** Levels at which the sidecar does not log its info line "sidecar ready". */
const QUIET_LEVELS = new Set(['warn', 'error', 'fatal', 'silent']);

function logsInfo(configPath: string): boolean {
  try {
    const level = (parseToml(readFileSync(configPath, 'utf8')) as { log?: { level?: unknown } }).log?.level;
    return typeof level !== 'string' || !QUIET_LEVELS.has(level);
  } catch {
    return true; // no readable config: the default level, info
  }
}

const STDERR_CAP = 1_000_000;

/**
 * The real sidecar as a child process, started as its installed command `nostr-bt-sidecar
 * --config <path>` runs: node with the shebang's environment (MALLOC_ARENA_MAX=1) and flags, the
 * caller's environment without the variables that pick a config or data directory. Used by the
 * tests, the benchmarks (bench/common.ts) and the demo.
 */
export class SidecarProcess {
  proc: ChildProcess | null = null;
  /** The child's stderr (its JSON log), the last 1 MB. */
  stderr = '';
  /** What the running child wrote to sidecar.json; set once start() returns. */
  runtime: Runtime | null = null;
  private exitP: Promise<{ code: number | null; signal: string | null }> = Promise.resolve({ code: null, signal: null });
  private stopP: Promise<StopResult> | null = null;

  constructor(
    readonly configPath: string,
    readonly dataDir: string,
    /** Extra environment for the child (e.g. NOTIFY_SOCKET); set after the shebang's, so it wins. */
    readonly env: NodeJS.ProcessEnv = {},
    readonly opts: SidecarOptions = {},
  ) {}

  /** The ingest socket: as the running sidecar reports it, else the default under the data directory. */
  get socketPath(): string {
    return this.runtime?.socket ?? join(this.dataDir, 'ingest.sock');
  }

  /** host:port of the running sidecar's HTTP status endpoint. */
  get statusAddr(): string | null {
    return this.runtime?.status ?? null;
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  /** True once the child has exited (or was never started). */
  get exited(): boolean {
    const p = this.proc;
    return p === null || p.exitCode !== null || p.signalCode !== null;
  }

  /**
   * Spawns the child and waits until it serves: sidecar.json names this child's pid (after a
   * kill -9 the previous run's file is still there), its ingest socket accepts a connection, and
   * its "sidecar ready" line has been read (when its log level logs it). Not ready in time: the
   * child is stopped and the error carries its log. The bound is generous: on a loaded machine
   * node and the sidecar's modules alone can take seconds to load.
   */
  async start(timeoutMs = 30_000): Promise<void> {
    const shebang = shebangOf(this.opts.main ?? SIDECAR_BIN);
    const out = this.opts.stdoutFile ? openSync(this.opts.stdoutFile, 'w') : 'ignore';
    const proc = spawn(
      process.execPath,
      [...shebang.nodeArgs, ...(this.opts.nodeArgs ?? []), this.opts.main ?? SIDECAR_BIN, '--config', this.configPath],
      {
        stdio: ['ignore', out, 'pipe'],
        env: pluginEnv({ ...shebang.env, ...this.env }),
      },
    );
    if (typeof out === 'number') closeSync(out);
    this.proc = proc;
    this.runtime = null;
    this.stopP = null;
    this.exitP = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    proc.once('error', (err) => (this.stderr += `[harness] spawn error: ${err.message}\n`));
    // The ready line is looked for in this run's output only (stderr keeps earlier runs').
    let readySeen = !logsInfo(this.configPath);
    let head = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      this.stderr += d;
      if (this.stderr.length > STDERR_CAP) this.stderr = this.stderr.slice(-STDERR_CAP);
      if (readySeen) return;
      head = (head + d).slice(-STDERR_CAP);
      if (head.includes('"sidecar ready"')) [readySeen, head] = [true, ''];
    });
    const runtimeFile = join(this.dataDir, 'sidecar.json');
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`sidecar exited with ${proc.exitCode ?? proc.signalCode}: ${this.stderr}`);
      if (existsSync(runtimeFile)) {
        let rt: Runtime | null = null;
        try {
          rt = JSON.parse(readFileSync(runtimeFile, 'utf8')) as Runtime;
        } catch {
          /* being written */
        }
        if (rt !== null && rt.pid === proc.pid && readySeen && (await canConnect(rt.socket))) {
          this.runtime = rt;
          return;
        }
      }
      await sleep(25);
    }
    await this.terminate();
    const seen = `ready line ${readySeen ? 'seen' : 'not seen'}; sidecar.json ${existsSync(runtimeFile) ? 'present' : 'absent'}`;
    throw new Error(`sidecar not ready after ${timeoutMs} ms (${seen}): ${this.stderr}`);
  }

  /** SIGKILL, as a crash would. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || this.exited) return;
    p.kill('SIGKILL');
    await this.exitP;
    this.proc = null;
  }

  /** Sends `sig` to the running child (SIGSTOP/SIGCONT to freeze it, SIGHUP to reload). */
  signal(sig: NodeJS.Signals): void {
    if (!this.exited) this.proc!.kill(sig);
  }

  /**
   * Graceful stop: SIGCONT (a frozen child could not act on SIGTERM), SIGTERM, wait; past
   * `timeoutMs` SIGKILL and at most 5 s more. Calls during one stop share it.
   */
  terminate(timeoutMs = 20_000): Promise<StopResult> {
    const p = this.proc;
    if (!p) return Promise.resolve({ code: null, signal: null, graceful: true, ms: 0 });
    this.stopP ??= (async () => {
      if (this.exited) return { ...(await this.exitP), graceful: true, ms: 0 };
      const t0 = Date.now();
      p.kill('SIGCONT');
      p.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<null>((r) => (timer = setTimeout(() => r(null), timeoutMs)));
      let r = await Promise.race([this.exitP, timedOut]);
      clearTimeout(timer);
      if (r !== null) return { ...r, graceful: true, ms: Date.now() - t0 };
      this.stderr += `[harness] the sidecar did not stop within ${timeoutMs} ms; SIGKILL\n`;
      p.kill('SIGKILL');
      r = await Promise.race([this.exitP, sleep(5000).then(() => ({ code: null, signal: 'SIGKILL?' }))]);
      return { ...r, graceful: false, ms: Date.now() - t0 };
    })();
    return this.stopP;
  }

  /** SIGTERM and wait for the graceful stop (see terminate); the exit code. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    const r = await this.terminate(timeoutMs);
    this.proc = null;
    return r.code;
  }

  /** The last `chars` characters of the log. */
  tail(chars = 4000): string {
    return this.stderr.slice(-chars);
  }

  /** The log's lines at level warn or above. */
  problems(): { level: number; msg: string; line: string }[] {
    const out: { level: number; msg: string; line: string }[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const o = JSON.parse(line) as { level?: number; msg?: string };
        if ((o.level ?? 0) >= 40) out.push({ level: o.level!, msg: o.msg ?? '', line });
      } catch {
        /* not a log line */
      }
    }
    return out;
  }

  async status(): Promise<Status> {
    const runtime = JSON.parse(readFileSync(join(this.dataDir, 'sidecar.json'), 'utf8')) as { status: string };
    const res = await fetch(`http://${runtime.status}/status`);
    return (await res.json()) as Status;
  }

  /** Polls /status until `pred` holds (bounded). */
  async waitFor(pred: (s: Status) => boolean, timeoutMs = 20_000): Promise<Status> {
    const deadline = Date.now() + timeoutMs;
    let last: Status | null = null;
    while (Date.now() < deadline) {
      if (existsSync(join(this.dataDir, 'sidecar.json'))) {
        try {
          last = await this.status();
          if (pred(last)) return last;
        } catch {
          /* restarting */
        }
      }
      await sleep(50);
    }
    throw new Error(`condition not met within ${timeoutMs} ms; last status: ${JSON.stringify(last)}`);
  }
}

/** Whether a Unix socket accepts a connection within `ms`. */
export function canConnect(path: string, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(ms, () => done(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function readJsonl(path: string): unknown[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);
}
