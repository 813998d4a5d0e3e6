// Ingest: raw lines in (socket, spool, backfill) → parse, validate, policy → one LMDB transaction
// per batch → each source is told how many of its lines are committed (the socket turns that into
// acks). A failed commit (disk full, map full) keeps the batch and retries: nothing is dropped.
import { statfsSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import { ArrayBufferPool } from '../common/array-buffer-pool.js';
import { JudgePool, judgeInline } from '../judge/pool.js';
import { EVENT, INVALID, LinePacker, SKIPPED, lineText, type JudgeReply } from '../judge/wire.js';
import { ID_VERIFIED, VERIFY_ID, VERIFY_SIGNATURE, verifyFlags } from '../judge/wire.js';
import { lineBytesAt, type EventBatch } from '../judge/event-batch.js';
import type { TextOrBytes } from '../common/text-or-bytes.js';
import type { PolicyConfig } from '../policy/content-policy.js';
import type { Quarantine } from './quarantine.js';
import type { Counters, Outcome } from '../index/store.js';
import { TypedEmitter } from '../common/typed-emitter.js';
import { receivedAtOf } from './accept-lag.js';

export interface IngestSink {
  /** Where lines come from, for logs and quarantine: 'plugin', 'spool', 'backfill', ... */
  readonly source: string;
  /** Signatures were already checked upstream (strfry checks every event it hands a plugin). */
  readonly trusted: boolean;
  /**
   * Ids too were checked upstream: the lines come straight from strfry (a plugin connection), so
   * the judge skips hashing each event's serialization (docs/protocol.md §1). Not for lines from
   * disk or from other producers (spool, backfill, mirror), whose ids are always checked.
   */
  readonly idsVerified?: boolean;
  /** Called in order, after the lines' effects are committed. */
  committed(lines: number): void;
  /**
   * Optional: what became of those lines, called just before `committed` with counts by outcome
   * (`indexed`, `duplicate`, `skipped.<reason>`, `invalid.<reason>`; empty lines are not counted).
   */
  outcomes?(counts: Counters): void;
}

/**
 * One line, or a run of lines that arrived together (socket): the queue and the acks count
 * lines, and a chunk of the socket is one entry however many lines it holds (an object and a
 * view per line were most of what the socket cost the ingest thread's garbage collector).
 */
interface Entry {
  /**
   * As received: bytes from the socket (decoded by the judge), text from other sources. A run is
   * `lines` non-empty lines, each ending with a newline.
   */
  line: TextOrBytes;
  /** Lines this entry stands for (1 unless a run). */
  lines: number;
  run: boolean;
  sink: IngestSink;
  rejected?: string;
  /** performance.now() when the line was submitted (ingest latency). */
  at: number;
  /** Committed (its batch's transaction succeeded), and its lines' outcomes when the source wants them. */
  done?: boolean;
  outcomes?: Counters;
}

export interface BatchReport {
  lines: number;
  outcomes: Record<string, number>;
  /** Bytes of the events newly indexed (canonical JSON plus newline). */
  indexedBytes: number;
  /** For the lines counted as received: ms from their submission to the commit, and how many lines waited that long. */
  latencies: { ms: number; lines: number }[];
}

/** What the ingestor tells the stages after it and ops (sidecar.ts wires them). */
export interface IngestorEvents {
  /** A batch committed: the bundler counts its indexed bytes, metrics its latencies. */
  batch: [report: BatchReport];
  /** Room again below the high-water mark: paused sources (the socket) resume. */
  drain: [];
  /** A commit failed; the batch waits for its retry (the message names the cause). */
  stalled: [message: string];
}

/** What ingest needs of the index: one batch's effects committed in one transaction (index/store.ts). */
export interface IndexWriter {
  applyBatch(batch: EventBatch, extraCounts?: Counters): Promise<Outcome[]>;
}

const MAX_IN_FLIGHT = 2;
const BACKLOG_BATCH_FACTOR = 4;
const RETRY_MS = 1000;

export class Ingestor extends TypedEmitter<IngestorEvents> {
  /** Set while commits fail (disk or map full); cleared by the next successful commit. */
  lastError: string | null = null;
  /**
   * Seconds from strfry's accept (the plugin line's receivedAt) to the commit of the oldest line
   * of the last committed batch that had strfry lines: how far the index was behind the relay
   * then, including the time lines waited in the plugin and the socket. Whole seconds' precision.
   */
  acceptLagSeconds = 0;
  private queue: Entry[] = [];
  /** Lines in `queue` (an entry may be a run of lines). */
  private queuedLines = 0;
  /**
   * Every submitted line in submission order until acknowledged. Acks are cumulative counts, so
   * a line is acknowledged only when it and every line before it are committed: a batch that
   * failed and waits for its retry holds back the acks of later batches that committed.
   */
  private unacked: Entry[] = [];
  private unackedHead = 0;
  private unackedLines = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private policy: PolicyConfig;
  private readonly highWater: number;
  /** Worker threads that judge lines (null: judged on this thread, ingest.judgeThreads = 0). */
  readonly judges: JudgePool | null;
  /** Batch buffers for reuse while batches keep coming (see ArrayBufferPool). */
  private readonly buffers = new ArrayBufferPool(MAX_IN_FLIGHT + 1);
  /** Settles when the previous batch has handed its items to the store: batches apply in order. */
  private applyTurn: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: IndexWriter,
    private readonly quarantine: Quarantine,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly nowSec: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    super();
    this.policy = { ...config.policy, maxEventBytes: config.ingest.maxEventBytes };
    this.highWater = config.ingest.batchMaxEvents * BACKLOG_BATCH_FACTOR * 2;
    this.judges = config.ingest.judgeThreads > 0 ? new JudgePool(config.ingest.judgeThreads, log) : null;
  }

  /** Lines queued or being committed. Sources should pause while `saturated` is true. */
  get backlog(): number {
    return this.queuedLines;
  }

  /** Lines submitted but not yet acknowledged to their source (not committed, or behind one that is not). */
  get unacknowledged(): number {
    return this.unackedLines;
  }

  /**
   * Seconds since the oldest line not yet acknowledged reached the ingest queue (0 when all are):
   * how far the index is behind what the plugin handed over. Grows while the sidecar is starved of
   * CPU (it runs at a lower priority than the relay) or commits fail.
   */
  get lagSeconds(): number {
    const oldest = this.unacked[this.unackedHead];
    return oldest === undefined ? 0 : Math.max(0, (performance.now() - oldest.at) / 1000);
  }

  get saturated(): boolean {
    return this.queuedLines >= this.highWater || this.lastError !== null;
  }

  /** Resolves once the ingestor can take more lines (or after `timeoutMs`, to re-check). */
  waitForCapacity(timeoutMs = 1000): Promise<void> {
    if (!this.saturated) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('drain', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.on('drain', done);
    });
  }

  submit(line: TextOrBytes, sink: IngestSink): void {
    this.enqueue({ line, lines: 1, run: false, sink, at: performance.now() });
  }

  /** `lines` non-empty lines, each ending with a newline, as they arrived (a socket chunk's). */
  submitRun(bytes: Uint8Array, lines: number, sink: IngestSink): void {
    this.enqueue({ line: bytes, lines, run: true, sink, at: performance.now() });
  }

  /** Counts (and acknowledges in order) a line the source already had to refuse. */
  submitRejected(reason: string, sink: IngestSink): void {
    this.enqueue({ line: '', lines: 1, run: false, sink, rejected: reason, at: performance.now() });
  }

  private enqueue(entry: Entry): void {
    this.queue.push(entry);
    this.unacked.push(entry);
    this.queuedLines += entry.lines;
    this.unackedLines += entry.lines;
    if (this.queuedLines >= this.config.ingest.batchMaxEvents && entry.rejected === undefined) this.kick();
    else if (this.timer === null) this.timer = setTimeout(() => this.kick(), this.config.ingest.batchMaxDelayMs);
  }

  /** Resolves when everything submitted so far is committed. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    this.kick();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** SIGHUP: new content policy for lines not yet classified. */
  setPolicy(policy: Config['policy'], maxEventBytes: number): void {
    this.policy = { ...policy, maxEventBytes };
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = null;
    void this.judges?.close();
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0 && this.retryTimer === null) {
      // A commit costs tens of ms whatever its size (the disk sync): under a backlog, larger
      // batches amortize it.
      const max = this.config.ingest.batchMaxEvents;
      const limit = this.queuedLines >= 2 * max ? BACKLOG_BATCH_FACTOR * max : max;
      // Whole entries: a run may take a batch past the limit by less than a socket chunk.
      let take = 0;
      let lines = 0;
      while (take < this.queue.length && (take === 0 || lines + this.queue[take]!.lines <= limit)) lines += this.queue[take++]!.lines;
      const batch = this.queue.splice(0, take);
      this.queuedLines -= lines;
      this.inFlight++;
      void this.runBatch(batch);
    }
  }

  private async runBatch(batch: Entry[]): Promise<void> {
    const extra: Counters = {};
    const bump = (name: string, n = 1) => (extra[name] = (extra[name] ?? 0) + n);
    // Per-line outcomes (lines numbered across the batch's entries), only when some source of
    // this batch asked for them.
    const labels: (string | undefined)[] | null = batch.some((e) => e.sink.outcomes !== undefined) ? [] : null;
    const verifyMode = this.config.ingest.verifySignatures;
    const packer = new LinePacker();
    /** For each line sent to the judge: its line number in the batch, and its entry. */
    const lineAt: number[] = [];
    const lineEntry: number[] = [];
    /** Per line: VERIFY_ID, VERIFY_SIGNATURE or ID_VERIFIED (judge/wire.ts). */
    const flags: number[] = [];
    let line = 0;
    for (let x = 0; x < batch.length; x++) {
      const { line: text, lines, run, sink, rejected } = batch[x]!;
      const first = line;
      line += lines;
      if (rejected !== undefined) {
        bump('received');
        bump(`invalid.${rejected}`);
        if (labels) labels[first] = `invalid.${rejected}`;
        continue;
      }
      if (text.length === 0) continue;
      bump('received', lines);
      const verify =
        verifyMode === 'always' || (verifyMode === 'untrusted' && !sink.trusted)
          ? VERIFY_SIGNATURE
          : sink.idsVerified
            ? ID_VERIFIED
            : VERIFY_ID;
      if (run) packer.addRun(text as Buffer, lines);
      else packer.add(text);
      for (let i = first; i < line; i++) {
        lineAt.push(i);
        lineEntry.push(x);
        flags.push(verify);
      }
    }
    const verify = verifyFlags(flags);
    let judged: JudgeReply;
    let release = () => {};
    let packed = packer.done(this.buffers);
    // A small batch (a relay's 250 ms) is judged here: handing it to the worker and back costs
    // more than judging it, and on a relay host the worker's thread competes with strfry anyway.
    const inline = this.judges === null || lineAt.length <= this.config.ingest.judgeInlineMaxLines;
    // With judge workers every batch takes a turn: it is applied after the batch before it, which
    // a worker may still be judging, whichever thread judges this one.
    const turn = this.applyTurn;
    if (this.judges !== null) this.applyTurn = new Promise((r) => (release = r));
    if (inline) judged = judgeInline(packed, verify, this.policy, this.nowSec());
    else {
      // Judged off this thread while the previous batch's transaction runs; applied after it.
      // The packed lines go to the worker and come back (no copy); packed again if it dies.
      judged = await this.judges!.judge(packed, verify, this.policy, this.nowSec(), () => packer.done());
      packed = judged.input ?? packed;
    }
    if (this.judges !== null) await turn;
    // The line of each event, when outcomes are reported per line.
    const eventLine: number[] = [];
    let applying: Promise<Outcome[]>;
    try {
      for (let k = 0, x = 0; k < judged.status.length; k++) {
        const status = judged.status[k];
        if (status === EVENT) {
          if (labels) eventLine.push(lineAt[k]!);
          continue;
        }
        const reason = judged.reasons[x++]!;
        const label = `${status === SKIPPED ? 'skipped' : 'invalid'}.${reason}`;
        bump(label);
        if (labels) labels[lineAt[k]!] = label;
        if (status === INVALID) this.quarantine.add(reason, batch[lineEntry[k]!]!.sink, lineText(packed, k));
      }
      applying = this.store.applyBatch(judged, extra);
    } finally {
      release();
    }
    // Nothing reads the packed lines from here on: their buffer packs a later batch.
    this.buffers.give(packed.bytes.buffer as ArrayBuffer);
    let outcomes: Outcome[];
    try {
      outcomes = await applying;
    } catch (err) {
      this.onCommitFailure(batch, err);
      return;
    }
    if (this.lastError !== null) {
      this.log.info('index writes work again; ingest resumed');
      this.lastError = null;
    }
    if (labels) outcomes.forEach((o, k) => void (labels[eventLine[k]!] = o === 'indexed' || o === 'duplicate' ? o : `skipped.${o}`));
    line = 0;
    for (const e of batch) {
      e.done = true;
      if (labels && e.sink.outcomes) {
        const counts: Counters = {};
        for (let i = line; i < line + e.lines; i++) {
          const l = labels[i];
          if (l !== undefined) counts[l] = (counts[l] ?? 0) + 1;
        }
        e.outcomes = counts;
      }
      line += e.lines;
    }
    this.acknowledge();
    this.noteAcceptLag(batch);
    const committedAt = performance.now();
    const latencies: BatchReport['latencies'] = [];
    for (const e of batch) if (e.line.length > 0 || e.rejected !== undefined) latencies.push({ ms: committedAt - e.at, lines: e.lines });
    const report: BatchReport = { lines: line, outcomes: {}, indexedBytes: 0, latencies };
    outcomes.forEach((o, k) => {
      report.outcomes[o] = (report.outcomes[o] ?? 0) + 1;
      if (o === 'indexed') report.indexedBytes += lineBytesAt(judged, k);
    });
    this.emit('batch', report);
    // Committed and written: the judged lines' buffer is written into again (worker or here).
    if (this.judges && !inline) this.judges.recycle(judged);
    else this.buffers.give(judged.lines.buffer as ArrayBuffer);
    this.finishBatch();
  }

  private noteAcceptLag(batch: Entry[]): void {
    for (const e of batch) {
      if (e.line.length === 0) continue;
      const at = receivedAtOf(e.line);
      if (at !== null) this.acceptLagSeconds = Math.max(0, Date.now() / 1000 - at);
      return;
    }
  }

  /** Tells each source about its committed lines, in submission order, up to the first uncommitted one. */
  private acknowledge(): void {
    const q = this.unacked;
    let i = this.unackedHead;
    while (i < q.length && q[i]!.done) {
      const sink = q[i]!.sink;
      let lines = 0;
      const counts: Counters = {};
      for (; i < q.length && q[i]!.done && q[i]!.sink === sink; i++) {
        lines += q[i]!.lines;
        for (const [l, n] of Object.entries(q[i]!.outcomes ?? {})) counts[l] = (counts[l] ?? 0) + n;
      }
      this.unackedLines -= lines;
      if (sink.outcomes) sink.outcomes(counts);
      sink.committed(lines);
    }
    this.unackedHead = i;
    if (i === q.length) {
      this.unacked = [];
      this.unackedHead = 0;
    } else if (i > 64 && i * 2 > q.length) {
      // An acknowledged entry may hold a socket chunk (64 kB): let them go soon.
      this.unacked = q.slice(i);
      this.unackedHead = 0;
    }
  }

  private onCommitFailure(batch: Entry[], err: unknown): void {
    const describeError = (e: unknown) => `${errorText(e)}${this.diskSpace()}`;
    const message = describeError(err);
    const first = this.lastError === null;
    this.lastError = message;
    // lmdb-js rejects with "Commit failed (see commitError for details)": the cause (ENOSPC, ...)
    // comes through a second promise; it is what the operator needs to read.
    const cause = (err as { commitError?: unknown })?.commitError;
    if (cause instanceof Promise) {
      cause.then(
        () => {},
        (real: unknown) => {
          if (this.lastError !== null) this.lastError = describeError(real);
          if (first)
            this.log.error({ err: real }, `index commit failed (${describeError(real)}); ingest paused, retrying (nothing is dropped)`);
        },
      );
    } else if (first) this.log.error({ err }, `index commit failed (${message}); ingest paused, retrying (nothing is dropped)`);
    this.queue.unshift(...batch);
    for (const e of batch) this.queuedLines += e.lines;
    this.inFlight--;
    if (this.retryTimer === null) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.kick();
      }, RETRY_MS);
    }
    this.emit('stalled', message);
  }

  /** LMDB reports a full disk as a short write (EIO): say how much room is left. */
  private diskSpace(): string {
    try {
      const fs = statfsSync(this.config.indexDir);
      const free = fs.bavail * fs.bsize;
      return `; ${free < 1024 * 1024 ? `${Math.round(free / 1024)} kB` : `${Math.round(free / 1024 / 1024)} MB`} free on the disk of ${this.config.indexDir}`;
    } catch {
      return '';
    }
  }

  private finishBatch(): void {
    this.inFlight--;
    if (this.queue.length > 0) {
      if (this.queuedLines >= this.config.ingest.batchMaxEvents || this.timer === null) this.kick();
    }
    if (!this.saturated) this.emit('drain');
    if (this.queue.length === 0 && this.inFlight === 0) {
      this.buffers.clear();
      this.judges?.trim();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(String(code)) ? `${code}: ${err.message}` : err.message;
}
