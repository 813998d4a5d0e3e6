// Reconciliation: the sidecar runs the incremental backfill itself — `strfry export` from the
// checkpoint minus a margin — on start and every `reconcile.intervalSeconds`, so the archive
// converges on the relay even for events that never passed through the plugin (strfry import,
// plugin or sidecar outages, spool overflow). Lines go straight into the ingestor (same policy,
// dedupe and bundling as live events); the checkpoint is the one `nostr-bt-backfill --strfry`
// uses for the same strfry config, so a manual backfill and reconciliation continue each other.
import type { Logger } from 'pino';
import type { Config } from '../common/config.js';
import type { CheckpointIO } from '../index/checkpoints.js';
import { IngestorChannel, type ChannelIntake } from './channel.js';
import { checkpointKey, runBackfill, type BackfillSummary } from './runner.js';
import type { SourceSpec } from './event-source.js';

const MAX_UNACKED = 20_000;

export interface ReconcileStatus {
  running: boolean;
  runs: number;
  failures: number;
  lastFinishedAt: string | null;
  last: Pick<
    BackfillSummary,
    'source' | 'read' | 'new' | 'duplicates' | 'skipped' | 'invalid' | 'sourceError' | 'complete' | 'elapsedMs'
  > | null;
  nextAt: string | null;
}

export class Reconciler {
  runs = 0;
  failures = 0;
  last: BackfillSummary | null = null;
  private lastFinishedAt: number | null = null;
  private nextAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private current: { ac: AbortController; done: Promise<BackfillSummary> } | null = null;
  private stopped = false;

  constructor(
    private readonly config: Config['reconcile'],
    /** The index's backfill checkpoints (index/checkpoints.ts CheckpointStore). */
    private readonly checkpoints: { io(key: string): CheckpointIO },
    /** Where the exported lines go (the Ingestor). */
    private readonly ingestor: ChannelIntake,
    private readonly maxLineBytes: number,
    private readonly log: Logger,
    private readonly nowSec?: () => number,
  ) {}

  /** First run now, then every interval (measured from the end of the previous run). */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs once now (or joins the run in progress). */
  runOnce(): Promise<BackfillSummary> {
    if (this.current) return this.current.done;
    const ac = new AbortController();
    const done = this.run(ac.signal).finally(() => {
      this.current = null;
    });
    this.current = { ac, done };
    return done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextAt = null;
    const cur = this.current;
    if (cur) {
      cur.ac.abort();
      await cur.done.catch(() => {});
    }
  }

  status(): ReconcileStatus {
    const l = this.last;
    return {
      running: this.current !== null,
      runs: this.runs,
      failures: this.failures,
      lastFinishedAt: this.lastFinishedAt === null ? null : new Date(this.lastFinishedAt).toISOString(),
      last: l && {
        source: l.source,
        read: l.read,
        new: l.new,
        duplicates: l.duplicates,
        skipped: l.skipped,
        invalid: l.invalid,
        sourceError: l.sourceError,
        complete: l.complete,
        elapsedMs: l.elapsedMs,
      },
      nextAt: this.nextAt === null ? null : new Date(this.nextAt).toISOString(),
    };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.nextAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.nextAt = null;
      void this.runOnce()
        .catch(() => {})
        .finally(() => this.schedule(this.config.intervalSeconds * 1000));
    }, ms);
    this.timer.unref();
  }

  private async run(signal: AbortSignal): Promise<BackfillSummary> {
    const log = this.log.child({ component: 'reconcile' });
    const channel = new IngestorChannel(this.ingestor, 'reconcile', !this.config.verifySignatures, MAX_UNACKED);
    const spec: SourceSpec = { kind: 'strfry', bin: this.config.strfry, config: this.config.strfryConfig || undefined };
    let summary: BackfillSummary;
    try {
      summary = await runBackfill({
        spec,
        range: {},
        marginSec: this.config.marginSeconds,
        checkpoint: this.checkpoints.io(checkpointKey(spec, {})!),
        channel,
        maxLineBytes: this.maxLineBytes,
        log,
        signal,
        nowSec: this.nowSec,
        checkpointIntervalMs: 5000,
      });
    } catch (err) {
      this.failures++;
      log.error({ err }, 'reconciliation failed');
      throw err;
    }
    this.runs++;
    this.last = summary;
    this.lastFinishedAt = Date.now();
    const fields = {
      source: summary.source,
      resumed: summary.resumed,
      read: summary.read,
      new: summary.new,
      duplicates: summary.duplicates,
      skipped: summary.skipped,
      invalid: summary.invalid,
      ms: summary.elapsedMs,
    };
    if (summary.sourceError) {
      this.failures++;
      log.error({ ...fields, error: summary.sourceError }, 'reconciliation: strfry export failed; retrying at the next interval');
    } else if (summary.interrupted) log.info(fields, 'reconciliation interrupted');
    else log.info(fields, 'reconciliation finished');
    return summary;
  }
}
