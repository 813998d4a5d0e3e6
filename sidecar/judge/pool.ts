// Judges batches of ingest lines (parse, id and signature check, canonical JSON, policy) in
// worker threads, so the ingest thread keeps only the index transaction. Results are exactly
// judgeLine's (the worker calls it). A worker that crashes, errs or stalls is replaced; its
// unanswered batches are judged on the calling thread, in order: nothing is lost or reordered.
// Until a worker has started (its module and the signature WASM loaded), batches are judged on
// the calling thread too: a start never delays ingest.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { judgeRequest, lineCount, type JudgeReply, type JudgeRequest, type JudgeSpares, type JudgeTrim, type LineBatch } from './wire.js';
import type { PolicyConfig } from '../policy/content-policy.js';

/** A worker that has not answered for this long is ended (its batches are judged inline). */
const STALL_MS = 30_000;
/** After a worker dies, batches are judged inline this long before a new worker is started. */
const RESTART_DELAY_MS = 1000;

interface Job {
  seq: number;
  /** Detached when it was transferred to the worker (then `repack` gives the lines again). */
  lines: LineBatch;
  repack: (() => LineBatch) | null;
  verify: boolean | Uint8Array;
  policy: PolicyConfig;
  nowSec: number;
  resolve: (r: JudgeReply) => void;
}

interface Slot {
  worker: Worker;
  /** Requests sent and not answered, oldest first (a worker answers in order). */
  pending: Job[];
  policySent: PolicyConfig | null;
  /** The worker said it is ready; resolves then (or when it dies). */
  ready: boolean;
  started: Promise<void>;
  stallTimer: NodeJS.Timeout | null;
  dead: boolean;
}

/** What a worker answers, computed on the calling thread. */
export function judgeInline(lines: LineBatch, verify: boolean | Uint8Array, policy: PolicyConfig, nowSec: number): JudgeReply {
  return judgeRequest({ seq: 0, lines, verify, nowSec }, policy);
}

export class JudgePool {
  private readonly slots: (Slot | null)[];
  private readonly restartAt: number[];
  private next = 0;
  private seq = 0;
  private closed = false;
  /** Workers replaced after a crash, error or stall (status, tests). */
  restarts = 0;
  /** Batches a worker judged (the others were judged on the calling thread). */
  workerBatches = 0;

  constructor(
    threads: number,
    private readonly log: Logger,
  ) {
    this.slots = new Array<Slot | null>(threads).fill(null);
    this.restartAt = new Array<number>(threads).fill(0);
  }

  /** Workers up now. */
  get running(): number {
    return this.slots.filter((s) => s !== null).length;
  }

  /**
   * judgeLine for each line (verify: one flag or one per line), in a worker when one is up. With
   * `repack`, the lines' buffer is transferred to the worker instead of copied, and comes back as
   * the reply's `input`; `repack` gives the lines again if the worker dies with them.
   */
  judge(
    lines: LineBatch,
    verify: boolean | Uint8Array,
    policy: PolicyConfig,
    nowSec: number,
    repack?: () => LineBatch,
  ): Promise<JudgeReply> {
    const slot = this.closed || lineCount(lines) === 0 ? null : this.slotFor();
    if (!slot) return Promise.resolve(judgeInline(lines, verify, policy, nowSec));
    return new Promise((resolve) => {
      const job: Job = { seq: ++this.seq, lines, repack: repack ?? null, verify, policy, nowSec, resolve };
      const req: JudgeRequest = { seq: job.seq, lines, verify, nowSec };
      if (repack) req.returnInput = true;
      if (slot.policySent !== policy) req.policy = slot.policySent = policy;
      if (slot.pending.length === 0) slot.worker.ref();
      slot.pending.push(job);
      this.armStallTimer(slot);
      slot.worker.postMessage(req, repack ? [lines.bytes.buffer as ArrayBuffer] : []);
    });
  }

  /** Gives a reply's JSON buffer to a worker to write a later reply into (see ArrayBufferPool). */
  recycle(reply: JudgeReply): void {
    const slot = this.slots.find((s) => s !== null && s.ready && !s.dead);
    const buffer = reply.lines.buffer as ArrayBuffer;
    if (!slot || buffer.byteLength === 0) return;
    slot.worker.postMessage({ spares: [buffer] } satisfies JudgeSpares, [buffer]);
  }

  /** Ingest is idle: the workers let their spare buffers go. */
  trim(): void {
    for (const s of this.slots) if (s && s.ready && !s.dead) s.worker.postMessage({ trim: true } satisfies JudgeTrim);
  }

  /** Starts every worker and resolves once they are ready (or died). */
  async warm(): Promise<void> {
    if (this.closed) return;
    const slots = this.slots.map((s, i) => s ?? (Date.now() < this.restartAt[i]! ? null : (this.slots[i] = this.start(i))));
    await Promise.all(slots.map((s) => s?.started));
  }

  /** Ends the workers; later batches are judged inline. Unanswered batches are judged inline. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s, i) => (s ? this.retire(i, s, null) : undefined)));
  }

  /** Test only: ends a worker as a crash would ('terminate' from outside, 'throw' from inside). */
  crashForTest(how: 'terminate' | 'throw'): void {
    const slot = this.slots.find((s) => s !== null);
    if (!slot) throw new Error('no judge worker is running');
    if (how === 'terminate') void slot.worker.terminate();
    else
      slot.worker.postMessage({
        seq: 0,
        lines: { bytes: new Uint8Array(0), ends: new Uint32Array(0) },
        verify: false,
        nowSec: 0,
        crash: true,
      } satisfies JudgeRequest);
  }

  /** Round robin over the threads; starts a worker where none runs (unless one just died). */
  private slotFor(): Slot | null {
    const i = this.next;
    this.next = (this.next + 1) % this.slots.length;
    const s = this.slots[i];
    if (s) return s.ready ? s : null;
    if (Date.now() >= this.restartAt[i]!) this.slots[i] = this.start(i);
    return null;
  }

  private start(i: number): Slot {
    const worker = new Worker(new URL('./worker.js', import.meta.url));
    worker.unref();
    let started = () => {};
    const slot: Slot = {
      worker,
      pending: [],
      policySent: null,
      ready: false,
      started: new Promise((r) => (started = r)),
      stallTimer: null,
      dead: false,
    };
    worker.once('message', () => {
      slot.ready = true;
      started();
      worker.on('message', (r: JudgeReply) => this.onReply(slot, r));
    });
    worker.once('exit', () => started());
    worker.on('error', (err) => void this.retire(i, slot, `judge worker failed (${err.message})`));
    worker.on('messageerror', (err) => void this.retire(i, slot, `judge worker sent an unreadable reply (${err.message})`));
    worker.on('exit', (code) => void this.retire(i, slot, `judge worker exited (code ${code})`));
    return slot;
  }

  private onReply(slot: Slot, r: JudgeReply): void {
    const job = slot.pending.shift();
    if (!job) return;
    if (slot.pending.length === 0) slot.worker.unref();
    this.armStallTimer(slot);
    if (r.seq !== job.seq || r.status.length !== lineCount(job.lines)) {
      this.log.warn({ expected: job.seq, got: r.seq }, 'judge worker answered out of order; judging inline');
      job.resolve(judgeHere(job));
      return;
    }
    this.workerBatches++;
    job.resolve(r);
  }

  private armStallTimer(slot: Slot): void {
    if (slot.stallTimer) clearTimeout(slot.stallTimer);
    slot.stallTimer = null;
    if (slot.pending.length === 0 || slot.dead) return;
    slot.stallTimer = setTimeout(() => {
      this.log.warn({ pending: slot.pending.length }, `judge worker did not answer for ${STALL_MS / 1000} s; replacing it`);
      void slot.worker.terminate();
    }, STALL_MS);
    slot.stallTimer.unref();
  }

  /** Takes a worker out of service; its unanswered batches are judged here, in order. */
  private async retire(i: number, slot: Slot, why: string | null): Promise<void> {
    if (slot.dead) return;
    slot.dead = true;
    if (this.slots[i] === slot) this.slots[i] = null;
    if (slot.stallTimer) clearTimeout(slot.stallTimer);
    if (why !== null && !this.closed) {
      this.restarts++;
      this.restartAt[i] = Date.now() + RESTART_DELAY_MS;
      this.log.warn(
        { pending: slot.pending.length },
        `${why}; its batches are judged on the ingest thread, a new worker starts in ${RESTART_DELAY_MS} ms`,
      );
    }
    const jobs = slot.pending.splice(0);
    for (const job of jobs) job.resolve(judgeHere(job));
    await slot.worker.terminate();
  }
}

/** Judges a job on this thread; lines that went to the worker are packed again (and returned as `input`). */
function judgeHere(job: Job): JudgeReply {
  if (!job.repack) return judgeInline(job.lines, job.verify, job.policy, job.nowSec);
  const lines = job.repack();
  return { ...judgeInline(lines, job.verify, job.policy, job.nowSec), input: lines };
}
