// Exiting the process while lmdb-js has a write transaction in flight never ends. Node's exit
// joins the libuv threadpool threads (uv__threadpool_cleanup → pthread_join), and lmdb's write
// worker, one of those threads, waits in WriteWorker::WaitForCallbacks for the main thread to run
// its transaction callback, which an exiting main thread never does (gdb on a hung sidecar). On a
// full disk ingest retries a commit every second, so an exit at the stop deadline used to hit
// that window about one time in three (4 hangs in 12 runs before this fix). Hence: stop the index
// writes and let the ones in flight commit or fail (the event loop still runs), then exit.
import type { Logger } from 'pino';
import { withDeadline } from './deadline.js';

/** How long waiting for the index writes in flight may take (the process ends by then). */
export const INDEX_QUIET_GRACE_MS = 3000;

let exiting: Promise<never> | null = null;

/**
 * Waits for `quiesceIndex` (bounded by `graceMs`), then exits with `code`. Idempotent: later
 * calls (a second signal, a late unhandled rejection) wait for the first one.
 */
export function exitSafely(
  quiesceIndex: () => Promise<unknown>,
  code: number,
  log: Logger,
  graceMs = INDEX_QUIET_GRACE_MS,
): Promise<never> {
  exiting ??= (async () => {
    const quiet = await withDeadline(quiesceIndex(), graceMs);
    if (quiet === 'done') {
      // lmdb's exit hook syncs every environment to disk, which a failing disk may hold up; the
      // commits are in the OS already (LMDB stays consistent even if they never reach the disk).
      process.removeAllListeners('exit');
      process.exit(code);
    }
    log.fatal(
      { graceMs, err: quiet instanceof Error ? quiet : undefined },
      quiet === 'timeout'
        ? `index writes still in flight after ${graceMs} ms (a write stuck in the kernel?); exiting with SIGKILL, the only exit that does not wait for them (LMDB is crash-safe: the next start sees the last committed transaction)`
        : 'stopping the index writes failed; exiting with SIGKILL so that no write in flight can hold the exit (LMDB is crash-safe: the next start sees the last committed transaction)',
    );
    // process.exit and process.reallyExit join the stuck thread and hang: only a signal ends the
    // process without it. systemd sees a failure and restarts the service (Restart=on-failure).
    process.kill(process.pid, 'SIGKILL');
    return new Promise<never>(() => {});
  })();
  return exiting;
}
