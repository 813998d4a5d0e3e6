// Signature checks off the main thread, for a restore's many files: Schnorr verification is
// most of a restore's CPU, and on the main thread it held up the downloads and the pipe to
// strfry. A few worker threads (cores − 1, at least 1, at most 4) take one file each; a file
// sent to a pool whose thread failed is checked on the main thread instead, so nothing is lost.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { Rejections, verifyJsonl, type RejectReason } from './verify-events.js';
import type { VerifyTask } from './verify-worker.js';

interface Result {
  events: NostrEvent[];
  rejected: Partial<Record<RejectReason, number>>;
}

interface Thread {
  worker: Worker;
  busy: boolean;
  broken: boolean;
}

export class VerifyPool {
  private readonly threads: Thread[] = [];
  private readonly queue: { task: VerifyTask; resolve: (r: Result) => void }[] = [];
  private readonly pending = new Map<number, { task: VerifyTask; resolve: (r: Result) => void; thread: Thread }>();
  private nextId = 0;

  constructor(size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    for (let i = 0; i < size; i++) {
      const thread: Thread = { worker: new Worker(new URL('./verify-worker.js', import.meta.url)), busy: true, broken: false };
      thread.worker.on('message', (m: { ready?: true; id?: number } & Partial<Result>) => {
        if (!m.ready) {
          const p = this.pending.get(m.id!);
          this.pending.delete(m.id!);
          p?.resolve({ events: m.events!, rejected: m.rejected! });
        }
        thread.busy = false;
        this.pump();
      });
      const fail = () => {
        if (thread.broken) return;
        thread.broken = true;
        for (const [id, p] of this.pending) {
          if (p.thread !== thread) continue;
          this.pending.delete(id);
          p.resolve(inline(p.task));
        }
        if (this.threads.every((t) => t.broken)) for (const q of this.queue.splice(0)) q.resolve(inline(q.task));
        else this.pump();
      };
      thread.worker.on('error', fail);
      thread.worker.on('exit', fail);
      this.threads.push(thread);
    }
  }

  /** The events of one author file that verify, and what was rejected. */
  verify(bytes: Buffer, author: string, maxEventBytes: number): Promise<Result> {
    const task: VerifyTask = { id: this.nextId++, bytes, author, maxEventBytes };
    if (this.threads.every((t) => t.broken)) return Promise.resolve(inline(task));
    return new Promise((resolve) => {
      this.queue.push({ task, resolve });
      this.pump();
    });
  }

  private pump(): void {
    for (const thread of this.threads) {
      if (thread.busy || thread.broken || this.queue.length === 0) continue;
      const q = this.queue.shift()!;
      thread.busy = true;
      this.pending.set(q.task.id, { ...q, thread });
      thread.worker.postMessage(q.task);
    }
  }

  async close(): Promise<void> {
    for (const t of this.threads) t.broken = true;
    for (const q of this.queue.splice(0)) q.resolve(inline(q.task));
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.resolve(inline(p.task));
    }
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

function inline(t: VerifyTask): Result {
  const rejections = new Rejections();
  const events = verifyJsonl(Buffer.from(t.bytes), t.author, rejections, { maxEventBytes: t.maxEventBytes });
  return { events, rejected: rejections.counts };
}
