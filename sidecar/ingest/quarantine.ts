// Lines the sidecar cannot index (not JSON, bad id or signature, too long) are kept here with the
// reason, never silently dropped: one JSONL file per day under <dataDir>/quarantine, bounded size.
import { appendFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** Entries waiting for the disk, at most: a flood of bad lines must not grow memory without bound. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

/** How much of a line over `ingest.maxLineBytes` is quarantined. */
export const QUARANTINED_HEAD_BYTES = 4096;

/**
 * What one replay keeps at most: a backfill connection or a reconciliation run reads lines that
 * are still in their source, so a source that is not events at all (a wrong file, random bytes)
 * leaves a sample for inspection instead of a copy of itself; the rest are only counted.
 * Lines from the relay (plugin, spool) have no other copy: only ingest.quarantineMaxBytes bounds them.
 */
export const REPLAY_QUARANTINE_LIMIT = { lines: 10_000, bytes: 16 * 1024 * 1024 } as const;
const LIVE_SOURCES = new Set(['plugin', 'spool']);

/** Where a rejected line came from: the ingest sink (one per connection or run), or just its source name. */
export type QuarantineFrom = string | { readonly source: string };

export class Quarantine {
  kept = 0;
  overflow = 0;
  /** Rejected lines of replays past REPLAY_QUARANTINE_LIMIT: counted, not stored. */
  capped = 0;
  private readonly replays = new WeakMap<object, { lines: number; bytes: number; told: boolean }>();
  private bytes: number | null = null;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  add(reason: string, from: QuarantineFrom, line: string): void {
    const source = typeof from === 'string' ? from : from.source;
    if (typeof from === 'object' && !LIVE_SOURCES.has(source) && !this.withinReplayLimit(from, source, line)) return;
    const entry = JSON.stringify({ at: new Date().toISOString(), reason, source, line }) + '\n';
    if (this.pendingBytes + entry.length > MAX_PENDING_BYTES) {
      this.noteOverflow('quarantine cannot keep up: rejected lines are only counted meanwhile');
      return;
    }
    this.pending.push(entry);
    this.pendingBytes += entry.length;
    this.writing ??= this.drain();
  }

  /** Counts the line against its replay's budget (its length as a close estimate of the entry's). */
  private withinReplayLimit(from: object, source: string, line: string): boolean {
    let used = this.replays.get(from);
    if (!used) this.replays.set(from, (used = { lines: 0, bytes: 0, told: false }));
    if (!used.told && used.lines < REPLAY_QUARANTINE_LIMIT.lines && used.bytes + line.length <= REPLAY_QUARANTINE_LIMIT.bytes) {
      used.lines++;
      used.bytes += line.length;
      return true;
    }
    this.capped++;
    if (!used.told) {
      used.told = true;
      this.log.warn(
        { dir: this.dir, source, keptLines: used.lines, keptBytes: used.bytes },
        `quarantine: this ${source} reached its limit (${REPLAY_QUARANTINE_LIMIT.lines} lines or ${REPLAY_QUARANTINE_LIMIT.bytes / 1024 ** 2} MiB); its further rejected lines are only counted (they are still in the source)`,
      );
    }
    return false;
  }

  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Writes what is pending, many entries per append. */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        await this.write(batch);
      }
    } catch (err) {
      this.log.error({ err }, 'quarantine write failed');
    } finally {
      this.writing = null;
    }
  }

  private async write(entries: string[]): Promise<void> {
    if (this.bytes === null) this.bytes = await this.measure();
    let out = '';
    let size = 0;
    for (const entry of entries) {
      const n = Buffer.byteLength(entry);
      if (this.bytes + size + n > this.maxBytes) {
        this.noteOverflow('quarantine full: rejected lines are only counted now');
        continue;
      }
      out += entry;
      size += n;
      this.kept++;
    }
    if (size === 0) return;
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    await appendFile(join(this.dir, `${new Date().toISOString().slice(0, 10)}.jsonl`), out, { mode: 0o640 });
    this.bytes += size;
  }

  private noteOverflow(msg: string): void {
    this.overflow++;
    if (this.overflow === 1 || this.overflow % 10_000 === 0) this.log.error({ dir: this.dir, overflow: this.overflow }, msg);
  }

  private async measure(): Promise<number> {
    let total = 0;
    try {
      for (const name of await readdir(this.dir)) total += (await stat(join(this.dir, name))).size;
    } catch {
      /* none yet */
    }
    return total;
  }
}
