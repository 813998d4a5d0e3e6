// The events' canonical JSON, outside LMDB: one append-only file (`<indexDir>/events.log`, one
// line per event) read with pread. LMDB keeps each event's offset and length. Kept out of the
// memory map, the bulk of the index never counts in the sidecar's RSS (every page of a mapped
// file that was ever read stays resident), and LMDB stays a few hundred bytes per event.
//
// A batch's lines are written and fdatasync'ed before its index transaction, on libuv's thread
// pool (`writeAhead`), so the main thread never waits for the disk; the rare line the transaction
// finds it must index without having been written ahead is appended and synced inside it
// (`append`, `flush`). Either way an index that survives a crash never points past the log's
// durable end. Offsets only grow while the process runs (a failed batch, or a line written ahead
// that the transaction refused, leaves a hole); at start the log continues at the end the index
// last committed, overwriting anything unreferenced.
import { closeSync, existsSync, fdatasync, fdatasyncSync, openSync, write, writeSync, writev } from 'node:fs';
import { promisify } from 'node:util';
import { readFullyAt } from '../common/read-at.js';

const writeAsync = promisify(write);
const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);

export interface LogRef {
  /** Byte offset of the line. */
  o: number;
  /** Its length, newline included. */
  n: number;
}

export class EventLog {
  private fd: number | null;
  private pending: Buffer[] = [];
  private scratch = Buffer.allocUnsafeSlow(64 * 1024);
  private pendingStart = 0;
  private nextOffset: number;
  /** Cuts reading the log on another thread (holdBlanking), and the removed lines waiting for them. */
  private blankHolds = 0;
  private heldBlanks: LogRef[] = [];

  constructor(
    readonly path: string,
    committedEnd: number,
    readOnly: boolean,
  ) {
    this.nextOffset = committedEnd;
    this.fd = readOnly ? (existsSync(path) ? openSync(path, 'r') : null) : openSync(path, existsSync(path) ? 'r+' : 'w+', 0o640);
  }

  /** Where the next event goes: the value to commit as the log's end with the batch. */
  get end(): number {
    return this.nextOffset;
  }

  /**
   * Reserves the next bytes for these runs of whole lines (JSON and newline each), then writes
   * and syncs them off the main thread, as they are (no copy); resolves with the first run's
   * offset (the others follow it). Rejects (ENOSPC, EIO) if they are not durable; their range is
   * then a hole. The runs must not change until it settles.
   */
  writeAhead(runs: readonly Uint8Array[]): Promise<number> {
    if (this.fd === null) return Promise.reject(new Error(`event log ${this.path} is closed`));
    let total = 0;
    for (const r of runs) total += r.length;
    const at = this.nextOffset;
    this.nextOffset += total;
    return this.persist(this.fd, runs, total, at).then(() => at);
  }

  private async persist(fd: number, runs: readonly Uint8Array[], total: number, at: number): Promise<void> {
    const done = (await writevAsync(fd, runs as Uint8Array[], at)).bytesWritten;
    // A short write (rare: a signal, a nearly full disk) goes on from where it stopped.
    if (done < total) {
      const rest = Buffer.concat(runs).subarray(done);
      for (let off = 0; off < rest.length; ) off += (await writeAsync(fd, rest, off, rest.length - off, at + done + off)).bytesWritten;
    }
    await fdatasyncAsync(fd);
  }

  /** Queues one event's line (its JSON and newline, copied); written by `flush`. */
  append(line: Uint8Array): LogRef {
    if (this.pending.length === 0) this.pendingStart = this.nextOffset;
    const buf = Buffer.from(line);
    const ref = { o: this.nextOffset, n: buf.length };
    this.pending.push(buf);
    this.nextOffset += buf.length;
    return ref;
  }

  /** Writes and syncs the queued lines; throws (ENOSPC, EIO) so the transaction aborts. */
  flush(): void {
    if (this.pending.length === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const at = this.pendingStart;
    this.pending = [];
    writeFully(this.fd!, data, at);
    fdatasyncSync(this.fd!);
  }

  /** Forgets queued lines of a transaction that did not happen (their offsets become a hole). */
  discard(): void {
    this.pending = [];
  }

  /**
   * One event's canonical JSON. Read through one reused buffer: merges and cuts read events one
   * by one, and a fresh buffer per event is garbage outside the V8 heap that piles up until a GC.
   */
  read(ref: LogRef): string {
    const length = ref.n - 1;
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * this.scratch.length));
    return this.readInto(this.scratch, ref.o, length).toString('utf8', 0, length);
  }

  private readInto(buf: Buffer, offset: number, length: number): Buffer {
    const got = this.fd === null ? 0 : readFullyAt(this.fd, buf, length, offset);
    if (got < length) throw new Error(`event log ${this.path}: ${length} bytes at ${offset} are past its end`);
    return buf;
  }

  /** Overwrites a removed event's bytes with spaces, so deleted content does not linger on disk. */
  blank(ref: LogRef): void {
    if (this.fd === null || ref.n <= 1) return;
    writeFully(this.fd, Buffer.alloc(ref.n - 1, 0x20), ref.o);
  }

  /**
   * Holds back the blanking of removed events' lines until the returned function is called: a
   * cut built on another thread reads the log meanwhile, and must see each line whole or blank.
   */
  holdBlanking(): () => void {
    this.blankHolds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.blankHolds > 0) return;
      const held = this.heldBlanks;
      this.heldBlanks = [];
      this.blankAll(held);
    };
  }

  /** Blanks the lines of events whose removal committed: now, or when the last hold is released. */
  blankRemoved(refs: LogRef[]): void {
    if (this.blankHolds > 0) for (const ref of refs) this.heldBlanks.push(ref);
    else this.blankAll(refs);
  }

  private blankAll(refs: LogRef[]): void {
    for (const ref of refs) {
      try {
        this.blank(ref);
      } catch {
        /* best effort: a full disk must not fail a committed batch */
      }
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function writeFully(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}
