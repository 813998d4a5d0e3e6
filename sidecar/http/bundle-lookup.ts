// What the gateway reads about seeded bundles, in one place: the index's bundle records (active
// ones only: a retired bundle's files are deleted) and each author's file in a bundle's data file.
// Every read goes through the Store's public methods of today, so a change there touches only this.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleRecord, Store } from '../index/store.js';
import type { CatalogFiles } from '../bundles/catalog.js';

export interface SeededBundle {
  ih: string;
  /** The torrent's name (the folder its files are saved in). */
  name: string;
  /** Size of the data file (the torrent's files concatenated). */
  bytes: number;
  authors: number;
  events: number;
  dataPath: string;
}

export interface FileSpan {
  offset: number;
  length: number;
}

export class BundleLookup {
  constructor(
    private readonly store: Store,
    /** bundle.dir: `<ih>.torrent` and `<ih>.data`, as the bundler writes them. */
    private readonly root: string,
    /** The current catalog (docs/protocol.md §11), served like a bundle so a mirror can fetch it over HTTP. */
    private readonly catalog: () => CatalogFiles | null = () => null,
  ) {}

  /** The active bundle (or the current catalog) with this infohash (40 lowercase hex), or undefined. */
  seeded(ih: string): SeededBundle | undefined {
    const b: BundleRecord | undefined = this.store.bundles.get(ih);
    if (b?.state !== 'active') {
      const c = this.catalog();
      return c?.ih === ih ? { ih, name: c.name, bytes: c.bytes, authors: 0, events: 0, dataPath: c.dataPath } : undefined;
    }
    return { ih, name: b.name, bytes: b.bytes, authors: b.authors, events: b.events, dataPath: join(this.root, `${ih}.data`) };
  }

  torrent(ih: string): Promise<Buffer> {
    const c = this.catalog();
    return readFile(c?.ih === ih ? c.torrentPath : join(this.root, `${ih}.torrent`));
  }

  /** Where an author's file (`<pubkey>.jsonl`) is in a bundle's data file, or undefined. */
  authorFile(ih: string, pubkey: string): FileSpan | undefined {
    const c = this.catalog();
    if (c?.ih === ih) return pubkey === c.bridge ? { offset: 0, length: c.bytes } : undefined;
    // filesAfter is exclusive: start from the key just below this author's.
    const below = BigInt('0x' + pubkey) - 1n;
    const after = below < 0n ? '' : below.toString(16).padStart(64, '0');
    const [f] = this.store.bundles.filesAfter(ih, after, 1);
    if (!f || f.pubkey !== pubkey) return undefined;
    return { offset: f.o, length: f.bytes };
  }

  counts(): { events: number; bundles: number } {
    return { events: this.store.eventCount(), bundles: this.activeCount() };
  }

  private activeCount(): number {
    let n = 0;
    for (const b of this.store.bundles.all()) if (b.state === 'active') n++;
    return n;
  }

  /** The newest active bundle (by the end of its period), for the well-known document. */
  newest(): SeededBundle | undefined {
    let best: BundleRecord | undefined;
    for (const b of this.store.bundles.all()) {
      if (b.state === 'active' && (!best || b.periodEnd > best.periodEnd)) best = b;
    }
    return best && this.seeded(best.ih);
  }

  /** The pointer record stored for this salt (hex), as the publisher signed it. */
  pointer(saltHex: string): { salt: Buffer; v: unknown; seq: number; sig: Buffer } | undefined {
    const rec = this.store.pointers.get(saltHex);
    return rec && { salt: Buffer.from(rec.salt), v: rec.v, seq: rec.seq, sig: Buffer.from(rec.sig) };
  }

  /** Authors with a published pointer (page-0 salts are 32 bytes). */
  pointerAuthors(): number {
    return this.store.pointers.authorCount();
  }
}
