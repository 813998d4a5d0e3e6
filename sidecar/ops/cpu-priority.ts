// The sidecar yields the CPU to the relay: at start it raises its own nice value (service.nice)
// on every thread it has so far; threads started later (libuv's pool, the judge and bundle
// workers, LMDB's) inherit it from the thread that starts them. Linux applies nice per thread,
// which is why each one is set. Raising niceness needs no privilege; lowering it does, so a
// value already higher (systemd's Nice=, `nice -n 15 nostr-bt-sidecar`) is left as it is.
import { getPriority, setPriority } from 'node:os';
import { readdirSync } from 'node:fs';

export interface NiceResult {
  /** The nice value of the main thread afterwards. */
  nice: number;
  /** Threads whose nice value was raised. */
  threads: number;
  /** Why it could not be set, if it could not. */
  error: string | null;
}

export function applyNice(target: number, pid = process.pid): NiceResult {
  let before: number;
  try {
    before = getPriority(pid);
  } catch (err) {
    return { nice: 0, threads: 0, error: (err as Error).message };
  }
  if (before >= target) return { nice: before, threads: 0, error: null };
  let tids: number[] = [pid];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    /* no /proc: the main thread only */
  }
  let threads = 0;
  let error: string | null = null;
  for (const tid of tids) {
    try {
      if (getPriority(tid) < target) {
        setPriority(tid, target);
        threads++;
      }
    } catch (err) {
      error ??= (err as Error).message;
    }
  }
  return { nice: getPriority(pid), threads, error };
}
