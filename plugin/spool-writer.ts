// Append-only on-disk spool for lines the sidecar could not take right now. Writes are batched
// and asynchronous (the answer to strfry never waits on the disk); fsync is batched on a timer.
// A file is written as `<ms>-<pid>-<n>.open` and renamed to `.ready` when closed; the sidecar
// drains `.ready` files, and `.open` files whose writer is gone. See docs/protocol.md.
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openSpoolName, readySpoolPath, SPOOL_DIR_MODE } from '../sidecar/formats/spool-names.js';

export interface SpoolOptions {
  maxBytes: number;
  fsyncIntervalMs: number;
  rotateBytes: number;
}

/** strfry sends one line at a time: gather a few ms of lines into one write. */
const FLUSH_DELAY_MS = 5;
const FLUSH_NOW_BYTES = 256 * 1024;

export interface SpoolStats {
  /** Lines written to a spool file: counted when the write returned, never before. */
  spooled: number;
  /** Lines the sidecar never got: lost until reconciliation recovers them. */
  dropped: number;
  /** Lines already sent to the sidecar, unacknowledged when the connection closed: maybe archived. */
  droppedAfterSend: number;
  writeErrors: number;
  bytesOnDisk: number;
}

/** Lines taken from the queue for one write. */
interface Batch {
  data: Buffer;
  lines: number;
  /** Of those, lines already sent to the sidecar (a drop may not lose them). */
  sent: number;
}

export class SpoolWriter {
  readonly stats: SpoolStats = { spooled: 0, dropped: 0, droppedAfterSend: 0, writeErrors: 0, bytesOnDisk: 0 };
  private fd: number | null = null;
  private path = '';
  private fileBytes = 0;
  private fileSeq = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private pendingSent = 0;
  /** Bytes handed to the running write: on disk soon, and counted against the bound meanwhile. */
  private writingBytes = 0;
  private writing = false;
  /** The batch being written asynchronously, and what settles when that write has returned. */
  private inFlight: { batch: Batch; done: Promise<void> } | null = null;
  private closing = false;
  private dirty = false;
  private closeRequested = false;
  private knownDirBytes: number | null = null;
  private fsyncTimer: NodeJS.Timeout | null = null;
  private lastErrorLog = 0;

  constructor(
    private readonly dir: string,
    private readonly opts: SpoolOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Queues one line (no newline) for the spool. Returns false if it had to be dropped.
   * `sentBefore`: the line went to the sidecar already (unacknowledged), so a drop may not lose it.
   */
  append(line: string, sentBefore = false): boolean {
    const bytes = Buffer.byteLength(line) + 1;
    if (this.knownDirBytes === null) this.knownDirBytes = this.measureDir();
    if (this.knownDirBytes + this.writingBytes + this.pendingBytes + bytes > this.opts.maxBytes) {
      if (sentBefore) this.stats.droppedAfterSend++;
      else this.stats.dropped++;
      this.logError('spool full, dropping line (reconciliation backfill recovers it)', null);
      return false;
    }
    this.pending.push(line);
    this.pendingBytes += bytes;
    if (sentBefore) this.pendingSent++;
    if (!this.writing) {
      this.writing = true;
      if (this.pendingBytes >= FLUSH_NOW_BYTES) setImmediate(() => this.writeBatch());
      else setTimeout(() => this.writeBatch(), FLUSH_DELAY_MS);
    }
    return true;
  }

  get hasOpenFile(): boolean {
    return this.fd !== null || this.pending.length > 0;
  }

  /** Closes the current file (after pending writes) so the sidecar can drain it. */
  closeCurrent(): void {
    if (!this.hasOpenFile) return;
    this.closeRequested = true;
    if (!this.writing) {
      this.writing = true;
      setImmediate(() => this.writeBatch());
    }
  }

  /**
   * For process exit: waits (up to `waitMs`) for the write in flight, then writes what is queued
   * and closes the file. A line still in flight after that may never reach the disk: dropped.
   */
  async close(waitMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + waitMs;
    while (this.inFlight !== null && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.inFlight.done, new Promise<void>((r) => (timer = setTimeout(r, Math.max(1, deadline - Date.now()))))]);
      clearTimeout(timer);
    }
    if (this.inFlight !== null) {
      const { batch } = this.inFlight;
      this.inFlight = null;
      this.countFailed(batch, 0);
      this.logError('spool write still running at exit, its lines counted as dropped', null, true);
    }
    this.flushSync();
  }

  /** Synchronous flush + close, for process exit (after close() has waited for the write in flight). */
  flushSync(): void {
    this.closing = true;
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    this.fsyncTimer = null;
    if (this.pending.length > 0) {
      const batch = this.takePending();
      let written = 0;
      try {
        this.ensureFileSync();
        while (written < batch.data.length) {
          const n = fs.writeSync(this.fd!, batch.data, written);
          if (n <= 0) throw new Error('spool write wrote nothing');
          written += n;
        }
        this.wrote(batch);
      } catch (err) {
        this.failBatch(batch, written, err, true);
      }
    }
    try {
      this.finishFileSync();
    } catch (err) {
      this.stats.writeErrors++;
      this.logError('spool close at exit failed', err, true);
    }
  }

  private takePending(): Batch {
    const batch = { data: Buffer.from(this.pending.join('\n') + '\n'), lines: this.pending.length, sent: this.pendingSent };
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingSent = 0;
    return batch;
  }

  private ensureFileSync(): void {
    if (this.fd !== null) return;
    // mkdir applies the umask and never sets setgid: set the mode the sidecar's group needs.
    if (fs.mkdirSync(this.dir, { recursive: true, mode: SPOOL_DIR_MODE }) !== undefined) {
      try {
        fs.chmodSync(this.dir, SPOOL_DIR_MODE);
      } catch {
        /* not ours to change: the directory works as created */
      }
    }
    this.path = join(this.dir, openSpoolName(Date.now(), process.pid, this.fileSeq++));
    this.fd = fs.openSync(this.path, 'a', 0o660);
    this.fileBytes = 0;
    if (!this.fsyncTimer) {
      this.fsyncTimer = setInterval(() => this.fsyncIfDirty(), this.opts.fsyncIntervalMs);
      this.fsyncTimer.unref();
    }
  }

  private finishFileSync(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(this.path, readySpoolPath(this.path));
    this.dirty = false;
  }

  private writeBatch(): void {
    if (this.closing) {
      // Exiting: what is queued is written synchronously by flushSync.
      this.writing = false;
      return;
    }
    if (this.pending.length === 0) {
      if (this.closeRequested || this.fileBytes >= this.opts.rotateBytes) this.closeFileAsync();
      else this.writing = false;
      return;
    }
    const batch = this.takePending();
    try {
      this.ensureFileSync();
    } catch (err) {
      this.failBatch(batch, 0, err, false);
      return;
    }
    const fd = this.fd!;
    let settle!: () => void;
    this.inFlight = { batch, done: new Promise<void>((r) => (settle = r)) };
    this.writingBytes = batch.data.length;
    writeAll(fd, batch.data, 0, (err, written) => {
      const current = this.inFlight?.batch === batch;
      this.writingBytes = 0;
      if (current) this.inFlight = null;
      settle();
      // Given up on at exit (close() counted it as dropped): nothing more to count.
      if (!current) return;
      if (err) {
        this.failBatch(batch, written, err, false);
        return;
      }
      this.wrote(batch);
      this.dirty = true;
      this.writeBatch();
    });
  }

  private wrote(batch: Batch): void {
    const bytes = batch.data.length;
    this.stats.spooled += batch.lines;
    this.fileBytes += bytes;
    this.stats.bytesOnDisk += bytes;
    if (this.knownDirBytes !== null) this.knownDirBytes += bytes;
  }

  /**
   * A write failed after `written` bytes (a full disk writes part of a batch, then fails): the
   * lines written whole count as spooled, the others as dropped. A file that ends in part of a
   * line is closed, so that the next line does not continue it; the sidecar drains it.
   */
  private failBatch(batch: Batch, written: number, err: unknown, sync: boolean): void {
    const whole = countLines(batch.data, written);
    this.stats.spooled += whole;
    this.stats.bytesOnDisk += written;
    this.fileBytes += written;
    this.countFailed(batch, whole);
    this.stats.writeErrors++;
    this.logError('spool write failed, lines dropped (reconciliation backfill recovers them)', err, sync);
    this.knownDirBytes = null;
    if (written > 0 && batch.data[written - 1] !== 0x0a) this.abandonFile(sync);
    this.writing = false;
  }

  /** Counts the batch's lines past the first `kept` as dropped (the lines sent before last, as "maybe"). */
  private countFailed(batch: Batch, kept: number): void {
    const failed = batch.lines - kept;
    // Which of the failed lines had been sent is not known: counting the sent ones first keeps
    // `dropped` a lower bound and `dropped + droppedAfterSend` an upper bound of what is lost.
    const sent = Math.min(batch.sent, failed);
    this.stats.droppedAfterSend += sent;
    this.stats.dropped += failed - sent;
  }

  private abandonFile(sync: boolean): void {
    if (this.fd === null) return;
    const fd = this.fd;
    const path = this.path;
    this.fd = null;
    const ready = readySpoolPath(path);
    if (sync) {
      try {
        fs.closeSync(fd);
        fs.renameSync(path, ready);
      } catch {
        /* left as .open: the sidecar drains it once this process is gone */
      }
      return;
    }
    fs.close(fd, () => fs.rename(path, ready, () => {}));
  }

  private closeFileAsync(): void {
    this.closeRequested = false;
    if (this.fd === null) {
      this.writing = false;
      return;
    }
    const fd = this.fd;
    const path = this.path;
    this.fd = null;
    fs.fsync(fd, () => {
      fs.close(fd, () => {
        fs.rename(path, readySpoolPath(path), (err) => {
          if (err) this.logError('spool rename failed', err);
          this.knownDirBytes = null; // the sidecar may have drained files meanwhile
          this.writeBatch();
        });
      });
    });
  }

  private fsyncIfDirty(): void {
    if (!this.dirty || this.fd === null) return;
    this.dirty = false;
    fs.fsync(this.fd, (err) => {
      if (err) this.logError('spool fsync failed', err);
    });
  }

  private measureDir(): number {
    let total = 0;
    try {
      for (const name of fs.readdirSync(this.dir)) {
        try {
          total += fs.statSync(join(this.dir, name)).size;
        } catch {
          /* drained meanwhile */
        }
      }
    } catch {
      /* no spool dir yet */
    }
    return total;
  }

  /** Rate-limited, except at exit (`always`), where it is the last word. */
  private logError(msg: string, err: unknown, always = false): void {
    const now = Date.now();
    if (!always && now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.log.error({ err, spoolDir: this.dir, dropped: this.stats.dropped, droppedAfterSend: this.stats.droppedAfterSend }, msg);
  }
}

/** Whole lines (newlines) in the first `end` bytes. */
function countLines(data: Buffer, end: number): number {
  let n = 0;
  for (let i = data.indexOf(0x0a); i >= 0 && i < end; i = data.indexOf(0x0a, i + 1)) n++;
  return n;
}

/** write(2) until all of `data` is written; a full disk writes part of it, then fails. */
function writeAll(fd: number, data: Buffer, off: number, cb: (err: Error | null, written: number) => void): void {
  fs.write(fd, data, off, data.length - off, null, (err, n) => {
    if (err) return cb(err, off);
    if (n <= 0) return cb(new Error('spool write wrote nothing'), off);
    if (off + n < data.length) return writeAll(fd, data, off + n, cb);
    cb(null, off + n);
  });
}
