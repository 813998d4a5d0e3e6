// Bundling: indexed events → bundle torrents, bounded in number whatever the archive size.
//
// Level 0 bundles hold what was indexed in one arrival window (default 60 s, cut early by size).
// When an hour has passed, its window bundles are merged into one level-1 bundle; days merge
// hours (level 2), months merge days (level 3), years merge months (level 4). A merge whose
// result would exceed `maxBundleBytes` is split into parts by author. Events removed from the
// index (deletions, vanish, expiry, replacement) are written out of their bundle by a rewrite
// within `rewriteIntervalMs`; replaced bundles are retired (unseeded and deleted).
import { EventEmitter } from 'node:events';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { buildBundle, dataPathOf, torrentPathOf, readTorrent, type AuthorLines, type BuiltBundle } from './bundle-builder.js';
import type { BundleRecord, Store } from './store.js';
import type { BundleSummary } from './status.js';

export interface Seeder {
  /** Starts seeding a bundle whose files are complete on disk. */
  seed(bundle: { infoHash: string; torrent: Buffer; dataPath: string; verify?: boolean }): Promise<void>;
  /** Stops seeding (files are deleted by the bundler afterwards). */
  unseed(infoHash: string): Promise<void>;
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
const CLEAN_STOP_KEY = 'bundler.cleanStop';
export const LEVEL_NAMES = ['window', 'hour', 'day', 'month', 'year'];

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
}

export class Bundler extends EventEmitter {
  private readonly active = new Map<string, BundleRecord>();
  private chain: Promise<unknown> = Promise.resolve();
  private windowTimer: NodeJS.Timeout | null = null;
  private rewriteTimer: NodeJS.Timeout | null = null;
  private sizeTimer: NodeJS.Timeout | null = null;
  private pendingBytes = 0;
  private sizeCutQueued = false;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly seeder: Seeder,
    private readonly opts: BundlerOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
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
    for (const key of this.store.removals.getKeys()) rewrites.add(key[0]);
    return { active: this.active.size, byLevel, bytes, events, pendingRewrites: rewrites.size, newest: newest?.ih ?? null };
  }

  /** Loads active bundles, seeds them from disk, and starts the schedule. */
  async start(opts: { schedule?: boolean } = {}): Promise<void> {
    for (const { value } of this.store.bundles.getRange()) if (value.state === 'active') this.active.set(value.ih, value);
    await this.removeStrayFiles();
    // Bundle files are not fsynced one by one: after a crash, re-hash them before seeding.
    const verify = this.store.meta.get(CLEAN_STOP_KEY) !== true;
    await this.store.meta.put(CLEAN_STOP_KEY, false);
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
    for (const { value } of this.store.pending.getRange()) this.pendingBytes += value;
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
    await this.store.meta.put(CLEAN_STOP_KEY, true);
  }

  /** Ingest tells the bundler how many bytes it indexed (for the size cut). */
  noteIndexed(bytes: number): void {
    this.pendingBytes += bytes;
    if (this.pendingBytes >= this.opts.windowMaxBytes && !this.sizeCutQueued && !this.stopped) {
      this.sizeCutQueued = true;
      void this.enqueue(async () => {
        this.sizeCutQueued = false;
        const [s, e] = periodOf(0, this.now(), this.opts.windowMs);
        await this.cut(s, e);
      });
    }
  }

  /** Cuts the window that just ended, then compacts. Public for tests and the demo. */
  closeWindow(at = this.now()): Promise<BundleRecord[]> {
    const [s, e] = periodOf(0, at - 1, this.opts.windowMs);
    return this.enqueue(async () => {
      const made = await this.cut(s, e);
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
      this.windowTimer = setTimeout(() => {
        if (this.stopped) return;
        void this.closeWindow(next).catch(() => {});
        armWindow();
      }, next - now + 5);
      this.windowTimer.unref();
    };
    armWindow();
    this.rewriteTimer = setInterval(() => void this.rewriteRemovals().catch(() => {}), this.opts.rewriteIntervalMs);
    this.rewriteTimer.unref();
  }

  /** Level 0: everything pending (up to windowMaxBytes per bundle) into window bundles. */
  private async cut(periodStart: number, periodEnd: number): Promise<BundleRecord[]> {
    const made: BundleRecord[] = [];
    for (;;) {
      const byAuthor = new Map<string, (EventRef & { json: string; seq: number })[]>();
      let bytes = 0;
      for (const { key: seq, value } of this.store.pending.getRange()) {
        if (bytes > 0 && bytes + value > this.opts.windowMaxBytes) break;
        const rec = this.store.events.get(seq);
        if (!rec) continue;
        bytes += value;
        let list = byAuthor.get(rec.p);
        if (!list) byAuthor.set(rec.p, (list = []));
        list.push({ id: rec.i, c: rec.c, json: rec.j, seq });
      }
      if (byAuthor.size === 0) break;
      const authors = [...byAuthor.keys()].sort();
      for (const list of byAuthor.values()) list.sort(byTimeThenId);
      const built = await buildBundle(
        this.opts.root,
        authors.map((pubkey) => ({ pubkey, lines: byAuthor.get(pubkey)!.map((r) => ({ json: r.json, createdAt: r.c })) })),
      );
      if (!built) break;
      const record = this.recordFor(built, 0, periodStart, periodEnd);
      await this.store.root.transaction(() => {
        for (const [pubkey, list] of byAuthor) {
          for (const r of list) {
            if (this.store.pending.doesExist(r.seq) && this.store.events.doesExist(r.seq)) {
              this.store.pending.remove(r.seq);
              this.store.eventLoc.put(r.id, built.infoHash);
              this.store.bundleEvents.put([built.infoHash, pubkey, r.c, r.id], null);
            } else {
              // Removed from the index while the bundle was being written.
              this.store.removals.put([built.infoHash, r.id], { r: 'removed-while-bundling', p: pubkey });
            }
          }
        }
        this.putBundle(record, built);
      });
      this.pendingBytes = Math.max(0, this.pendingBytes - bytes);
      await this.activate([record], built ? [built] : []);
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
    const affected = new Set<string>();
    for (const key of this.store.removals.getKeys()) affected.add(key[0]);
    let n = 0;
    for (const ih of affected) {
      const b = this.active.get(ih);
      if (!b) {
        // Retired meanwhile: its removals are moot.
        await this.store.root.transaction(() => {
          for (const key of [...this.store.removals.getKeys({ start: [ih], end: [ih, '\uffff'] })]) this.store.removals.remove(key);
        });
        continue;
      }
      await this.replace([b], b.level, b.periodStart, b.periodEnd);
      n++;
    }
    return n;
  }

  /**
   * Replaces `sources` by new bundle(s) at `level` holding their current events (merge,
   * rewrite or relabel), then retires the sources.
   */
  private async replace(sources: BundleRecord[], level: number, periodStart: number, periodEnd: number, opts: { rebuild?: boolean } = {}): Promise<BundleRecord[]> {
    const hasRemovals = sources.some((s) => {
      for (const _ of this.store.removals.getKeys({ start: [s.ih], end: [s.ih, '\uffff'], limit: 1 })) return true;
      return false;
    });
    if (sources.length === 1 && !hasRemovals && !opts.rebuild) {
      // Same content, new period: keep the torrent, only relabel it.
      const s = sources[0]!;
      if (s.level !== level || s.periodEnd !== periodEnd) await this.relabel(s, level, periodStart, periodEnd);
      return [s];
    }
    const removalsAtStart = new Set<string>();
    const authorBytes = new Map<string, number>();
    for (const s of sources) {
      for (const key of this.store.removals.getKeys({ start: [s.ih], end: [s.ih, '\uffff'] })) removalsAtStart.add(`${key[0]}:${key[1]}`);
      for (const { key, value } of this.store.bundleAuthors.getRange({ start: [s.ih], end: [s.ih, '\uffff'] })) {
        authorBytes.set(key[1], (authorBytes.get(key[1]) ?? 0) + value.bytes);
      }
    }
    const parts = partition([...authorBytes.keys()].sort(), authorBytes, this.opts.maxBundleBytes);
    const built: BuiltBundle[] = [];
    const partOf = new Map<string, BuiltBundle>();
    // Events that were gone when the build read them (removed meanwhile): not in the new bundle.
    const notWritten = new Set<string>();
    for (const authors of parts) {
      const b = await buildBundle(this.opts.root, this.linesOf(sources, authors, notWritten));
      if (!b) continue;
      built.push(b);
      for (const f of b.files) partOf.set(f.pubkey, b);
    }
    const records = built.map((b) => this.recordFor(b, level, periodStart, periodEnd));
    // A rewrite whose removals were already gone rebuilds the same bytes: same infohash, kept.
    const kept = new Set(records.map((r) => r.ih));
    await this.store.root.transaction(() => {
      for (const s of sources) {
        // Keys are collected before changing the range they come from. Every event still listed
        // here was read by the build (events are never re-added), so it is in the new bundle.
        for (const key of [...this.store.bundleEvents.getKeys({ start: [s.ih], end: [s.ih, '\uffff'] })]) {
          const [, pubkey, c, id] = key;
          const target = partOf.get(pubkey);
          if (!target) continue; // cannot happen: an author with events gets a file
          this.store.bundleEvents.remove(key);
          this.store.bundleEvents.put([target.infoHash, pubkey, c, id], null);
          this.store.eventLoc.put(id, target.infoHash);
        }
        for (const { key, value } of [...this.store.removals.getRange({ start: [s.ih], end: [s.ih, '\uffff'] })]) {
          this.store.removals.remove(key);
          // Removed after the build wrote it: the new bundle still holds it.
          const target = partOf.get(value.p);
          if (target && !removalsAtStart.has(`${key[0]}:${key[1]}`) && !notWritten.has(key[1])) {
            this.store.removals.put([target.infoHash, key[1]], value);
          }
        }
        if (!kept.has(s.ih)) this.retireRecord(s, records.map((r) => r.ih));
      }
      records.forEach((r, i) => this.putBundle(r, built[i]!));
    });
    for (const s of sources) if (!kept.has(s.ih)) this.active.delete(s.ih);
    await this.activate(records, built);
    await this.dropFiles(sources);
    this.emit('authors', [...authorBytes.keys()]);
    this.log.info(
      { bundleLevel: level, from: sources.map((s) => s.ih), to: records.map((r) => r.ih), events: records.reduce((n, r) => n + r.events, 0) },
      sources.length === 1 ? 'bundle rewritten' : 'bundles merged',
    );
    return records;
  }

  private *linesOf(sources: BundleRecord[], authors: string[], notWritten: Set<string>): Iterable<AuthorLines> {
    for (const pubkey of authors) {
      const refs: EventRef[] = [];
      for (const s of sources) {
        for (const key of this.store.bundleEvents.getKeys({ start: [s.ih, pubkey], end: [s.ih, pubkey, Number.MAX_SAFE_INTEGER] })) {
          refs.push({ id: key[3], c: key[2] });
        }
      }
      refs.sort(byTimeThenId);
      const store = this.store;
      yield {
        pubkey,
        lines: (function* () {
          for (const r of refs) {
            const rec = store.getEvent(r.id);
            if (rec) yield { json: rec.j, createdAt: r.c };
            else notWritten.add(r.id);
          }
        })(),
      };
    }
  }

  private async relabel(s: BundleRecord, level: number, periodStart: number, periodEnd: number): Promise<void> {
    const updated: BundleRecord = { ...s, level, periodStart, periodEnd };
    await this.store.root.transaction(() => {
      for (const key of [...this.store.bundleAuthors.getKeys({ start: [s.ih], end: [s.ih, '\uffff'] })]) {
        this.store.authorBundles.remove([key[1], s.periodEnd, s.ih]);
        this.store.authorBundles.put([key[1], periodEnd, s.ih], null);
      }
      this.store.bundles.put(s.ih, updated);
    });
    this.active.set(s.ih, updated);
  }

  private recordFor(b: BuiltBundle, level: number, periodStart: number, periodEnd: number): BundleRecord {
    return {
      ih: b.infoHash,
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

  /** Inside a transaction: the bundle's record and per-author rows. */
  private putBundle(r: BundleRecord, b: BuiltBundle): void {
    for (const f of b.files) {
      this.store.bundleAuthors.put([r.ih, f.pubkey], { n: f.events, bytes: f.length });
      this.store.authorBundles.put([f.pubkey, r.periodEnd, r.ih], null);
    }
    this.store.bundles.put(r.ih, r);
  }

  /** Inside a transaction. */
  private retireRecord(s: BundleRecord, replacedBy: string[]): void {
    for (const key of [...this.store.bundleAuthors.getKeys({ start: [s.ih], end: [s.ih, '\uffff'] })]) {
      this.store.bundleAuthors.remove(key);
      this.store.authorBundles.remove([key[1], s.periodEnd, s.ih]);
    }
    this.store.bundles.put(s.ih, { ...s, state: 'retired', replacedBy, retiredAt: this.now() });
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

function byTimeThenId(a: EventRef, b: EventRef): number {
  return a.c - b.c || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Splits sorted authors into consecutive parts of at most maxBytes (an author is never split). */
function partition(authors: string[], bytes: Map<string, number>, maxBytes: number): string[][] {
  const parts: string[][] = [];
  let cur: string[] = [];
  let size = 0;
  for (const a of authors) {
    const b = bytes.get(a) ?? 0;
    if (cur.length > 0 && size + b > maxBytes) {
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
