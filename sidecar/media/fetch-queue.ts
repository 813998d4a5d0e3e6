// The background queue between "an archived event references a blob" and "the blob is fetched".
// Ingest must never wait for it: enqueue() is synchronous and never throws; a full queue drops the
// job and counts it. Memory is bounded by `maxQueued` jobs and `maxQueuedBytes` of their URLs
// and names (a job may carry up to 8 URLs of 2 kB: the count alone would allow 16 kB each), and one author can
// hold at most `maxQueuedPerAuthor` of them, so 10,000 URLs from one author cannot push out or
// starve everyone else. Jobs are dispatched round-robin over authors; all fetches share one
// bandwidth budget (`bytesPerSecond`, a token bucket with one second of burst).
import { setTimeout as sleep } from 'node:timers/promises';

export interface FetchJob {
  sha256: string;
  urls: readonly string[];
  /** Pubkey of the event's author: the unit of fairness and of quotas. */
  author: string;
  mime?: string;
  size?: number;
}

/** The queue's limits; each field is meant to be one config key (`[media]` section). */
export interface FetchQueueOptions {
  maxQueued: number;
  /** Bytes of the waiting jobs' URLs, hashes and author keys together. */
  maxQueuedBytes: number;
  maxQueuedPerAuthor: number;
  concurrency: number;
  /** Shared by all fetches; 0 = no limit. */
  bytesPerSecond: number;
}

export const DEFAULT_FETCH_QUEUE_OPTIONS: FetchQueueOptions = {
  maxQueued: 10_000,
  maxQueuedBytes: 8 * 1024 ** 2,
  maxQueuedPerAuthor: 100,
  concurrency: 4,
  bytesPerSecond: 0,
};

export interface WorkerContext {
  /** Call with each chunk's size before taking it; resolves when the budget allows (see FetchRequest.pace). */
  pace: (bytes: number) => Promise<void> | void;
  /** Aborted by stop(). */
  signal: AbortSignal;
}

/** Fetches one job; resolves with the bytes kept, throws otherwise (an error's string `code` is what the failure is counted as). */
export type FetchWorker = (job: FetchJob, ctx: WorkerContext) => Promise<{ bytes: number }>;

export type EnqueueResult = 'queued' | 'duplicate' | 'dropped-full' | 'dropped-author' | 'stopped';

export type JobOutcome = { ok: true; bytes: number } | { ok: false; code: string; message: string };

/** Counters and gauges for /status and /metrics (a plain object, safe to serialize). */
export interface FetchQueueStats {
  /** Gauges. */
  queued: number;
  queuedBytes: number;
  inFlight: number;
  authorsQueued: number;
  /** Counters since start. */
  enqueued: number;
  duplicates: number;
  droppedFull: number;
  droppedAuthor: number;
  fetched: number;
  fetchedBytes: number;
  failed: number;
  /** Failures by the error's `code` (FetchError codes, quota refusals, ENOSPC, …; 'error' if it has none). */
  failures: Record<string, number>;
}

export class FetchQueue {
  /** Insertion order is the round-robin order: an author served goes to the back. */
  private readonly byAuthor = new Map<string, FetchJob[]>();
  /** sha256 of every job queued or in flight. */
  private readonly pending = new Set<string>();
  private queued = 0;
  private queuedBytes = 0;
  private inFlight = 0;
  private readonly counters = { enqueued: 0, duplicates: 0, droppedFull: 0, droppedAuthor: 0, fetched: 0, fetchedBytes: 0, failed: 0 };
  private readonly failures: Record<string, number> = {};
  private readonly abort = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  private readonly bucket: TokenBucket | null;

  constructor(
    private readonly opts: FetchQueueOptions,
    private readonly worker: FetchWorker,
    /** Told about every finished job (to index the blob, or log the failure). */
    private readonly onDone: (job: FetchJob, outcome: JobOutcome) => void = () => {},
  ) {
    for (const k of ['maxQueued', 'maxQueuedBytes', 'maxQueuedPerAuthor', 'concurrency'] as const) {
      if (!Number.isSafeInteger(opts[k]) || opts[k] < 1)
        throw new RangeError(`fetch queue: ${k} must be a positive integer, not ${opts[k]}`);
    }
    if (!(opts.bytesPerSecond >= 0)) throw new RangeError(`fetch queue: bytesPerSecond must be ≥ 0, not ${opts.bytesPerSecond}`);
    this.bucket = opts.bytesPerSecond > 0 ? new TokenBucket(opts.bytesPerSecond, this.abort.signal) : null;
  }

  /** Queues a job and returns at once; never throws for a full queue (the drop is counted). */
  enqueue(job: FetchJob): EnqueueResult {
    if (this.stopped) return 'stopped';
    if (this.pending.has(job.sha256)) {
      this.counters.duplicates++;
      return 'duplicate';
    }
    const mine = this.byAuthor.get(job.author);
    if ((mine?.length ?? 0) >= this.opts.maxQueuedPerAuthor) {
      this.counters.droppedAuthor++;
      return 'dropped-author';
    }
    const weight = weightOf(job);
    if (this.queued >= this.opts.maxQueued || this.queuedBytes + weight > this.opts.maxQueuedBytes) {
      this.counters.droppedFull++;
      return 'dropped-full';
    }
    if (mine) mine.push(job);
    else this.byAuthor.set(job.author, [job]);
    this.pending.add(job.sha256);
    this.queued++;
    this.queuedBytes += weight;
    this.counters.enqueued++;
    this.pump();
    return 'queued';
  }

  stats(): FetchQueueStats {
    return {
      queued: this.queued,
      queuedBytes: this.queuedBytes,
      inFlight: this.inFlight,
      authorsQueued: this.byAuthor.size,
      ...this.counters,
      failures: { ...this.failures },
    };
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queued === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what is queued, aborts what is in flight and waits for it to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const jobs of this.byAuthor.values()) for (const j of jobs) this.pending.delete(j.sha256);
    this.byAuthor.clear();
    this.queued = 0;
    this.queuedBytes = 0;
    this.abort.abort();
    await Promise.all([...this.running]);
    this.wakeIdle();
  }

  private next(): FetchJob | undefined {
    const first = this.byAuthor.entries().next();
    if (first.done) return undefined;
    const [author, jobs] = first.value;
    const job = jobs.shift()!;
    this.byAuthor.delete(author);
    if (jobs.length > 0) this.byAuthor.set(author, jobs);
    this.queued--;
    this.queuedBytes -= weightOf(job);
    return job;
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.opts.concurrency) {
      const job = this.next();
      if (!job) break;
      this.inFlight++;
      const p = this.run(job).finally(() => {
        this.running.delete(p);
        this.inFlight--;
        this.pump();
        this.wakeIdle();
      });
      this.running.add(p);
    }
  }

  private async run(job: FetchJob): Promise<void> {
    let outcome: JobOutcome;
    try {
      const bucket = this.bucket;
      const ctx: WorkerContext = { pace: bucket ? (n) => bucket.take(n) : () => {}, signal: this.abort.signal };
      const { bytes } = await this.worker(job, ctx);
      this.counters.fetched++;
      this.counters.fetchedBytes += bytes;
      outcome = { ok: true, bytes };
    } catch (err) {
      const c = (err as { code?: unknown } | null)?.code;
      const code = typeof c === 'string' && c.length <= 40 ? c : 'error';
      this.counters.failed++;
      this.failures[code] = (this.failures[code] ?? 0) + 1;
      outcome = { ok: false, code, message: (err as Error).message };
    } finally {
      this.pending.delete(job.sha256);
    }
    try {
      this.onDone(job, outcome);
    } catch {
      // The listener's failure is its own; the queue goes on.
    }
  }

  private wakeIdle(): void {
    if (this.queued !== 0 || this.inFlight !== 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of w) resolve();
  }
}

/** What a waiting job holds, roughly in bytes (URLs are ASCII once normalized). */
function weightOf(job: FetchJob): number {
  let n = 64 + job.sha256.length + job.author.length;
  for (const u of job.urls) n += u.length;
  return n;
}

/** Bytes per second with one second of burst; concurrent takers wait in turn (the debt adds up). */
class TokenBucket {
  private tokens: number;
  private at = performance.now();

  constructor(
    private readonly rate: number,
    private readonly signal: AbortSignal,
  ) {
    this.tokens = rate;
  }

  take(n: number): Promise<void> | void {
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    this.tokens -= n;
    if (this.tokens >= 0) return;
    return sleep(Math.ceil((-this.tokens / this.rate) * 1000), undefined, { signal: this.signal }).catch(() => {});
  }
}
