// Runs window cuts (bundles/cut.ts) in a worker thread, so copying a window's lines, hashing its
// pieces and encoding its torrent do not hold the ingest thread. A cut whose worker dies is
// built on the calling thread instead (the request still holds its references); a worker is
// started again for the next cut.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { buildCut, type BuiltCut, type CutRefs } from './cut.js';
import type { CutReply, CutRequest } from './cut-worker.js';

const CUT_WORKER_YOUNG_GENERATION_MB = 8;

interface Pending {
  resolve: (r: BuiltCut) => void;
  reject: (err: Error) => void;
  fallback: () => void;
}

export class CutThread {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Cuts built on the calling thread because the worker died (status, tests). */
  fallbacks = 0;

  constructor(private readonly log: Logger) {}

  build(root: string, logPath: string, refs: CutRefs): Promise<BuiltCut> {
    if (this.closed) return buildCut(root, logPath, refs);
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<BuiltCut>((resolve, reject) => {
      const fallback = () => {
        this.fallbacks++;
        buildCut(root, logPath, refs).then(resolve, reject);
      };
      this.pending.set(id, { resolve, reject, fallback });
      worker.ref();
      // Copied, not transferred: `refs` stays here for the fallback.
      worker.postMessage({ id, root, logPath, refs } satisfies CutRequest);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
    this.failPending('bundle cut worker stopped');
  }

  /** Test only: ends the worker as a crash would. */
  crashForTest(): Promise<number> | undefined {
    return this.worker?.terminate();
  }

  private start(): Worker {
    // Its garbage is a cut's per-line objects, short-lived: a small young generation keeps the
    // thread's memory small (at 1M events: ~50 MB less peak RSS than the default).
    const worker = new Worker(new URL('./cut-worker.js', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: CUT_WORKER_YOUNG_GENERATION_MB },
    });
    worker.unref();
    worker.on('message', (reply: CutReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      // Idle, it must not keep the process alive.
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) return p.reject(new Error(reply.error));
      const built = reply.result.built;
      // Structured cloning turns a Buffer into a plain Uint8Array.
      if (built) built.torrent = Buffer.from(built.torrent.buffer, built.torrent.byteOffset, built.torrent.byteLength);
      p.resolve(reply.result);
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      if (!this.closed && this.pending.size > 0) this.log.warn(`${why}: building its cut on the main thread`);
      const waiting = [...this.pending.values()];
      this.pending.clear();
      for (const p of waiting) this.closed ? p.reject(new Error(why)) : p.fallback();
    };
    worker.on('error', (err) => lost(`bundle cut worker failed (${err.message})`));
    worker.on('exit', (code) => lost(`bundle cut worker exited (code ${code})`));
    this.worker = worker;
    return worker;
  }

  private failPending(why: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(new Error(why));
  }
}
