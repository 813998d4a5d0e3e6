// What one reader process holds while it reads: its DHT node and its torrent client (with a temp
// directory for downloaded pieces). Shared by every author a crawl resolves, so bundle metadata
// and pieces fetched for one author serve the next.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type DHT from 'bittorrent-dht';
import { BundleFetcher } from './bundle-fetch.js';
import { startReaderDht, stopReaderDht } from './reader-dht.js';
import { initSignatureCheck } from './verify-events.js';

export interface ReaderContextOptions {
  bootstrap: string[];
  /** Address the DHT node binds (default all interfaces). */
  bindHost?: string;
  /** Parent of the temp directory for downloaded pieces (default the OS temp dir). */
  tmpDir?: string;
  utp?: boolean;
  dhtReadyTimeoutMs?: number;
  /** DHT packets per second to any one node (default 5, as the bridge's node). */
  maxPacketsPerSecondPerNode?: number;
  /** Per DHT query (default bittorrent-dht's 2 s). */
  dhtQueryTimeoutMs?: number;
  /** Upload limit (bytes/s) while serving other readers. */
  uploadLimit?: number;
}

export class ReaderContext {
  private constructor(
    readonly dht: DHT,
    readonly fetcher: BundleFetcher,
  ) {}

  static async open(opts: ReaderContextOptions): Promise<ReaderContext> {
    // The DHT node starts first (its bootstrap queries go out, then it waits on the network) and
    // the signature check loads meanwhile (~1 s of CPU on a busy machine).
    const starting = startReaderDht({
      bootstrap: opts.bootstrap,
      host: opts.bindHost,
      readyTimeoutMs: opts.dhtReadyTimeoutMs,
      maxPacketsPerSecondPerNode: opts.maxPacketsPerSecondPerNode,
      queryTimeoutMs: opts.dhtQueryTimeoutMs,
    });
    const check = initSignatureCheck();
    check.catch(() => {}); // awaited below, once the DHT node is up (and stopped if this failed)
    const dht = await starting;
    try {
      await check;
      const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'nostr-bt-reader-'));
      const fetcher = await BundleFetcher.start(dht, { dir, utp: opts.utp, uploadLimit: opts.uploadLimit });
      return new ReaderContext(dht, fetcher);
    } catch (err) {
      await stopReaderDht(dht);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.fetcher.close();
    await stopReaderDht(this.dht);
  }
}
