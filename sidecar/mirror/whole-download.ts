// Downloading whole torrents (another bridge's bundles and catalog) into one data file each, in
// the bundle layout of docs/protocol.md §6 (`<ih>.data`: the files concatenated, `<ih>.torrent`:
// bencode({info})), so the seeder serves them exactly as it serves the bridge's own bundles.
//
// The torrent is added with nothing selected: its metadata (size-limited before it is accepted)
// is checked by the caller first, and only then is every piece requested. WebTorrent checks each
// piece's SHA-1; the download is bounded in bytes, time and rate (the client's download limit).
//
// Peers come from the DHT and from hints (peers that served the same origin's catalog or bundles:
// one origin seeds them all, so no lookup is waited for). With the origin's gateway known, the
// `.torrent` is fetched from it first (docs/protocol.md §11 "Mirrors") and its web seed joins the
// swarm, so a mirror catches up over HTTP when no BitTorrent peer is reachable.
import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type DHT from 'bittorrent-dht';
import bencode from 'bencode';
import WebTorrent, { type Torrent, type Wire } from '../common/webtorrent.js';
import { installNoDelay } from '../common/tcp-no-delay.js';
import { BundleDataStore } from '../seeding/data-store.js';

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
  | {
      ok: true;
      meta: TorrentMeta;
      dataPath: string;
      torrent: Buffer;
      bytes: number;
      /** Peers dialled that completed a handshake (`host:port`): hints for the same origin's next downloads. */
      peers: string[];
      /** Whether the web seed was in the swarm (the `.torrent` came from the gateway). */
      webSeed: boolean;
    }
  | { ok: false; reason: DownloadFailure; detail: string };

export interface DownloadLimits {
  maxMetadataBytes: number;
  maxBytes: number;
  timeoutMs: number;
}

export interface DownloadSources {
  /** `host:port` of peers likely to have it (at most MAX_HINTS are dialled). */
  peers?: readonly string[];
  /** The origin's gateway base URL: `<gateway>/torrent/<ih>.torrent` and the web seed `<gateway>/webseed/<ih>/`. */
  gateway?: string | null;
  /** The gateway did not answer (network error or timeout, not a 404): the caller may stop asking it for a while. */
  onGatewayDown?: () => void;
}

const MAX_HINTS = 8;
/** The `.torrent` from a gateway: asked for before the swarm starts, so bounded tighter than the download. */
const TORRENT_FETCH_MS = 10_000;

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
      webSeeds: true,
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
    sources: DownloadSources = {},
  ): Promise<DownloadResult> {
    if (this.closed) return { ok: false, reason: 'aborted', detail: 'closed' };
    await mkdir(dir, { recursive: true });
    const fromGateway = sources.gateway
      ? await fetchTorrent(sources.gateway, infoHash, limits.maxMetadataBytes, signal, sources.onGatewayDown)
      : null;
    if (this.closed) return { ok: false, reason: 'aborted', detail: 'closed' };
    const peers = new Set<string>();
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
      const t = (torrent = this.client.add(fromGateway ?? `magnet:?xt=urn:btih:${infoHash}`, {
        path: dir,
        deselect: true,
        announce: [],
        store: BundleDataStore,
        storeOpts: { dataPath: partPath, writable: true },
        storeCacheSlots: 0,
      } as never));
      t.on('error', (err: Error) => finish({ ok: false, reason: 'error', detail: err.message }));
      for (const p of (sources.peers ?? []).slice(0, MAX_HINTS)) {
        try {
          t.addPeer(p);
        } catch {
          /* a malformed hint */
        }
      }
      t.on('wire', (wire: Wire, addr?: string) => {
        if (addr && /Outgoing$/.test((wire as unknown as { type?: string }).type ?? '')) peers.add(addr);
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
            peers: [...peers],
            webSeed: fromGateway !== null,
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

/**
 * `<gateway>/torrent/<ih>.torrent`, with the gateway's web seed as its only `url-list` entry, or
 * null (not served, too large, another info dict: the swarm then finds the metadata itself).
 */
async function fetchTorrent(
  gateway: string,
  infoHash: string,
  maxMetadataBytes: number,
  signal?: AbortSignal,
  onDown?: () => void,
): Promise<Buffer | null> {
  const limit = AbortSignal.timeout(TORRENT_FETCH_MS);
  try {
    let res: Response;
    try {
      res = await fetch(`${gateway}/torrent/${infoHash}.torrent`, {
        redirect: 'error',
        signal: signal ? AbortSignal.any([signal, limit]) : limit,
      });
    } catch (err) {
      if (!signal?.aborted) onDown?.();
      throw err;
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel().catch(() => {});
      return null;
    }
    // The .torrent is bencode({info, url-list}): a little more than the info dict.
    const max = maxMetadataBytes + 4096;
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      n += chunk.length;
      if (n > max) return null;
      chunks.push(Buffer.from(chunk));
    }
    const decoded = bencode.decode(Buffer.concat(chunks)) as { info?: unknown };
    if (!decoded || typeof decoded !== 'object' || !decoded.info || typeof decoded.info !== 'object') return null;
    const info = Buffer.from(bencode.encode(decoded.info));
    if (createHash('sha1').update(info).digest('hex') !== infoHash) return null;
    return Buffer.concat([
      Buffer.from('d4:info'),
      info,
      Buffer.from(bencode.encode({ 'url-list': [`${gateway}/webseed/${infoHash}/`] }).subarray(1)),
    ]);
  } catch {
    return null;
  }
}
