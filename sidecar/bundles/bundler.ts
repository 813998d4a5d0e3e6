// Bundling: indexed events → bundle torrents, bounded in number whatever the archive size.
//
// Events get increasing sequence numbers as they are indexed; a bundle holds a contiguous range
// of them (and, when a merge had to be split by size, a range of authors), so the index records
// where every event is with one row per bundle, and merges move no per-event rows.
//
// Level 0 bundles hold what was indexed in one arrival window (default 60 s, cut early by size).
// When an hour has passed, its window bundles are merged into one level-1 bundle; days merge
// hours (level 2), months merge days (level 3), years merge months (level 4). A merge whose
// result would exceed `maxBundleBytes` is split into parts by author. Events removed from the
// index (deletions, vanish, expiry, replacement) are written out of their bundle by a rewrite
// within `rewriteIntervalMs`; replaced bundles are retired (unseeded and deleted).
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { cutRefsOf } from './cut.js';
import { CutThread } from './cut-thread.js';
import { buildBundle, dataPathOf, torrentPathOf, readTorrent, type AuthorLines, type BuiltBundle } from './builder.js';
import type { BundleRecord, Store, StoredEvent } from '../index/store.js';
import { canonicalHead } from '../formats/canonical-line.js';
import { readBundleLines, SourceFiles } from './source-files.js';
import { TypedEmitter } from '../common/typed-emitter.js';

/** What status and metrics show of the bundles. */
export interface BundleSummary {
  active: number;
  byLevel: Record<string, number>;
  bytes: number;
  events: number;
  /** Events indexed but not yet in a bundle (the next window's). */
  pendingEvents: number;
  /** Bundles waiting to be rewritten without removed events. */
  pendingRewrites: number;
  newest: string | null;
}

export interface Seeder {
  /** Starts seeding a bundle whose files are complete on disk. */
  seed(bundle: { infoHash: string; torrent: Buffer; dataPath: string; verify?: boolean }): Promise<void>;
  /** Stops seeding (files are deleted by the bundler afterwards). */
  unseed(infoHash: string): Promise<void>;
}

/** What the bundler tells the stages after it and ops (sidecar.ts wires them). */
export interface BundlerEvents {
  /** A bundle is seeded (window cut, merge part or rewrite). */
  bundle: [record: BundleRecord];
  /** A replaced bundle is unseeded and its files deleted. */
  retired: [infoHash: string];
  /** These authors' lists of bundles changed: their pointers are due (the publisher). */
  authors: [pubkeys: string[]];
}

export interface BundlerOptions {
  root: string;
  windowMs: number;
  windowMaxBytes: number;
  maxBundleBytes: number;
  maxActiveTorrents: number;
  rewriteIntervalMs: number;
}

export const TOP_LEVEL = 4;
/** Author ranges are [authorFrom, authorTo) over lowercase hex pubkeys. */
const AUTHOR_MIN = '';
const AUTHOR_MAX = '~';
export const LEVEL_NAMES = ['window', 'hour', 'day', 'month', 'year'];
/** A merge rebuilt from the index (its sources' data unreadable) scans for this many events' authors at a time. */
const SCAN_CHUNK_EVENTS = 200_000;

/** [start, end) in UTC ms of the level's period containing t. */
export function periodOf(level: number, t: number, windowMs: number): [number, number] {
  const d = new Date(t);
  switch (level) {
    case 0: {
      const s = Math.floor(t / windowMs) * windowMs;
      return [s, s + windowMs];
    }
    case 1: {
      const s = Math.floor(t / 3_600_000) * 3_600_000;
      return [s, s + 3_600_000];
    }
    case 2: {
      const s = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
      return [s, s + 86_400_000];
    }
    case 3:
      return [Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)];
    default:
      return [Date.UTC(d.getUTCFullYear(), 0, 1), Date.UTC(d.getUTCFullYear() + 1, 0, 1)];
  }
}

interface EventRef {
  id: string;
  c: number;
  seq: number;
}

function covers(b: BundleRecord, seq: number, pubkey: string): boolean {
  return b.seqStart <= seq && seq < b.seqEnd && b.authorFrom <= pubkey && pubkey < b.authorTo;
}

export class Bundler extends TypedEmitter<BundlerEvents> {
  private readonly active = new Map<string, BundleRecord>();
  /** Builds window cuts off the main thread. */
  private readonly cutThread: CutThread;
  private chain: Promise<unknown> = Promise.resolve();
  private windowTimer: NodeJS.Timeout | null = null;
  private rewriteTimer: NodeJS.Timeout | null = null;
  private sizeTimer: NodeJS.Timeout | null = null;
  private pendingBytes = 0;
  private sizeCutQueued = false;
  private stopped = false;
  /** Start of the latest cut's window: cuts never go back in time, even if the clock does. */
  private lastCutPeriod = 0;

  constructor(
    private readonly store: Store,
    private readonly seeder: Seeder,
    private readonly opts: BundlerOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    store.bundles.setLineReader((ih, file) => readBundleLines(opts.root, ih, file));
    this.cutThread = new CutThread(log);
  }

  get activeCount(): number {
    return this.active.size;
  }

  activeBundles(): BundleRecord[] {
    return [...this.active.values()];
  }

  summary(): BundleSummary {
    const byLevel: Record<string, number> = {};
    let bytes = 0;
    let events = 0;
    let newest: BundleRecord | null = null;
    for (const b of this.active.values()) {
      byLevel[LEVEL_NAMES[b.level] ?? String(b.level)] = (byLevel[LEVEL_NAMES[b.level] ?? String(b.level)] ?? 0) + 1;
      bytes += b.bytes;
      events += b.events;
      if (!newest || b.periodEnd > newest.periodEnd || (b.periodEnd === newest.periodEnd && b.createdAt > newest.createdAt)) newest = b;
    }
    const rewrites = new Set<string>();
    for (const [, r] of this.store.bundles.pendingRemovals()) rewrites.add(this.store.bundles.bundleAt(r.s, r.p) ?? '');
    rewrites.delete('');
    const [frontier] = this.store.pendingRange;
    const pendingEvents = this.store.eventCountFrom(frontier);
    return { active: this.active.size, byLevel, bytes, events, pendingEvents, pendingRewrites: rewrites.size, newest: newest?.ih ?? null };
  }

  /** Loads active bundles, seeds them from disk, and starts the schedule. */
  async start(opts: { schedule?: boolean } = {}): Promise<void> {
    for (const b of this.store.bundles.all()) if (b.state === 'active') this.active.set(b.ih, b);
    await this.removeStrayFiles();
    // Bundle files are not fsynced one by one: after a crash, re-hash them before seeding.
    const verify = !this.store.bundles.wasCleanStop();
    await this.store.bundles.setCleanStop(false);
    for (const b of this.active.values()) {
      try {
        const dataPath = dataPathOf(this.opts.root, b.ih);
        const size = (await stat(dataPath)).size;
        if (size !== b.bytes) throw new Error(`${dataPath} holds ${size} bytes, the bundle ${b.bytes}`);
        await this.seeder.seed({ infoHash: b.ih, torrent: await readTorrent(this.opts.root, b.ih), dataPath, verify });
      } catch (err) {
        this.log.error({ err, infoHash: b.ih }, 'bundle files missing or unreadable; rebuilding it from the index');
        await this.enqueue(() => this.replace([b], b.level, b.periodStart, b.periodEnd, { rebuild: true }));
      }
    }
    this.pendingBytes += this.store.eventBytesFrom(this.store.pendingRange[0]);
    this.lastCutPeriod = this.store.bundles.lastCutPeriod();
    if (opts.schedule !== false) this.schedule();
    this.log.info({ active: this.active.size }, 'bundles seeded from disk');
  }

  /** Finishes the bundle being written (pending events wait for the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.windowTimer) clearTimeout(this.windowTimer);
    if (this.rewriteTimer) clearInterval(this.rewriteTimer);
    if (this.sizeTimer) clearInterval(this.sizeTimer);
    await this.chain.catch(() => {});
    await this.cutThread.close();
    await this.store.bundles.setCleanStop(true);
  }

  /** Ingest tells the bundler how many bytes it indexed (for the size cut). */
  noteIndexed(bytes: number): void {
    this.pendingBytes += bytes;
    if (this.pendingBytes >= this.opts.windowMaxBytes && !this.sizeCutQueued && !this.stopped) {
      this.sizeCutQueued = true;
      // Failures are logged by the chain; the next window or size cut retries.
      this.enqueue(async () => {
        this.sizeCutQueued = false;
        await this.cut(this.now());
      }).catch(() => {});
    }
  }

  /** Cuts the window that just ended, then compacts. Public for tests and the demo. */
  closeWindow(at = this.now()): Promise<BundleRecord[]> {
    return this.enqueue(async () => {
      const made = await this.cut(at - 1);
      await this.compact();
      return made;
    });
  }

  /** Rewrites every bundle holding removed events. Public for tests. */
  rewriteRemovals(): Promise<number> {
    return this.enqueue(() => this.doRewrites());
  }

  compactNow(): Promise<number> {
    return this.enqueue(() => this.compact());
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const guarded = async (): Promise<T> => {
      if (this.stopped) throw new Error('bundler stopped');
      return op();
    };
    const run = this.chain.then(guarded, guarded);
    this.chain = run.catch((err) => (this.stopped ? undefined : this.log.error({ err }, 'bundler operation failed')));
    return run;
  }

  private schedule(): void {
    const armWindow = () => {
      const now = this.now();
      const next = periodOf(0, now, this.opts.windowMs)[1];
      this.windowTimer = setTimeout(
        () => {
          if (this.stopped) return;
          void this.closeWindow(next).catch(() => {});
          armWindow();
        },
        next - now + 5,
      );
      this.windowTimer.unref();
    };
    armWindow();
    this.rewriteTimer = setInterval(() => void this.rewriteRemovals().catch(() => {}), this.opts.rewriteIntervalMs);
    this.rewriteTimer.unref();
  }

  /**
   * Level 0: everything pending (up to windowMaxBytes per bundle) into window bundles, labelled
   * with the window containing `at` (or the latest cut's, if the clock went back).
   */
  private async cut(at: number): Promise<BundleRecord[]> {
    const made: BundleRecord[] = [];
    let [periodStart, periodEnd] = periodOf(0, at, this.opts.windowMs);
    if (periodStart < this.lastCutPeriod) [periodStart, periodEnd] = periodOf(0, this.lastCutPeriod, this.opts.windowMs);
    for (;;) {
      const [from] = this.store.pendingRange;
      // References only (committed events: uncommitted ones have higher numbers); the lines are
      // copied from the event log into the bundle by the cut thread.
      const { refs, end, bytes } = cutRefsOf(this.store.rowsFrom(from), from, this.opts.windowMaxBytes);
      if (refs.count === 0) break;
      this.store.bundles.beginCut(end);
      let record: BundleRecord;
      let authors: string[];
      const releaseBlanking = this.store.log.holdBlanking();
      try {
        let built: BuiltBundle | null;
        try {
          ({ built, authors } = await this.cutThread.build(this.opts.root, this.store.log.path, refs));
        } finally {
          releaseBlanking();
        }
        if (!built) break;
        record = this.recordFor(built, 0, periodStart, periodEnd, {
          seqStart: from,
          seqEnd: end,
          authorFrom: AUTHOR_MIN,
          authorTo: AUTHOR_MAX,
        });
        // Events removed while it was written are in it: their removals (recorded because of
        // beginCut) now point into this bundle, which the next rewrite fixes.
        await this.store.bundles.commitCut(record, built.files, end, periodStart);
        this.lastCutPeriod = periodStart;
        this.pendingBytes = Math.max(0, this.pendingBytes - bytes);
        await this.activate([record], [built]);
      } finally {
        this.store.bundles.endCut();
      }
      made.push(record);
      this.log.info({ infoHash: record.ih, events: record.events, authors: record.authors, bytes: record.bytes }, 'window bundle seeded');
      this.emit('authors', authors);
      // Size cuts can follow one another in a burst: keep the bound between them.
      await this.mergeOverBound();
      if (bytes < this.opts.windowMaxBytes || this.stopped) break;
    }
    if (made.length === 0) this.pendingBytes = 0;
    return made;
  }

  /** Merges finished periods upward and keeps the active count under the bound. */
  private async compact(): Promise<number> {
    let merges = 0;
    const now = this.now();
    for (let level = 0; level < TOP_LEVEL; level++) {
      for (const [parentStart, group] of this.groupsAt(level)) {
        const [, parentEnd] = periodOf(level + 1, parentStart, this.opts.windowMs);
        if (parentEnd > now) continue;
        await this.replace(group, level + 1, parentStart, parentEnd);
        merges++;
      }
    }
    return merges + (await this.mergeOverBound());
  }

  /**
   * Near the bound (tiny windows, huge bursts), merges the lowest level's groups early. A merge
   * seeds its result before retiring its sources and a cut adds one bundle, so merging starts a
   * few bundles below the bound and the bound itself is never crossed.
   */
  private async mergeOverBound(): Promise<number> {
    const max = this.opts.maxActiveTorrents;
    const softMax = max - Math.max(2, Math.ceil(max * 0.05));
    let merges = 0;
    for (let level = 0; level < TOP_LEVEL && this.active.size > softMax; level++) {
      for (const [parentStart, group] of this.groupsAt(level)) {
        if (group.length < 2 || this.active.size <= softMax) continue;
        const [, parentEnd] = periodOf(level + 1, parentStart, this.opts.windowMs);
        this.log.warn({ active: this.active.size, max, bundleLevel: level }, 'active torrents near the bound: merging early');
        await this.replace(group, level + 1, parentStart, parentEnd);
        merges++;
      }
    }
    return merges;
  }

  private groupsAt(level: number): Map<number, BundleRecord[]> {
    const groups = new Map<number, BundleRecord[]>();
    for (const b of this.active.values()) {
      if (b.level !== level) continue;
      const [parentStart] = periodOf(level + 1, b.periodStart, this.opts.windowMs);
      let g = groups.get(parentStart);
      if (!g) groups.set(parentStart, (g = []));
      g.push(b);
    }
    return groups;
  }

  private async doRewrites(): Promise<number> {
    const affected = new Map<string, BundleRecord>();
    const orphans: string[] = [];
    for (const [id, r] of this.store.bundles.pendingRemovals()) {
      const ih = this.store.bundles.bundleAt(r.s, r.p);
      const b = ih === undefined ? undefined : this.active.get(ih);
      if (b) affected.set(b.ih, b);
      else orphans.push(id); // its bundle was retired or rewritten meanwhile: moot
    }
    if (orphans.length > 0) await this.store.bundles.forgetRemovals(orphans);
    for (const b of affected.values()) {
      if (this.active.get(b.ih) === b) await this.replace([b], b.level, b.periodStart, b.periodEnd);
    }
    return affected.size;
  }

  /**
   * Replaces `sources` by new bundle(s) at `level` holding their current events (merge,
   * rewrite or relabel), then retires the sources.
   */
  private async replace(
    sources: BundleRecord[],
    level: number,
    periodStart: number,
    periodEnd: number,
    opts: { rebuild?: boolean } = {},
  ): Promise<BundleRecord[]> {
    const held = (r: { s: number; p: string }) => sources.some((s) => covers(s, r.s, r.p));
    const holdsRemovals = () => {
      for (const [, r] of this.store.bundles.pendingRemovals()) if (held(r)) return true;
      return false;
    };
    if (sources.length === 1 && !opts.rebuild && !holdsRemovals()) {
      // Same content, new period: keep the torrent, only relabel it.
      const s = sources[0]!;
      if (s.level !== level || s.periodEnd !== periodEnd) await this.relabel(s, level, periodStart, periodEnd);
      return [s];
    }
    const span = spanOf(sources);
    if (!span) {
      this.log.error(
        { bundles: sources.map((s) => [s.ih, s.seqStart, s.seqEnd]) },
        'bundles to merge do not cover one contiguous range; left as they are',
      );
      return sources;
    }
    const authorBytes = new Map<string, number>();
    const authorEvents = new Map<string, number>();
    for (const s of sources) {
      for (const { pubkey, bytes, n } of this.store.bundles.files(s.ih)) {
        authorBytes.set(pubkey, (authorBytes.get(pubkey) ?? 0) + bytes);
        authorEvents.set(pubkey, (authorEvents.get(pubkey) ?? 0) + n);
      }
    }
    const parts = partition([...authorBytes.keys()].sort(), authorBytes, this.opts.maxBundleBytes);
    // When each author's events were read, in removal order: a removal recorded later was
    // of an event the new bundle holds (it needs a rewrite), an earlier one was not.
    const readAt = new Map<string, number>();
    const range = (i: number) => ({
      seqStart: span.seqStart,
      seqEnd: span.seqEnd,
      authorFrom: i === 0 ? span.authorFrom : parts[i]![0]!,
      authorTo: i === parts.length - 1 ? span.authorTo : parts[i + 1]![0]!,
    });
    const fromIndex = (i: number) => this.scanLinesOf(span, parts[i]!, authorEvents, readAt);
    let made: (BuiltBundle | null)[] | null = null;
    // The sources' own files, read author by author; from the index if they cannot be read.
    const files = opts.rebuild ? null : SourceFiles.open(this.store, this.opts.root, sources);
    if (files) {
      try {
        made = await this.buildParts(parts.length, (i) => this.fileLinesOf(files, span, parts[i]!, readAt));
      } catch (err) {
        if (this.stopped) throw err;
        this.log.warn({ err, bundles: sources.map((s) => s.ih) }, 'bundle data unreadable while merging; merging from the index');
        readAt.clear();
      } finally {
        files.close();
      }
    } else if (!opts.rebuild)
      this.log.warn({ bundles: sources.map((s) => s.ih) }, 'bundle data missing or of the wrong size; merging from the index');
    made ??= await this.buildParts(parts.length, fromIndex);
    const built: BuiltBundle[] = [];
    const records: BundleRecord[] = [];
    made.forEach((b, i) => {
      if (!b) return;
      built.push(b);
      records.push(this.recordFor(b, level, periodStart, periodEnd, range(i)));
    });
    // A rewrite whose removals were already gone rebuilds the same bytes: same infohash, kept.
    const kept = new Set(records.map((r) => r.ih));
    // A removal recorded before an author's events were read is written out of the new bundles.
    const written = (r: { s: number; p: string; n: number }) => {
      if (!held(r)) return false;
      const at = readAt.get(r.p);
      return at === undefined || r.n <= at;
    };
    const retired = sources.filter((s) => !kept.has(s.ih));
    await this.store.bundles.commitReplace(
      written,
      retired,
      records.map((record, i) => ({ record, files: built[i]!.files })),
      this.now,
    );
    for (const s of sources) if (!kept.has(s.ih)) this.active.delete(s.ih);
    await this.activate(records, built);
    await this.dropFiles(sources);
    this.emit('authors', [...authorBytes.keys()]);
    this.log.info(
      {
        bundleLevel: level,
        from: sources.map((s) => s.ih),
        to: records.map((r) => r.ih),
        events: records.reduce((n, r) => n + r.events, 0),
      },
      sources.length === 1 ? 'bundle rewritten' : 'bundles merged',
    );
    return records;
  }

  /** Builds one bundle per part (null where a part has no events left); on failure removes the parts it wrote. */
  private async buildParts(n: number, linesOf: (i: number) => Iterable<AuthorLines>): Promise<(BuiltBundle | null)[]> {
    const out: (BuiltBundle | null)[] = [];
    try {
      for (let i = 0; i < n; i++) out.push(await buildBundle(this.opts.root, linesOf(i)));
      return out;
    } catch (err) {
      for (const b of out) {
        if (b && !this.active.has(b.infoHash)) {
          await rm(b.dataPath, { force: true });
          await rm(b.torrentPath, { force: true });
        }
      }
      throw err;
    }
  }

  /** What the index says an author's file in a bundle holds, in file order (created_at, then id). A scan: for checks. */
  eventsOf(b: BundleRecord, pubkey: string): StoredEvent[] {
    if (!(b.authorFrom <= pubkey && pubkey < b.authorTo)) return [];
    const recs = this.store.scanAuthors(b.seqStart, b.seqEnd, (p) => p === pubkey).get(pubkey) ?? [];
    return recs.map((r) => ({ ...r, j: this.store.log.read(r) })).sort((x, y) => x.c - y.c || (x.i < y.i ? -1 : x.i > y.i ? 1 : 0));
  }

  /**
   * A merge's authors with their lines read from the sources' files, keeping the events still
   * indexed in the merged range (removed and superseded ones drop out here). Each author is read
   * in one synchronous step (one step of this generator), so no removal can fall between reading
   * an event and recording when it was read.
   */
  private *fileLinesOf(files: SourceFiles, span: SeqSpan, authors: string[], readAt: Map<string, number>): Iterable<AuthorLines> {
    for (const pubkey of authors) {
      readAt.set(pubkey, this.store.bundles.removalOrder);
      const refs: (EventRef & { json: string })[] = [];
      for (const json of files.linesOf(pubkey)) {
        const head = canonicalHead(json);
        if (!head) throw new Error(`a line of ${pubkey}.jsonl in a bundle being merged is not a canonical event`);
        const seq = this.store.seqOf(head.id);
        if (seq === undefined || seq < span.seqStart || seq >= span.seqEnd) continue;
        refs.push({ id: head.id, c: head.c, seq, json });
      }
      refs.sort(byTimeThenId);
      yield { pubkey, lines: refs.map((r) => ({ json: r.json, createdAt: r.c })) };
    }
  }

  /** The same from the index alone (a rebuild: the sources' data is gone or damaged), a scan of the range per chunk of authors. */
  private *scanLinesOf(
    span: SeqSpan,
    authors: string[],
    eventsOf: Map<string, number>,
    readAt: Map<string, number>,
  ): Iterable<AuthorLines> {
    for (const chunk of partition(authors, eventsOf, SCAN_CHUNK_EVENTS)) {
      const wanted = new Set(chunk);
      const found = this.store.scanAuthors(span.seqStart, span.seqEnd, (p) => wanted.has(p));
      for (const pubkey of chunk) {
        readAt.set(pubkey, this.store.bundles.removalOrder);
        const refs: (EventRef & { json: string })[] = [];
        for (const r of found.get(pubkey) ?? []) {
          const json = this.store.seqOf(r.i) === r.seq ? this.store.jsonOf(r) : null;
          if (json !== null) refs.push({ id: r.i, c: r.c, seq: r.seq, json });
        }
        refs.sort(byTimeThenId);
        yield { pubkey, lines: refs.map((r) => ({ json: r.json, createdAt: r.c })) };
      }
    }
  }

  private async relabel(s: BundleRecord, level: number, periodStart: number, periodEnd: number): Promise<void> {
    const updated: BundleRecord = { ...s, level, periodStart, periodEnd };
    await this.store.bundles.relabel(s, updated);
    this.active.set(s.ih, updated);
  }

  private recordFor(
    b: BuiltBundle,
    level: number,
    periodStart: number,
    periodEnd: number,
    range: Pick<BundleRecord, 'seqStart' | 'seqEnd' | 'authorFrom' | 'authorTo'>,
  ): BundleRecord {
    return {
      ih: b.infoHash,
      ...range,
      name: b.name,
      level,
      periodStart,
      periodEnd,
      createdAt: this.now(),
      bytes: b.bytes,
      events: b.events,
      authors: b.files.length,
      pieceLength: b.pieceLength,
      state: 'active',
    };
  }

  private async activate(records: BundleRecord[], built: BuiltBundle[]): Promise<void> {
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      this.active.set(r.ih, r);
      const b = built[i]!;
      await this.seeder.seed({ infoHash: b.infoHash, torrent: b.torrent, dataPath: b.dataPath });
      this.emit('bundle', r);
    }
  }

  private async dropFiles(sources: BundleRecord[]): Promise<void> {
    for (const s of sources) {
      if (this.active.has(s.ih)) continue;
      await this.seeder.unseed(s.ih).catch((err) => this.log.warn({ err, infoHash: s.ih }, 'unseed failed'));
      await rm(dataPathOf(this.opts.root, s.ih), { force: true });
      await rm(torrentPathOf(this.opts.root, s.ih), { force: true });
      this.emit('retired', s.ih);
    }
  }

  /** Files left by a crash between writing a bundle and committing it, or by a retirement. */
  private async removeStrayFiles(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.opts.root);
    } catch {
      return;
    }
    for (const name of names) {
      // `<ih>.torrent`, `<ih>.data`, and `<ih>/` directories of the earlier one-file-per-author layout.
      const ih = name.replace(/\.(torrent|data)$/, '');
      if (name.startsWith('.tmp-') || (/^[0-9a-f]{40}$/.test(ih) && (!this.active.has(ih) || ih === name))) {
        await rm(join(this.opts.root, name), { recursive: true, force: true });
      }
    }
  }
}

/** The seq range and author range a merge of `sources` covers, if they tile one contiguous range. */
function spanOf(sources: BundleRecord[]): Pick<BundleRecord, 'seqStart' | 'seqEnd' | 'authorFrom' | 'authorTo'> | null {
  const ranges = [...new Map(sources.map((s) => [`${s.seqStart}:${s.seqEnd}`, [s.seqStart, s.seqEnd] as const])).values()].sort(
    (a, b) => a[0] - b[0],
  );
  for (let i = 1; i < ranges.length; i++) if (ranges[i]![0] !== ranges[i - 1]![1]) return null;
  return {
    seqStart: ranges[0]![0],
    seqEnd: ranges[ranges.length - 1]![1],
    // biome-ignore lint/complexity/useMathMinMax: authors are hex strings, not numbers
    authorFrom: sources.reduce((m, s) => (s.authorFrom < m ? s.authorFrom : m), AUTHOR_MAX),
    // biome-ignore lint/complexity/useMathMinMax: authors are hex strings, not numbers
    authorTo: sources.reduce((m, s) => (s.authorTo > m ? s.authorTo : m), AUTHOR_MIN),
  };
}

type SeqSpan = Pick<BundleRecord, 'seqStart' | 'seqEnd'>;

function byTimeThenId(a: EventRef, b: EventRef): number {
  return a.c - b.c || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Splits sorted authors into consecutive parts weighing at most `max` (bytes, events; an author is never split). */
function partition(authors: string[], weight: Map<string, number>, max: number): string[][] {
  const parts: string[][] = [];
  let cur: string[] = [];
  let size = 0;
  for (const a of authors) {
    const b = weight.get(a) ?? 0;
    if (cur.length > 0 && size + b > max) {
      parts.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(a);
    size += b;
  }
  if (cur.length > 0) parts.push(cur);
  return parts;
}
