// An abstract-chunk-store over a bundle's data file (docs/protocol.md §6: the torrent's files
// concatenated), so WebTorrent seeds a bundle of any number of authors from one file. Read-only
// for seeding; with `writable` (a mirror downloading a bundle) the file is created at its full
// length on first use and chunks are written in place.
import { close, ftruncate, open, read, write } from 'node:fs';

const IDLE_CLOSE_MS = 30_000;

type Cb<T = void> = (err: Error | null, value?: T) => void;

export class BundleDataStore {
  readonly chunkLength: number;
  private readonly length: number;
  private readonly path: string;
  private fd: number | null = null;
  private opening: Cb<number>[] | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private inFlight = 0;
  private readonly writable: boolean;
  /** Writable: the file was created (and sized) by this store; a reopen after idling must not truncate it. */
  private created = false;

  constructor(chunkLength: number, opts: { length: number; dataPath: string; writable?: boolean }) {
    if (!opts?.dataPath) throw new Error('BundleDataStore needs storeOpts.dataPath');
    this.chunkLength = chunkLength;
    this.length = opts.length;
    this.path = opts.dataPath;
    this.writable = opts.writable === true;
  }

  get(index: number, opts: { offset?: number; length?: number } | null | Cb<Buffer>, cb?: Cb<Buffer>): void {
    if (typeof opts === 'function') return void this.get(index, null, opts);
    const done = cb ?? (() => {});
    const start = index * this.chunkLength;
    const chunkLen = Math.min(this.chunkLength, this.length - start);
    const offset = opts?.offset ?? 0;
    const len = opts?.length ?? chunkLen - offset;
    if (start < 0 || chunkLen <= 0 || offset < 0 || len < 0 || offset + len > chunkLen) {
      return void queueMicrotask(() => done(new Error(`chunk ${index} [${offset}, +${len}) out of range`)));
    }
    this.withFd((err, fd) => {
      if (err) return done(err);
      const buf = Buffer.allocUnsafe(len);
      this.inFlight++;
      const finish = (e: Error | null) => {
        this.inFlight--;
        if (this.inFlight === 0 && (this.closed || this.idleTimer === null)) this.release();
        e ? done(e) : done(null, buf);
      };
      const fill = (got: number): void => {
        if (got === len) return void finish(null);
        read(fd!, buf, got, len - got, start + offset + got, (e, n) => {
          if (e) return finish(e);
          if (n === 0) return finish(new Error(`bundle data ${this.path} is truncated`));
          fill(got + n);
        });
      };
      fill(0);
    });
  }

  put(index: number, buf: Uint8Array, cb: Cb = () => {}): void {
    if (!this.writable) return void queueMicrotask(() => cb(new Error(`bundle data is read-only (chunk ${index})`)));
    const at = index * this.chunkLength;
    if (at < 0 || at + buf.length > this.length) return void queueMicrotask(() => cb(new Error(`chunk ${index} out of range`)));
    this.withFd((err, fd) => {
      if (err) return cb(err);
      this.inFlight++;
      const finish = (e: Error | null) => {
        this.inFlight--;
        if (this.inFlight === 0 && (this.closed || this.idleTimer === null)) this.release();
        cb(e);
      };
      const step = (done: number): void => {
        if (done === buf.length) return void finish(null);
        write(fd!, buf, done, buf.length - done, at + done, (e, n) => (e ? finish(e) : step(done + n)));
      };
      step(0);
    });
  }

  close(cb: Cb = () => {}): void {
    this.closed = true;
    this.release();
    queueMicrotask(() => cb(null));
  }

  /** The data file belongs to the bundler (or the mirror), which deletes it when the bundle is retired. */
  destroy(cb: Cb = () => {}): void {
    this.close(cb);
  }

  /** Opened on first read and closed when idle, so a thousand idle bundles hold no descriptors. */
  private withFd(cb: Cb<number>): void {
    if (this.closed) return void queueMicrotask(() => cb(new Error('store closed')));
    this.touch();
    if (this.fd !== null) return void cb(null, this.fd);
    if (this.opening) return void this.opening.push(cb);
    this.opening = [cb];
    const creating = this.writable && !this.created;
    open(this.path, this.writable ? (creating ? 'w+' : 'r+') : 'r', (err, fd) => {
      const opened = (e: Error | null) => {
        const waiting = this.opening!;
        this.opening = null;
        if (!e && this.closed) close(fd, () => {});
        else if (!e) this.fd = fd;
        else if (!err) close(fd, () => {});
        for (const w of waiting) e ? w(e) : this.closed ? w(new Error('store closed')) : w(null, fd);
      };
      if (err || !creating) return opened(err);
      ftruncate(fd, this.length, (e) => {
        if (!e) this.created = true;
        opened(e);
      });
    });
  }

  private touch(): void {
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => this.release(), IDLE_CLOSE_MS);
      this.idleTimer.unref();
    }
  }

  /** Closes the descriptor, or lets the last read in flight close it (never reuse a closed fd number). */
  private release(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.fd !== null && this.inFlight === 0) {
      close(this.fd, () => {});
      this.fd = null;
    }
  }
}
