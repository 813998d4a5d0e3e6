// How far the sidecar has indexed, read straight from its LMDB index in the benchmark's own
// process: a /status request costs the sidecar milliseconds of CPU, which the relay benchmark
// would otherwise count as the product's cost. LMDB allows readers in other processes; the
// counter is committed in the same transaction as the events it counts, so what this reads is
// exactly what a kill -9 would keep.

import { open, type Database, type RootDatabase } from 'lmdb';
import { join } from 'node:path';

export class IndexedProbe {
  private readonly root: RootDatabase;
  private readonly counters: Database<number, string>;
  private readonly meta: Database<unknown, string>;
  private closed = false;

  /** `dataDir` of a running sidecar (its index must exist: open after the sidecar is up). */
  constructor(dataDir: string) {
    // maxDbs as the sidecar opens it; read-only never creates or resizes anything.
    this.root = open({ path: join(dataDir, 'index'), readOnly: true, maxDbs: 24, compression: false });
    this.counters = this.root.openDB<number, string>({ name: 'counters', compression: false });
    this.meta = this.root.openDB<unknown, string>({ name: 'meta', compression: false });
  }

  /**
   * Events indexed so far, and the bundle frontier (events with a lower sequence number are in
   * bundles), as last committed: one snapshot.
   */
  progress(): { indexed: number; frontier: number } {
    if (this.closed) throw new Error('probe closed');
    this.root.resetReadTxn();
    // The key index/index-meta.ts keeps the frontier under.
    return { indexed: this.counters.get('indexed') ?? 0, frontier: (this.meta.get('bundle.frontier') as number | undefined) ?? 1 };
  }

  /** Events indexed so far (the sidecar's `events.indexed` counter, as last committed). */
  indexed(): number {
    if (this.closed) throw new Error('probe closed');
    // lmdb-js keeps its read snapshot until told: another process's commits show only after this.
    this.root.resetReadTxn();
    return this.counters.get('indexed') ?? 0;
  }

  /** Polls until `expected` events are indexed or `timeoutMs` passes; the last count read. */
  async waitFor(expected: number, timeoutMs: number, everyMs = 20): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let n = this.indexed();
    while (n < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, everyMs));
      n = this.indexed();
    }
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }
}
