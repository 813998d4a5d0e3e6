#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node
// (glibc gives every thread that mallocs its own arena and keeps what it frees: with the LMDB
// writer, the judge worker and libuv's pool that was ~150 MB of the sidecar's RSS at 1M events.
// The variable must be set before the process starts, hence the shebang; docs/operations.md, Memory.)
// nostr-bt-sidecar: the daemon. Starts with no config at all (data in ./nostr-bt-data).
// Signals: SIGTERM/SIGINT stop gracefully within service.stopTimeoutSeconds (past it: exit 1 once the
// index writes in flight have settled, at most 3 s later; see common/exit-safely.ts);
// SIGHUP reloads the config (what is safe to change while running; the log says what needs a
// restart). Under systemd (Type=notify) it reports READY=1, WATCHDOG=1, RELOADING=1, STOPPING=1.
// Exit codes (docs/operations.md): 0 stopped cleanly; 1 failed while running or stopping; 2 invalid
// config (or key file); 3 another sidecar holds the data directory; 4 a file or directory it needs
// cannot be created or written (the log line names the path and the cause); 5 a dependency lacks an
// internal member nostr-bt patches (common/monkey-patch.ts: the line names package, version, member).
import { Command } from 'commander';
import { applyCliConventions } from './common/command-line.js';
import { loadConfig, ConfigError, type Config, type LoadOptions } from './common/config.js';
import { createLogger } from './common/log.js';
import { SdNotify } from './ops/sd-notify.js';
import { Sidecar } from './sidecar.js';
import { withDeadline } from './common/deadline.js';
import { exitSafely } from './common/exit-safely.js';
import { isLmdbWriteFailure } from './index/lmdb-failures.js';
import { DataDirError, DataDirLockedError, describeFsError } from './ops/data-dir-lock.js';
import { KeyFileError } from './publishing/identity.js';
import { applyNice } from './ops/cpu-priority.js';
import { PatchTargetError } from './common/monkey-patch.js';

const STATUS_EVERY_MS = 10_000;
const EXIT_CONFIG = 2;
const EXIT_LOCKED = 3;
const EXIT_PATH = 4;
const EXIT_PATCH = 5;

/** Codes of file-system errors that mean "this path cannot be used" (not a bug to trace). */
const PATH_ERRORS = new Set([
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOTDIR',
  'EISDIR',
  'EEXIST',
  'ENOENT',
  'ELOOP',
  'ENAMETOOLONG',
  'ENOSPC',
  'EDQUOT',
]);

/** An operator's error at start: one log line and its exit code; null for anything else (a bug: logged with its stack). */
function startFailure(err: unknown): { code: number; message: string; path?: string } | null {
  if (err instanceof DataDirLockedError) return { code: EXIT_LOCKED, message: err.message, path: err.dataDir };
  if (err instanceof DataDirError) return { code: EXIT_PATH, message: err.message, path: err.path };
  if (err instanceof KeyFileError) return { code: EXIT_CONFIG, message: err.message };
  if (err instanceof PatchTargetError) return { code: EXIT_PATCH, message: err.message };
  const e = err as NodeJS.ErrnoException & { address?: unknown };
  // A unix socket's listen error carries its path as `address` (a TCP one, an IP: not a path).
  const path = e?.path ?? (typeof e?.address === 'string' && e.address.startsWith('/') ? e.address : undefined);
  if (typeof e?.code === 'string' && PATH_ERRORS.has(e.code) && typeof path === 'string') {
    return { code: EXIT_PATH, message: `cannot use ${path}: ${describeFsError(e)}`, path };
  }
  return null;
}

const program = new Command('nostr-bt-sidecar')
  .description('nostr-bt sidecar: indexes what the strfry plugin forwards and archives it into BitTorrent')
  .option('-c, --config <file>', 'config file (default: $NOSTR_BT_CONFIG, then /etc/nostr-bt/config.toml if present)')
  .option('-d, --data-dir <dir>', 'data directory (overrides dataDir in the config)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace');
applyCliConventions(program).parse();

const flags = program.opts<{ config?: string; dataDir?: string; logLevel?: string }>();
// Read once: SIGHUP reloads the same file, even if the environment changes meanwhile.
const loadOptions: LoadOptions = {
  configPath: flags.config ?? process.env.NOSTR_BT_CONFIG,
  dataDir: flags.dataDir, // NOSTR_BT_DATA_DIR is read (and checked) by loadConfig
  overrides: flags.logLevel ? { log: { level: flags.logLevel } } : undefined,
};
let config: Config;
try {
  config = loadConfig(loadOptions);
} catch (err) {
  process.stderr.write(`nostr-bt-sidecar: ${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(EXIT_CONFIG);
}
const log = createLogger('nostr-bt-sidecar', config.log.level);
{
  // Before anything else starts threads: the relay on this host comes first.
  const n = applyNice(config.service.nice);
  if (n.error)
    log.warn({ nice: n.nice, wanted: config.service.nice, err: n.error }, "could not lower the sidecar's CPU priority (service.nice)");
  else log.debug({ nice: n.nice, threads: n.threads }, 'CPU priority');
}
const notify = SdNotify.fromEnv(log);
let sidecar: Sidecar;
try {
  sidecar = new Sidecar(config, log, { progress: (what) => notify.status(what) });
} catch (err) {
  const f = startFailure(err);
  if (f) log.fatal({ path: f.path, exitCode: f.code }, f.message);
  else log.fatal({ err }, 'sidecar failed to start');
  notify.close();
  process.exit(f?.code ?? 1);
}
// However the process ends (short of SIGKILL), the next sidecar must not find this one's lock.
process.on('exit', () => sidecar.releaseLock());
notify.startWatchdog();
/** Every exit but the clean one goes through here: an exit with an index write in flight hangs. */
const exitAfterClosingIndex = (code: number) => exitSafely(() => sidecar.abandon(), code, log);
process.on('unhandledRejection', (err) => {
  if (isLmdbWriteFailure(err)) return; // already handled where the transaction is awaited
  log.fatal({ err }, 'unhandled error; exiting (the index is consistent: restart resumes)');
  void exitAfterClosingIndex(1);
});
let statusTimer: NodeJS.Timeout | null = null;

function summary(): string {
  const s = sidecar.status();
  return `${s.events.stored} events stored, ${s.seeding?.torrents ?? 0} torrents, ${s.seeding?.peers ?? 0} peers, ${s.dht?.nodes ?? 0} DHT nodes, spool ${s.spool.files} files`;
}

let stopping = false;
async function stop(signal: string, started: Promise<boolean>): Promise<void> {
  if (stopping) return;
  stopping = true;
  const timeoutMs = config.service.stopTimeoutSeconds * 1000;
  log.info({ signal, timeoutMs }, 'stopping');
  notify.stopping(`stopping (${signal})`);
  if (statusTimer) clearInterval(statusTimer);
  const outcome = await withDeadline(
    started.then((ok) => (ok ? sidecar.stop() : undefined)),
    timeoutMs,
  );
  notify.close();
  if (outcome === 'done') {
    if (await started) process.exit(0);
    return; // start failed: its handler exits 1
  }
  if (outcome === 'timeout') {
    const left = sidecar.unflushed();
    log.error(
      { timeoutMs, ...left },
      `graceful stop took too long (stuck ${left.phase ?? 'starting'}); exiting 1 without flushing: ` +
        `${left.uncommittedLines} received lines not committed to the index${left.ingestError ? ` (${left.ingestError})` : ''}, ` +
        `${left.spoolFiles} spool files not drained. None of them was acknowledged, so the plugin re-sends them and the spool keeps them; everything acknowledged is in the index`,
    );
  } else log.error({ err: outcome }, 'error while stopping');
  await exitAfterClosingIndex(1);
}

function reload(): void {
  if (stopping) return;
  notify.reloading();
  let next: Config;
  try {
    next = loadConfig(loadOptions);
  } catch (err) {
    log.error({ err: err instanceof ConfigError ? err.message : String(err) }, 'config reload failed; keeping the running config');
    notify.ready(summary());
    return;
  }
  const { reloadable, restartNeeded } = sidecar.reload(next);
  if (restartNeeded.length > 0) {
    log.warn({ reloaded: reloadable, restartNeeded }, 'config reloaded; some changes need a restart (systemctl restart nostr-bt-sidecar)');
  } else log.info({ reloaded: reloadable }, reloadable.length ? 'config reloaded' : 'config reloaded: nothing changed');
  notify.ready(summary());
}

let resolveStarted!: (ok: boolean) => void;
const started = new Promise<boolean>((r) => (resolveStarted = r));
process.on('SIGTERM', () => void stop('SIGTERM', started));
process.on('SIGINT', () => void stop('SIGINT', started));
process.on('SIGHUP', () => {
  void started.then((ok) => ok && reload());
});

try {
  await sidecar.start();
  resolveStarted(true);
} catch (err) {
  resolveStarted(false);
  const f = startFailure(err);
  if (f) log.fatal({ path: f.path, exitCode: f.code }, f.message);
  else log.fatal({ err }, 'sidecar failed to start');
  await exitAfterClosingIndex(f?.code ?? 1);
}
if (!stopping) {
  notify.ready(summary());
  if (notify.enabled) {
    statusTimer = setInterval(() => notify.status(summary()), STATUS_EVERY_MS);
    statusTimer.unref();
  }
}
