// A read-only abstract-chunk-store over a bundle's data file (docs/protocol.md §6: the torrent's
// files concatenated), so WebTorrent seeds a bundle of any number of authors from one file.
import { close, open, read } from 'node:fs';

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

  constructor(chunkLength: number, opts: { length: number; dataPath: string }) {
    if (!opts?.dataPath) throw new Error('BundleDataStore needs storeOpts.dataPath');
    this.chunkLength = chunkLength;
    this.length = opts.length;
    this.path = opts.dataPath;
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

  put(index: number, _buf: Buffer, cb: Cb = () => {}): void {
    queueMicrotask(() => cb(new Error(`bundle data is read-only (chunk ${index})`)));
  }

  close(cb: Cb = () => {}): void {
    this.closed = true;
    this.release();
    queueMicrotask(() => cb(null));
  }

  /** The data file belongs to the bundler, which deletes it when the bundle is retired. */
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
    open(this.path, 'r', (err, fd) => {
      const waiting = this.opening!;
      this.opening = null;
      if (!err && this.closed) close(fd, () => {});
      else if (!err) this.fd = fd;
      for (const w of waiting) err ? w(err) : this.closed ? w(new Error('store closed')) : w(null, fd);
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
