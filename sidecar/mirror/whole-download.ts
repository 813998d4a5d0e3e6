// Downloading whole torrents (another bridge's bundles and catalog) into one data file each, in
// the bundle layout of docs/protocol.md §6 (`<ih>.data`: the files concatenated, `<ih>.torrent`:
// bencode({info})), so the seeder serves them exactly as it serves the bridge's own bundles.
//
// The torrent is added with nothing selected: its metadata (size-limited before it is accepted)
// is checked by the caller first, and only then is every piece requested. WebTorrent checks each
// piece's SHA-1; the download is bounded in bytes, time and rate (the client's download limit).
import { createHash } from 'node:crypto';
import { close, ftruncate, open, read, write } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type DHT from 'bittorrent-dht';
import WebTorrent, { type Torrent, type Wire } from '../common/webtorrent.js';
import { installNoDelay } from '../common/tcp-no-delay.js';

type Cb<T = void> = (err: Error | null, value?: T) => void;

/** An abstract-chunk-store writing one file (the torrent's bytes in order), opened on first use. */
export class DataFileStore {
  readonly chunkLength: number;
  private readonly length: number;
  private readonly path: string;
  private fd: number | null = null;
  private opening: Cb<number>[] | null = null;
  private closed = false;

  constructor(chunkLength: number, opts: { length: number; dataPath: string }) {
    if (!opts?.dataPath) throw new Error('DataFileStore needs storeOpts.dataPath');
    this.chunkLength = chunkLength;
    this.length = opts.length;
    this.path = opts.dataPath;
  }

  private withFd(cb: Cb<number>): void {
    if (this.closed) return void queueMicrotask(() => cb(new Error('store closed')));
    if (this.fd !== null) return void cb(null, this.fd);
    if (this.opening) return void this.opening.push(cb);
    this.opening = [cb];
    open(this.path, 'w+', (err, fd) => {
      const waiting = this.opening!;
      this.opening = null;
      if (err) {
        for (const w of waiting) w(err);
        return;
      }
      ftruncate(fd, this.length, (e) => {
        if (e) {
          close(fd, () => {});
          for (const w of waiting) w(e);
          return;
        }
        if (this.closed) {
          close(fd, () => {});
          for (const w of waiting) w(new Error('store closed'));
          return;
        }
        this.fd = fd;
        for (const w of waiting) w(null, fd);
      });
    });
  }

  put(index: number, buf: Uint8Array, cb: Cb = () => {}): void {
    const at = index * this.chunkLength;
    if (at < 0 || at + buf.length > this.length) return void queueMicrotask(() => cb(new Error(`chunk ${index} out of range`)));
    this.withFd((err, fd) => {
      if (err) return cb(err);
      const step = (done: number): void => {
        if (done === buf.length) return void cb(null);
        write(fd!, buf, done, buf.length - done, at + done, (e, n) => (e ? cb(e) : step(done + n)));
      };
      step(0);
    });
  }

  get(index: number, opts: { offset?: number; length?: number } | null | Cb<Buffer>, cb?: Cb<Buffer>): void {
    if (typeof opts === 'function') return void this.get(index, null, opts);
    const done = cb ?? (() => {});
    const start = index * this.chunkLength;
    const chunkLen = Math.min(this.chunkLength, this.length - start);
    const offset = opts?.offset ?? 0;
    const len = opts?.length ?? chunkLen - offset;
    if (start < 0 || chunkLen <= 0 || offset < 0 || len < 0 || offset + len > chunkLen)
      return void queueMicrotask(() => done(new Error(`chunk ${index} out of range`)));
    this.withFd((err, fd) => {
      if (err) return done(err);
      const b = Buffer.allocUnsafe(len);
      const fill = (got: number): void => {
        if (got === len) return void done(null, b);
        read(fd!, b, got, len - got, start + offset + got, (e, n) =>
          e ? done(e) : n === 0 ? done(new Error('short read')) : fill(got + n),
        );
      };
      fill(0);
    });
  }

  close(cb: Cb = () => {}): void {
    this.closed = true;
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return void queueMicrotask(() => cb(null));
    close(fd, () => cb(null));
  }

  /** The data file belongs to the caller (kept once complete, removed otherwise). */
  destroy(cb: Cb = () => {}): void {
    this.close(cb);
  }
}

export interface TorrentMeta {
  name: string;
  files: { name: string; path: string; length: number }[];
  length: number;
  pieceLength: number;
  /** The info dict's bytes (SHA-1 = the infohash). */
  info: Buffer;
}

export type DownloadFailure = 'timeout' | 'no-peers' | 'metadata-too-large' | 'refused' | 'too-large' | 'error' | 'aborted';

export type DownloadResult =
  | { ok: true; meta: TorrentMeta; dataPath: string; torrent: Buffer; bytes: number }
  | { ok: false; reason: DownloadFailure; detail: string };

export interface DownloadLimits {
  maxMetadataBytes: number;
  maxBytes: number;
  timeoutMs: number;
}

export class WholeDownloader {
  private readonly client: WebTorrent;
  private closed = false;

  private constructor(client: WebTorrent) {
    this.client = client;
  }

  static async start(dht: DHT | null, opts: { downloadBytesPerSecond: number; maxConns: number }): Promise<WholeDownloader> {
    installNoDelay();
    const client = new WebTorrent({
      dht: false,
      tracker: false,
      lsd: false,
      utPex: true,
      natUpnp: false,
      natPmp: false,
      webSeeds: false,
      utp: false,
      torrentPort: 0,
      maxConns: opts.maxConns,
      secure: 0,
      ...(opts.downloadBytesPerSecond > 0 ? { downloadLimit: opts.downloadBytesPerSecond } : {}),
    } as ConstructorParameters<typeof WebTorrent>[0]);
    if (dht) client.dht = dht;
    client.on('error', () => {});
    await new Promise<void>((resolve) => (client.listening ? resolve() : client.once('listening', () => resolve())));
    return new WholeDownloader(client);
  }

  /** Bytes of piece data received over all downloads (for the bandwidth figures). */
  received = 0;

  /**
   * Downloads torrent `infoHash` whole into `<dir>/<ih>.data` (+ `.torrent`). `accept` sees the
   * metadata first and may refuse it (a reason string): nothing but the metadata is fetched then.
   */
  async download(
    infoHash: string,
    dir: string,
    limits: DownloadLimits,
    accept: (meta: TorrentMeta) => string | null,
    signal?: AbortSignal,
  ): Promise<DownloadResult> {
    if (this.closed) return { ok: false, reason: 'aborted', detail: 'closed' };
    await mkdir(dir, { recursive: true });
    const dataPath = `${dir}/${infoHash}.data`;
    const partPath = `${dataPath}.part`;
    let oversized = 0;
    let torrent: Torrent | null = null;
    let timer: NodeJS.Timeout | undefined;
    let lookup: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const outcome = await new Promise<DownloadResult>((resolve) => {
      const finish = (r: DownloadResult) => resolve(r);
      timer = setTimeout(() => {
        const t = torrent as unknown as { files?: unknown[]; numPeers?: number; progress?: number } | null;
        if (oversized > 0 && !t?.files?.length)
          finish({
            ok: false,
            reason: 'metadata-too-large',
            detail: `${oversized} peer(s) announced metadata above ${limits.maxMetadataBytes} bytes`,
          });
        else if (!t?.numPeers && !t?.files?.length) finish({ ok: false, reason: 'no-peers', detail: 'no peer found in time' });
        else finish({ ok: false, reason: 'timeout', detail: `not complete in time (${Math.round((t?.progress ?? 0) * 100)}%)` });
      }, limits.timeoutMs);
      onAbort = () => finish({ ok: false, reason: 'aborted', detail: 'aborted' });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const t = (torrent = this.client.add(`magnet:?xt=urn:btih:${infoHash}`, {
        path: dir,
        deselect: true,
        announce: [],
        store: DataFileStore,
        storeOpts: { dataPath: partPath },
        storeCacheSlots: 0,
      } as never));
      t.on('error', (err: Error) => finish({ ok: false, reason: 'error', detail: err.message }));
      t.on('wire', (wire: Wire) => {
        wire.on('extended', (ext: string, hs: { metadata_size?: unknown }) => {
          if (ext !== 'handshake' || t.files?.length) return;
          if (typeof hs?.metadata_size === 'number' && hs.metadata_size > limits.maxMetadataBytes) {
            oversized++;
            (wire as unknown as { destroy(): void }).destroy();
          }
        });
      });
      // torrent-discovery looks up once; look again while no peer is found.
      let attempt = 0;
      const again = () => {
        lookup = setTimeout(
          () => {
            if ((t as unknown as { destroyed?: boolean }).destroyed || t.numPeers > 0) return;
            const dht = this.client.dht as DHT | null;
            if (dht && !dht.destroyed) dht.lookup(infoHash);
            attempt++;
            again();
          },
          Math.min(8000, 500 * 2 ** attempt),
        );
        lookup.unref();
      };
      again();
      t.once('metadata', () => {
        const tt = t as unknown as { infoBuffer?: Uint8Array; pieceLength: number; length: number };
        const info = Buffer.from(tt.infoBuffer ?? new Uint8Array());
        if (createHash('sha1').update(info).digest('hex') !== infoHash)
          return finish({ ok: false, reason: 'refused', detail: 'info dict does not hash to the infohash' });
        if (info.length > limits.maxMetadataBytes)
          return finish({ ok: false, reason: 'metadata-too-large', detail: `metadata is ${info.length} bytes` });
        const meta: TorrentMeta = {
          name: t.name,
          files: t.files.map((f) => ({ name: f.name, path: f.path, length: f.length })),
          length: tt.length,
          pieceLength: tt.pieceLength,
          info,
        };
        if (meta.length > limits.maxBytes)
          return finish({ ok: false, reason: 'too-large', detail: `${meta.length} bytes > ${limits.maxBytes}` });
        const problem = accept(meta);
        if (problem) return finish({ ok: false, reason: 'refused', detail: problem });
        const whenDone = () =>
          finish({
            ok: true,
            meta,
            dataPath,
            torrent: Buffer.concat([Buffer.from('d4:info'), info, Buffer.from('e')]),
            bytes: meta.length,
          });
        if (t.done) return whenDone();
        t.once('done', whenDone);
        for (const f of t.files) f.select();
      });
    });
    clearTimeout(timer);
    clearTimeout(lookup);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    if (torrent) {
      const t = torrent as Torrent;
      this.received += (t as unknown as { received?: number }).received ?? 0;
      await new Promise<void>((resolve) =>
        (t as unknown as { destroyed?: boolean }).destroyed ? resolve() : t.destroy({ destroyStore: true }, () => resolve()),
      );
    }
    if (!outcome.ok) {
      await rm(partPath, { force: true });
      return outcome;
    }
    await rename(partPath, dataPath);
    await writeFile(`${dir}/${infoHash}.torrent`, outcome.torrent);
    return outcome;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.dht = null; // the DHT node belongs to the sidecar
    await new Promise<void>((resolve) => this.client.destroy(() => resolve()));
  }
}
