// One backfill run: source → lines → (filter) → channel, with a checkpoint that only ever covers
// acknowledged lines. Shared by the `nostr-bt-backfill` command and the sidecar's reconciliation.
//
// Resume points:
// - strfry export walks strfry's created_at index in ascending order, so once a line is
//   acknowledged every event with a smaller created_at (in that export's snapshot) is delivered.
//   The checkpoint keeps that created_at (capped at the run's start time, so a far-future event
//   cannot push it ahead), and the next run starts `margin` seconds earlier: events stored since
//   with an older created_at within the margin are caught, and the overlap is dropped by the
//   sidecar's dedupe.
// - A file is read from the byte offset just past the last acknowledged line, after checking
//   (hash of its first 64 KiB) that it is still the same file; stdin has no checkpoint.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { createdAtOf } from './created-at.js';
import { fileHead, HEAD_BYTES, type Checkpoint, type CheckpointIO } from '../index/checkpoints.js';
import { openSource, type SourceRange, type SourceSpec } from './event-source.js';
import { addTally, type IngestChannel, type Tally } from './channel.js';
import { LineSplitter } from './line-splitter.js';

export interface RunOptions {
  spec: SourceSpec;
  /** The operator's --since/--until (created_at, inclusive). */
  range: SourceRange;
  /** Seconds re-read before a strfry checkpoint. */
  marginSec: number;
  /** Where this run's checkpoint is read and saved (key: checkpointKey(spec, range)); null: none (dry runs, stdin). */
  checkpoint: CheckpointIO | null;
  /** Forget the checkpoint and read everything again. */
  restart?: boolean;
  channel: IngestChannel;
  maxLineBytes: number;
  log: Logger;
  signal?: AbortSignal;
  nowSec?: () => number;
  onProgress?: (p: Progress) => void;
  /** How often the checkpoint is saved and progress reported (ms). */
  checkpointIntervalMs?: number;
  /** After an interruption, how long to wait for lines in flight to be acknowledged. */
  drainTimeoutMs?: number;
}

export interface Progress {
  read: number;
  sent: number;
  acked: number;
  bytes: number;
  /** 0..1 when the source's extent is known (file size; created_at range for strfry). */
  fraction: number | null;
  tally: Tally;
  elapsedMs: number;
  /** The last report of the run: every count is final (a progress bar shows it, then stops). */
  final?: boolean;
}

export interface BackfillSummary {
  source: string;
  checkpointKey: string | null;
  /** How this run continued an earlier one, or null. */
  resumed: string | null;
  /** What was asked of the source (strfry: the --since/--until it was given). */
  range: SourceRange;
  /** Lines read from the source (every kind). */
  read: number;
  bytes: number;
  sent: number;
  acked: number;
  new: number;
  duplicates: number;
  /** Policy and index refusals by reason (ephemeral, protected, expired, superseded, deleted, ...). */
  skipped: Tally;
  /** Lines that are not valid events, by reason (malformed, bad-id, bad-sig, line-too-long, ...). */
  invalid: Tally;
  /** Outside --since/--until. */
  filtered: number;
  empty: number;
  /** Source line numbers (from where this run started) of the first lines too long to send. */
  oversizedLines: number[];
  sourceError: string | null;
  channelError: string | null;
  interrupted: boolean;
  /** The source was read to its end and every line acknowledged. */
  complete: boolean;
  /**
   * Lines were read and none of them was an event (each was rejected as invalid: not JSON, not
   * an event object, too long...): most likely not a file of Nostr events at all.
   */
  notEvents: boolean;
  elapsedMs: number;
  checkpoint: Checkpoint | null;
}

export function checkpointKey(spec: SourceSpec, range: SourceRange): string | null {
  if (spec.kind === 'stdin') return null;
  const base = spec.kind === 'strfry' ? `strfry:${spec.config ? resolve(spec.config) : '(default config)'}` : `file:${resolve(spec.path)}`;
  const r = range.since !== undefined || range.until !== undefined ? `|since=${range.since ?? ''}|until=${range.until ?? ''}` : '';
  return base + r;
}

const MAX_OVERSIZED_REPORTED = 10;

export async function runBackfill(o: RunOptions): Promise<BackfillSummary> {
  const nowSec = o.nowSec ?? (() => Math.floor(Date.now() / 1000));
  const t0 = Date.now();
  const runStartSec = nowSec();
  const { spec, channel, log } = o;
  const cps = o.checkpoint;
  const key = cps?.key ?? null;

  // Where to start.
  let since = o.range.since;
  let startOffset = 0;
  let resumed: string | null = null;
  let prev: Checkpoint | undefined;
  if (cps) {
    if (o.restart) await cps.save(null);
    else prev = cps.load();
    if (prev && spec.kind === 'strfry' && prev.resumeCreatedAt !== undefined) {
      const from = Math.max(0, prev.resumeCreatedAt - o.marginSec);
      if (since === undefined || from > since) {
        since = from;
        resumed = `since created_at ${from} (checkpoint ${prev.resumeCreatedAt} minus the ${o.marginSec} s margin)`;
      }
    } else if (prev && spec.kind === 'file' && prev.offset) {
      if (await sameFile(spec.path, prev)) {
        startOffset = prev.offset;
        resumed = `from byte ${prev.offset} (${prev.lines} lines delivered by earlier runs)`;
      } else {
        log.warn(
          { file: spec.path },
          'the file is not the one the checkpoint describes; reading it from the start (the sidecar drops duplicates)',
        );
        prev = undefined;
      }
    }
  }
  let head: { head: string; headBytes: number } | null = null;
  const range: SourceRange = spec.kind === 'strfry' ? { since, until: o.range.until } : o.range;
  const source = await openSource(spec, range, startOffset);
  if (spec.kind === 'file' && source.totalBytes !== null) {
    const headBytes = Math.min(startOffset + source.totalBytes, HEAD_BYTES);
    head = { head: await fileHead(spec.path, headBytes), headBytes };
  }
  if (resumed) log.info({ source: source.describe, resumed }, 'resuming backfill');

  // Bookkeeping of lines in flight: created_at and end offset of each sent line.
  let pendCreated: number[] = [];
  let pendEnd: number[] = [];
  let pendHead = 0;
  let settled = 0;
  let deliveredOffset = startOffset;
  let deliveredCreatedAt: number | null = null;
  const settle = () => {
    const n = channel.acked - settled;
    for (let i = 0; i < n; i++) {
      const c = pendCreated[pendHead]!;
      if (c >= 0 && (deliveredCreatedAt === null || c > deliveredCreatedAt)) deliveredCreatedAt = c;
      deliveredOffset = pendEnd[pendHead]!;
      pendHead++;
    }
    settled += n;
    if (pendHead > 65_536 && pendHead * 2 > pendCreated.length) {
      pendCreated = pendCreated.slice(pendHead);
      pendEnd = pendEnd.slice(pendHead);
      pendHead = 0;
    }
  };

  const local: Tally = {};
  const oversizedLines: number[] = [];
  let read = 0;
  let filtered = 0;
  let empty = 0;
  let lastCreatedAt: number | null = null;
  let firstCreatedAt: number | null = null;
  const splitter = new LineSplitter(
    o.maxLineBytes,
    (l) => {
      read++;
      local['invalid.line-too-long'] = (local['invalid.line-too-long'] ?? 0) + 1;
      if (oversizedLines.length < MAX_OVERSIZED_REPORTED) oversizedLines.push(l.lineNo);
      log.warn(
        { source: source.describe, line: l.lineNo, bytes: l.bytes, maxLineBytes: o.maxLineBytes },
        'line longer than ingest.maxLineBytes skipped',
      );
    },
    startOffset,
  );

  let lastSaved = '';
  const checkpointNow = async (complete: boolean): Promise<Checkpoint | null> => {
    if (!cps) return null;
    settle();
    const cp: Checkpoint = { source: source.describe, complete, lines: (prev?.lines ?? 0) + settled, updatedAt: Date.now() };
    if (spec.kind === 'strfry') {
      let r: number | undefined = complete
        ? Math.min(o.range.until !== undefined ? o.range.until + 1 : runStartSec, runStartSec)
        : deliveredCreatedAt !== null
          ? Math.min(deliveredCreatedAt, runStartSec)
          : undefined;
      // Never move back: an earlier run may have got further.
      const before = prev?.resumeCreatedAt;
      if (before !== undefined && (r === undefined || before > r)) r = before;
      if (r !== undefined) cp.resumeCreatedAt = r;
    } else if (spec.kind === 'file') {
      cp.offset = deliveredOffset;
      if (head) Object.assign(cp, head);
    }
    const sig = `${cp.resumeCreatedAt}/${cp.offset}/${cp.lines}/${cp.complete}`;
    if (sig !== lastSaved) {
      await cps.save(cp);
      lastSaved = sig;
    }
    return cp;
  };

  const progress = (): Progress => {
    settle();
    let fraction: number | null = null;
    if (source.totalBytes !== null && source.totalBytes > 0) fraction = (splitter.offset - startOffset) / source.totalBytes;
    else if (spec.kind === 'strfry' && lastCreatedAt !== null) {
      const lo = since ?? firstCreatedAt ?? lastCreatedAt;
      const hi = Math.min(o.range.until ?? runStartSec, runStartSec);
      fraction = hi > lo ? (lastCreatedAt - lo) / (hi - lo) : null;
    }
    if (fraction !== null) fraction = Math.max(0, Math.min(1, fraction));
    const tally = { ...channel.tally };
    addTally(tally, local);
    return {
      read,
      sent: channel.sent,
      acked: channel.acked,
      bytes: splitter.offset - startOffset,
      fraction,
      tally,
      elapsedMs: Date.now() - t0,
    };
  };

  let ticking = false;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    o.onProgress?.(progress());
    checkpointNow(false)
      .catch((err) => log.error({ err }, 'checkpoint write failed'))
      .finally(() => (ticking = false));
  }, o.checkpointIntervalMs ?? 1000);

  const aborted = () => o.signal?.aborted === true;
  const onAbort = () => source.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let channelError: string | null = null;

  const handle = async (line: Buffer, end: number): Promise<void> => {
    read++;
    if (line.length === 0 || (line.length === 1 && line[0] === 13)) {
      empty++;
      markDone(end);
      return;
    }
    const c = createdAtOf(line);
    if (c !== null) {
      lastCreatedAt = c;
      firstCreatedAt ??= c;
    }
    if (c !== null && ((o.range.since !== undefined && c < o.range.since) || (o.range.until !== undefined && c > o.range.until))) {
      filtered++;
      markDone(end);
      return;
    }
    while (!channel.hasRoom) await channel.waitForAck(1000);
    channel.send(line);
    pendCreated.push(c ?? -1);
    pendEnd.push(end);
  };
  // A line that is not sent is done as soon as every line before it is.
  const markDone = (end: number) => {
    if (pendHead < pendEnd.length) pendEnd[pendEnd.length - 1] = end;
    else deliveredOffset = end;
  };

  try {
    try {
      for await (const chunk of source.chunks) {
        if (aborted()) break;
        const { lines, ends } = splitter.push(chunk);
        for (let i = 0; i < lines.length && !aborted(); i++) await handle(lines[i]!, ends[i]!);
        settle();
      }
      if (!aborted()) {
        const { lines, ends } = splitter.end();
        for (let i = 0; i < lines.length; i++) await handle(lines[i]!, ends[i]!);
      }
      // Everything sent must be acknowledged before the run counts as done.
      const drainDeadline = () => (aborted() ? Date.now() + (o.drainTimeoutMs ?? 10_000) : Infinity);
      let deadline = drainDeadline();
      while (channel.acked < channel.sent && Date.now() < deadline) {
        await channel.waitForAck(Math.min(1000, Math.max(1, deadline - Date.now())));
        if (deadline === Infinity && aborted()) deadline = drainDeadline();
      }
    } catch (err) {
      channelError = (err as Error).message;
      source.abort();
    }
    settle();
  } finally {
    clearInterval(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
  const sourceError = await source.result();
  const complete = !aborted() && sourceError === null && channelError === null && channel.acked === channel.sent;
  let checkpoint: Checkpoint | null = null;
  try {
    checkpoint = await checkpointNow(complete);
  } catch (err) {
    log.error({ err }, 'checkpoint write failed');
  }
  const p = progress();
  if (complete) p.fraction = 1;
  o.onProgress?.({ ...p, final: true });
  const skipped: Tally = {};
  const invalid: Tally = {};
  for (const [k, v] of Object.entries(p.tally)) {
    if (k.startsWith('skipped.')) skipped[k.slice(8)] = v;
    else if (k.startsWith('invalid.')) invalid[k.slice(8)] = v;
  }
  return {
    source: source.describe,
    checkpointKey: key,
    resumed,
    range,
    read,
    bytes: p.bytes,
    sent: channel.sent,
    acked: channel.acked,
    new: p.tally.indexed ?? 0,
    duplicates: p.tally.duplicate ?? 0,
    skipped,
    invalid,
    filtered,
    empty,
    oversizedLines,
    sourceError,
    channelError,
    interrupted: aborted(),
    complete,
    notEvents: noEventIn(read - empty - filtered, p.tally),
    elapsedMs: Date.now() - t0,
    checkpoint,
  };
}

/** Every one of `lines` (> 0) acknowledged as invalid: not one event, valid or refused by policy. */
function noEventIn(lines: number, tally: Tally): boolean {
  let invalid = 0;
  for (const [k, v] of Object.entries(tally)) {
    if (k.startsWith('invalid.')) invalid += v;
    else if (v > 0) return false;
  }
  return lines > 0 && invalid >= lines;
}

async function sameFile(path: string, cp: Checkpoint): Promise<boolean> {
  if (cp.head === undefined || cp.headBytes === undefined || cp.offset === undefined) return false;
  try {
    const { size } = await stat(path);
    if (size < cp.offset || size < cp.headBytes) return false;
    return (await fileHead(path, cp.headBytes)) === cp.head;
  } catch {
    return false;
  }
}
