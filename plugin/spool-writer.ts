// Append-only on-disk spool for lines the sidecar could not take right now. Writes are batched
// and asynchronous (the answer to strfry never waits on the disk); fsync is batched on a timer.
// A file is written as `<ms>-<pid>-<n>.open` and renamed to `.ready` when closed; the sidecar
// drains `.ready` files, and `.open` files whose writer is gone. See docs/protocol.md.
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

export interface SpoolOptions {
  maxBytes: number;
  fsyncIntervalMs: number;
  rotateBytes: number;
}

/** strfry sends one line at a time: gather a few ms of lines into one write. */
const FLUSH_DELAY_MS = 5;
const FLUSH_NOW_BYTES = 256 * 1024;

export interface SpoolStats {
  spooled: number;
  /** Lines the sidecar never got: lost until reconciliation recovers them. */
  dropped: number;
  /** Lines already sent to the sidecar, unacknowledged when the connection closed: maybe archived. */
  droppedAfterSend: number;
  writeErrors: number;
  bytesOnDisk: number;
}

export class SpoolWriter {
  readonly stats: SpoolStats = { spooled: 0, dropped: 0, droppedAfterSend: 0, writeErrors: 0, bytesOnDisk: 0 };
  private fd: number | null = null;
  private path = '';
  private fileBytes = 0;
  private fileSeq = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Bytes handed to the running write: on disk soon, and counted against the bound meanwhile. */
  private writingBytes = 0;
  private writing = false;
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
    this.stats.spooled++;
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

  /** Synchronous flush + close, for process exit. */
  flushSync(): void {
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    this.fsyncTimer = null;
    try {
      if (this.pending.length > 0) {
        const data = this.takePending();
        this.ensureFileSync();
        fs.writeSync(this.fd!, data);
      }
      this.finishFileSync();
    } catch (err) {
      this.stats.writeErrors++;
      this.logError('spool flush at exit failed', err);
    }
  }

  private takePending(): string {
    const data = this.pending.join('\n') + '\n';
    this.pending = [];
    this.pendingBytes = 0;
    return data;
  }

  private ensureFileSync(): void {
    if (this.fd !== null) return;
    // mkdir applies the umask and never sets setgid: set the mode the sidecar's group needs.
    if (fs.mkdirSync(this.dir, { recursive: true, mode: 0o2770 }) !== undefined) {
      try {
        fs.chmodSync(this.dir, 0o2770);
      } catch {
        /* not ours to change: the directory works as created */
      }
    }
    this.path = join(this.dir, `${Date.now()}-${process.pid}-${this.fileSeq++}.open`);
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
    fs.renameSync(this.path, this.path.replace(/\.open$/, '.ready'));
    this.dirty = false;
  }

  private writeBatch(): void {
    if (this.pending.length === 0) {
      if (this.closeRequested || this.fileBytes >= this.opts.rotateBytes) this.closeFileAsync();
      else this.writing = false;
      return;
    }
    const data = this.takePending();
    const bytes = Buffer.byteLength(data);
    const lines = countLines(data);
    try {
      this.ensureFileSync();
    } catch (err) {
      this.failBatch(lines, err);
      return;
    }
    this.writingBytes = bytes;
    fs.write(this.fd!, data, (err) => {
      this.writingBytes = 0;
      if (err) {
        this.failBatch(lines, err);
        return;
      }
      this.fileBytes += bytes;
      this.stats.bytesOnDisk += bytes;
      if (this.knownDirBytes !== null) this.knownDirBytes += bytes;
      this.dirty = true;
      this.writeBatch();
    });
  }

  private failBatch(lines: number, err: unknown): void {
    this.stats.spooled -= lines;
    this.stats.dropped += lines;
    this.stats.writeErrors++;
    this.logError('spool write failed, lines dropped (reconciliation backfill recovers them)', err);
    this.writing = false;
    this.knownDirBytes = null;
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
        fs.rename(path, path.replace(/\.open$/, '.ready'), (err) => {
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

  private logError(msg: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = now;
    this.log.error({ err, spoolDir: this.dir, dropped: this.stats.dropped }, msg);
  }
}

function countLines(data: string): number {
  let n = 0;
  for (let i = data.indexOf('\n'); i >= 0; i = data.indexOf('\n', i + 1)) n++;
  return n;
}
