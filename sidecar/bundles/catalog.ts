// The bridge catalog, built from the index (docs/protocol.md §11): every active bundle with the
// authors it holds, as one deterministic torrent, seeded like a bundle and named by the bridge
// item (`c`). Rebuilt when bundles change, at most once per `intervalMs`; the previous catalog is
// seeded one interval longer, so a reader or mirror that just read the bridge item can finish.
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { catalogHeader, catalogTorrent, type Catalog, type CatalogBundle } from '../formats/catalog.js';
import type { BundleRecord, Store } from '../index/store.js';
import { TypedEmitter } from '../common/typed-emitter.js';
import type { Seeder } from './bundler.js';

export interface CatalogOptions {
  /** Where the catalog torrents live (`<ih>.torrent`, `<ih>.data`). */
  dir: string;
  intervalMs: number;
  /** The bridge key, 64 hex. */
  bridge: string;
}

export interface CatalogEvents {
  /** A new catalog is seeded: the bridge item is due. */
  catalog: [infoHash: string];
}

export interface CatalogStatus {
  infoHash: string | null;
  bundles: number;
  authors: number;
  bytes: number;
  builtAt: string | null;
  builds: number;
  pending: boolean;
  lastError: string | null;
  /** Catalog torrents seeded now: the current one and, for one more interval, the previous one. */
  seeded: number;
}

/** What the catalog reads of the bundler. */
export interface ActiveBundles {
  activeBundles(): BundleRecord[];
}

const AUTHOR_PAGE = 10_000;

/** The catalog entries of these bundles, from the index. */
export function catalogOf(store: Store, bridge: string, bundles: readonly BundleRecord[]): Catalog {
  const out: CatalogBundle[] = [];
  for (const b of bundles) {
    const authors: string[] = [];
    let after = '';
    for (;;) {
      const page = store.bundles.filesAfter(b.ih, after, AUTHOR_PAGE);
      for (const f of page) authors.push(f.pubkey);
      if (page.length < AUTHOR_PAGE) break;
      after = page[page.length - 1]!.pubkey;
    }
    out.push({
      ih: b.ih,
      level: b.level,
      start: Math.floor(b.periodStart / 1000),
      end: Math.ceil(b.periodEnd / 1000),
      events: b.events,
      bytes: b.bytes,
      authors,
    });
  }
  return { bridge, bundles: out };
}

export interface CatalogFiles {
  ih: string;
  name: string;
  /** The catalog file's length. */
  bytes: number;
  /** Its one file is `<bridge>.jsonl`. */
  bridge: string;
  dataPath: string;
  torrentPath: string;
}

export class CatalogPublisher extends TypedEmitter<CatalogEvents> {
  private current: { ih: string; bundles: number; authors: number; bytes: number; builtAt: number; name: string; length: number } | null =
    null;
  /** The catalog before the current one, still seeded for one more interval. */
  private previous: string | null = null;
  private dirty = true;
  private lastBuild = 0;
  private builds = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private building: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly bundles: ActiveBundles,
    private readonly seeder: Seeder,
    private readonly opts: CatalogOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  get infoHash(): string | null {
    return this.current?.ih ?? null;
  }

  /** The current catalog's files on disk, which the gateway serves as it serves a bundle's. */
  get files(): CatalogFiles | null {
    const c = this.current;
    if (!c) return null;
    return {
      ih: c.ih,
      name: c.name,
      bytes: c.length,
      bridge: this.opts.bridge,
      dataPath: join(this.opts.dir, `${c.ih}.data`),
      torrentPath: join(this.opts.dir, `${c.ih}.torrent`),
    };
  }

  /** Builds the first catalog and checks for changes every second from then on. */
  async start(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    await this.rebuild();
    this.timer = setInterval(
      () => {
        if (this.dirty && !this.building && this.now() - this.lastBuild >= this.opts.intervalMs) void this.rebuild();
      },
      Math.min(1000, this.opts.intervalMs),
    );
    this.timer.unref();
  }

  /** The bundler seeded or retired a bundle. */
  changed(): void {
    this.dirty = true;
  }

  /** Builds now if anything changed (tests; the schedule does it at its pace). */
  async rebuild(): Promise<void> {
    if (this.building) return this.building;
    this.building = this.build().finally(() => (this.building = null));
    return this.building;
  }

  private async build(): Promise<void> {
    if (this.stopped) return;
    this.dirty = false;
    this.lastBuild = this.now();
    try {
      const active = this.bundles.activeBundles();
      const catalog = catalogOf(this.store, this.opts.bridge, active);
      const t = catalogTorrent(catalog);
      if (t.infoHash === this.current?.ih) return;
      const dataPath = join(this.opts.dir, `${t.infoHash}.data`);
      await writeAtomically(dataPath, t.data);
      await writeAtomically(join(this.opts.dir, `${t.infoHash}.torrent`), t.torrent);
      await this.seeder.seed({ infoHash: t.infoHash, torrent: t.torrent, dataPath });
      const retire = this.previous;
      this.previous = this.current?.ih ?? null;
      const h = catalogHeader(catalog);
      this.current = {
        ih: t.infoHash,
        bundles: h.bundles,
        authors: h.authors,
        bytes: h.bytes,
        builtAt: this.now(),
        name: t.name,
        length: t.data.length,
      };
      this.builds++;
      this.lastError = null;
      if (retire) await this.remove(retire);
      this.log.info({ catalog: t.infoHash, bundles: h.bundles, authors: h.authors, bytes: t.data.length }, 'catalog seeded');
      this.emit('catalog', t.infoHash);
    } catch (err) {
      this.dirty = true;
      this.lastError = (err as Error)?.message ?? String(err);
      this.log.error({ err }, 'building the catalog failed; retrying at the next interval');
    }
    await this.removeStray();
  }

  private async remove(ih: string): Promise<void> {
    await this.seeder.unseed(ih);
    await rm(join(this.opts.dir, `${ih}.data`), { force: true });
    await rm(join(this.opts.dir, `${ih}.torrent`), { force: true });
  }

  /** Catalog files of neither the current nor the previous catalog (left by an earlier run). */
  private async removeStray(): Promise<void> {
    const keep = new Set([this.current?.ih, this.previous].filter(Boolean));
    for (const name of await readdir(this.opts.dir).catch(() => [] as string[])) {
      const ih = name.split('.')[0]!;
      if (!keep.has(ih)) await rm(join(this.opts.dir, name), { force: true });
    }
  }

  status(): CatalogStatus {
    const c = this.current;
    return {
      infoHash: c?.ih ?? null,
      bundles: c?.bundles ?? 0,
      authors: c?.authors ?? 0,
      bytes: c?.bytes ?? 0,
      builtAt: c ? new Date(c.builtAt).toISOString() : null,
      builds: this.builds,
      pending: this.dirty,
      lastError: this.lastError,
      seeded: (c ? 1 : 0) + (this.previous ? 1 : 0),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.building?.catch(() => {});
  }
}

async function writeAtomically(path: string, bytes: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}
