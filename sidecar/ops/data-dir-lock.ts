// One sidecar per data directory. `<dataDir>/sidecar.lock` names the process that holds it (pid,
// host, when it started, and the kernel's start time of that pid); it is created atomically (a
// complete temp file hard-linked into place, so nobody ever reads a half-written lock) and
// removed at a clean stop. Node has no flock(2), so a crashed holder (kill -9) leaves the file
// behind: it is stale when its pid is gone, or the pid now belongs to a younger process (the
// kernel start time differs), or the machine rebooted since (another boot id). A stale lock is
// broken under a second lock file so two sidecars starting at once cannot both take it.
// Read-only tools never take the lock; `nostr-bt status` reads it to tell who drains the spool.
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'sidecar.lock';
const BREAK_SUFFIX = '.break';
const ATTEMPTS = 50;

/** What the lock file holds. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock (≈ when the sidecar started). */
  startedAt: string;
  /** The holder's start time in clock ticks after boot (/proc/<pid>/stat field 22), when known. */
  procStart: string | null;
  /** /proc/sys/kernel/random/boot_id when it took the lock, when known. */
  bootId: string | null;
  command: string;
}

/** The data directory could not be created or written (path and cause in the message). */
export class DataDirError extends Error {
  override name = 'DataDirError';
  constructor(
    readonly path: string,
    readonly fsError: NodeJS.ErrnoException,
    what = 'cannot use the data directory',
  ) {
    super(`${what} ${path}: ${describeFsError(fsError)}`);
  }
}

/** Another live process holds the lock. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
    readonly checkable: boolean,
  ) {
    const who = `pid ${holder.pid}${holder.host !== hostname() ? ` on host ${holder.host}` : ''}, started ${holder.startedAt}`;
    super(
      `data directory ${dataDir} is in use by another nostr-bt sidecar (${who}: ${holder.command}); ` +
        (checkable
          ? 'stop that one first (or give this one another data directory)'
          : `it cannot be checked from this host: if it no longer runs, remove ${join(dataDir, LOCK_FILE)}`),
    );
  }
}

export class DataDirLock {
  private released = false;

  private constructor(
    readonly path: string,
    private readonly text: string,
  ) {}

  /**
   * Takes the lock, creating the data directory if needed. Throws DataDirLockedError when a live
   * process holds it, DataDirError when the directory cannot be created or written.
   */
  static acquire(dataDir: string): DataDirLock {
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    } catch (err) {
      throw new DataDirError(dataDir, err as NodeJS.ErrnoException);
    }
    const path = join(dataDir, LOCK_FILE);
    const text = JSON.stringify(selfHolder()) + '\n';
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    try {
      writeFileSync(tmp, text, { flag: 'wx', mode: 0o644 });
    } catch (err) {
      throw new DataDirError(dataDir, err as NodeJS.ErrnoException);
    }
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        if (place(tmp, path, text)) return new DataDirLock(path, text);
        const seen = readText(path);
        if (seen === null) continue; // released meanwhile
        const holder = parseHolder(seen);
        const state = holder ? holderState(holder) : 'dead';
        if (state !== 'dead') throw new DataDirLockedError(dataDir, holder!, state === 'alive');
        breakStale(path, seen);
      }
      throw new DataDirError(
        dataDir,
        Object.assign(new Error(`could not take ${path} in ${ATTEMPTS} attempts (other processes keep taking and breaking it)`), {
          code: 'EBUSY',
        }),
      );
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* gone already */
      }
    }
  }

  /** Removes the lock if it is still this one's (idempotent; safe in an 'exit' handler). */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (readText(this.path) === this.text) {
      try {
        unlinkSync(this.path);
      } catch {
        /* removed by hand */
      }
    }
  }
}

/** Who holds the lock of `dataDir` and whether that process still runs (null: nobody). */
export function readLock(dataDir: string): (LockHolder & { state: 'alive' | 'dead' | 'unknown' }) | null {
  const text = readText(join(dataDir, LOCK_FILE));
  const holder = text === null ? null : parseHolder(text);
  return holder ? { ...holder, state: holderState(holder) } : null;
}

/** Links the complete temp file into place: atomic, fails if a lock exists. */
function place(tmp: string, path: string, text: string): boolean {
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS')
      throw new DataDirError(path, err as NodeJS.ErrnoException, 'cannot create the lock file');
  }
  // A file system without hard links: O_EXCL create (the content follows at once).
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o644 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DataDirError(path, err as NodeJS.ErrnoException, 'cannot create the lock file');
  }
}

/**
 * Removes the stale lock whose content was `seen`, unless it changed meanwhile. Only one process
 * breaks at a time (the `.break` file): otherwise one could remove the lock another has just
 * taken after breaking the same stale one.
 */
function breakStale(path: string, seen: string): void {
  const brk = path + BREAK_SUFFIX;
  try {
    writeFileSync(brk, JSON.stringify(selfHolder()) + '\n', { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new DataDirError(brk, err as NodeJS.ErrnoException, 'cannot create the lock file');
    const breaker = readText(brk);
    const holder = breaker === null ? null : parseHolder(breaker);
    // A breaker that died in the few microseconds it holds this file: clear it.
    if (breaker !== null && (!holder || holderState(holder) === 'dead')) unlinkQuietly(brk);
    else sleepSync(5);
    return;
  }
  try {
    if (readText(path) === seen) unlinkQuietly(path);
  } finally {
    unlinkQuietly(brk);
  }
}

function holderState(h: LockHolder): 'alive' | 'dead' | 'unknown' {
  if (h.host !== hostname()) return 'unknown';
  const boot = bootId();
  if (h.bootId && boot && h.bootId !== boot) return 'dead';
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
  }
  if (h.procStart !== null) {
    const now = procStartOf(h.pid);
    // A different start time: the pid was reused by a process born after the holder died.
    if (now !== null && now !== h.procStart) return 'dead';
  }
  return 'alive';
}

function selfHolder(): LockHolder {
  return {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    procStart: procStartOf(process.pid),
    bootId: bootId(),
    command: [process.argv0, ...process.argv.slice(1)].join(' ').slice(0, 300),
  };
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || !Number.isInteger(h.pid) || h.pid <= 0 || typeof h.host !== 'string') return null;
    return {
      pid: h.pid,
      host: h.host,
      startedAt: typeof h.startedAt === 'string' ? h.startedAt : '(unknown time)',
      procStart: typeof h.procStart === 'string' ? h.procStart : null,
      bootId: typeof h.bootId === 'string' ? h.bootId : null,
      command: typeof h.command === 'string' ? h.command : '(unknown command)',
    };
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (the command name, field 2, may hold spaces and parentheses). */
function procStartOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let cachedBootId: string | null | undefined;
function bootId(): string | null {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** "EACCES: permission denied, mkdir '/x'" (Node's own wording carries the code, the call and the path). */
export function describeFsError(err: NodeJS.ErrnoException): string {
  return err.code && !err.message.startsWith(err.code) ? `${err.code}: ${err.message}` : err.message;
}
