// Progress while a backfill runs: a cli-progress bar (events/s, ETA) when stderr is a terminal,
// otherwise one structured log line every `intervalMs` (journald, CI, pipes). The run's final
// report is always shown, so the bar ends at the final count rather than at the last tick's.
import cliProgress from 'cli-progress';
import type { Logger } from 'pino';
import type { Progress } from './runner.js';

export interface ProgressReporter {
  update(p: Progress): void;
  stop(): void;
}

const SCALE = 10_000;

export function progressReporter(opts: { tty: boolean; log: Logger; intervalMs: number }): ProgressReporter {
  if (opts.tty) return new BarReporter();
  return new LogReporter(opts.log, opts.intervalMs);
}

class BarReporter implements ProgressReporter {
  private readonly bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {percentage}% | {read} lines | {rate} ev/s | new {new} dup {dup} skipped {skipped} errors {errors} | ETA {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 30,
      fps: 4,
    },
    cliProgress.Presets.shades_classic,
  );
  private started = false;
  private last = { at: Date.now(), acked: 0, rate: 0 };

  update(p: Progress): void {
    const now = Date.now();
    const dt = (now - this.last.at) / 1000;
    if (dt >= 1) {
      const inst = (p.acked - this.last.acked) / dt;
      this.last = { at: now, acked: p.acked, rate: this.last.rate === 0 ? inst : 0.7 * this.last.rate + 0.3 * inst };
    }
    const payload = {
      read: p.read.toLocaleString('en-US'),
      rate: Math.round(this.last.rate).toLocaleString('en-US'),
      new: p.tally.indexed ?? 0,
      dup: p.tally.duplicate ?? 0,
      skipped: sumPrefix(p.tally, 'skipped.'),
      errors: sumPrefix(p.tally, 'invalid.'),
    };
    const value = Math.round((p.fraction ?? 0) * SCALE);
    if (!this.started) {
      this.bar.start(SCALE, value, payload);
      this.started = true;
    } else this.bar.update(value, payload);
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

class LogReporter implements ProgressReporter {
  private lastAt = 0;
  private lastAcked = 0;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  update(p: Progress): void {
    const now = Date.now();
    if (!p.final && this.lastAt !== 0 && now - this.lastAt < this.intervalMs) return;
    const rate =
      this.lastAt === 0 ? p.acked / Math.max(p.elapsedMs / 1000, 0.001) : (p.acked - this.lastAcked) / ((now - this.lastAt) / 1000);
    this.lastAt = now;
    this.lastAcked = p.acked;
    this.log.info(
      {
        read: p.read,
        acked: p.acked,
        new: p.tally.indexed ?? 0,
        duplicates: p.tally.duplicate ?? 0,
        skipped: sumPrefix(p.tally, 'skipped.'),
        errors: sumPrefix(p.tally, 'invalid.'),
        eventsPerSec: Math.round(rate),
        percent: p.fraction === null ? undefined : Math.round(p.fraction * 1000) / 10,
      },
      'backfill progress',
    );
  }

  stop(): void {}
}

function sumPrefix(t: Record<string, number>, prefix: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(t)) if (k.startsWith(prefix)) n += v;
  return n;
}
