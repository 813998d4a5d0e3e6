// Runs the real sidecar (dist/sidecar/main.js) as a child process for end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'smol-toml';
import type { Status } from '../../sidecar/ops/status.js';

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
export function makeWorkspace(extra: Record<string, unknown> = {}): { dir: string; configPath: string; dataDir: string; cleanup: () => void } {
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

export class SidecarProcess {
  proc: ChildProcess | null = null;
  stderr = '';

  constructor(
    readonly configPath: string,
    readonly dataDir: string,
    /** Extra environment for the child (e.g. NOTIFY_SOCKET). */
    readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get socketPath(): string {
    return join(this.dataDir, 'ingest.sock');
  }

  async start(timeoutMs = 10_000): Promise<void> {
    const proc = spawn(process.execPath, [SIDECAR_BIN, '--config', this.configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-200_000);
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`sidecar exited with ${proc.exitCode}: ${this.stderr}`);
      if (this.stderr.includes('"sidecar ready"') && (await canConnect(this.socketPath))) return;
      await sleep(25);
    }
    throw new Error(`sidecar not ready after ${timeoutMs} ms: ${this.stderr}`);
  }

  /** SIGKILL, as a crash would. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    this.proc = null;
  }

  /** SIGTERM and wait for the graceful stop. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    this.proc = null;
    return code;
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

export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
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
