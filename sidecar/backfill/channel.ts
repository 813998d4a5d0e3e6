// Where backfilled lines go: the sidecar's ingest, either over its socket (the backfill command,
// socket-channel.ts) or in process (the sidecar's own reconciliation, below), or nowhere for a dry
// run (dry-run-channel.ts). Every channel bounds the lines in flight and reports, per
// acknowledged line, what became of it (the sidecar's outcome names, docs/protocol.md §2).
import type { IngestSink } from '../ingest/ingestor.js';

export type Tally = Record<string, number>;

export interface IngestChannel {
  /** Lines handed to send(). */
  readonly sent: number;
  /** Lines the sidecar consumed (committed or counted), in order: always the first `acked` sent. */
  readonly acked: number;
  /** Outcomes of the acknowledged lines, cumulative. */
  readonly tally: Tally;
  /** False while the bound on lines in flight is reached: wait for acknowledgements. */
  readonly hasRoom: boolean;
  send(line: Buffer): void;
  /** Resolves on the next acknowledgement or after `ms`; rejects once the channel failed for good. */
  waitForAck(ms: number): Promise<void>;
  close(): Promise<void>;
}

export function addTally(into: Tally, from: Tally): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** What an in-process channel needs of ingest (the Ingestor): lines in, and a wait while it is saturated. */
export interface ChannelIntake {
  submit(line: Buffer, sink: IngestSink): void;
  readonly saturated: boolean;
  waitForCapacity(timeoutMs?: number): Promise<void>;
}

/** Straight into the sidecar's Ingestor (reconciliation runs inside the sidecar). */
export class IngestorChannel implements IngestChannel {
  sent = 0;
  acked = 0;
  readonly tally: Tally = {};
  private readonly sink: IngestSink;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly ingestor: ChannelIntake,
    source: string,
    trusted: boolean,
    private readonly maxUnacked: number,
  ) {
    this.sink = {
      source,
      trusted,
      committed: (n) => {
        this.acked += n;
        for (const w of [...this.waiters]) w();
      },
      outcomes: (counts) => addTally(this.tally, counts),
    };
  }

  get hasRoom(): boolean {
    return this.sent - this.acked < this.maxUnacked && !this.ingestor.saturated;
  }

  send(line: Buffer): void {
    // Kept as a view of its chunk until committed: the sources are Node streams, which hand out
    // a chunk's memory once and never write it again.
    this.ingestor.submit(line, this.sink);
    this.sent++;
  }

  async waitForAck(ms: number): Promise<void> {
    if (this.ingestor.saturated && this.sent === this.acked) return this.ingestor.waitForCapacity(ms);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  async close(): Promise<void> {}
}
