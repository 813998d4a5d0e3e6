// Crawl progress on stderr with cli-progress: authors done of those known so far, the queue,
// bytes and rate. Shown when stderr is a terminal, or when asked (--progress).
import cliProgress from 'cli-progress';
import type { CrawlProgress } from './crawl.js';

export interface ProgressView {
  update(p: CrawlProgress): void;
  stop(): void;
}

export function crawlProgress(enabled: boolean): ProgressView {
  if (!enabled) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'crawl [{bar}] {value}/{total} authors | queued {queued} | {events} events | {mib} MiB | {rate} authors/s',
      hideCursor: false,
      clearOnComplete: false,
      // Without a TTY (--progress into a file) print one line per update instead of redrawing.
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 2000,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (p) => {
      const total = p.done + p.active + p.queued;
      const payload = {
        queued: p.queued,
        events: p.events,
        mib: (p.bytes / 1024 ** 2).toFixed(1),
        rate: (p.done / Math.max(0.001, p.elapsedMs / 1000)).toFixed(1),
      };
      if (!started) {
        bar.start(Math.max(1, total), p.done, payload);
        started = true;
      } else {
        bar.setTotal(Math.max(1, total));
        bar.update(p.done, payload);
      }
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
