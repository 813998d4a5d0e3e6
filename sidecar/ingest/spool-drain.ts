// Drains the plugin's on-disk spool into the ingestor: `.ready` files, and `.open` files whose
// writer process is gone. A file is deleted only after all its lines are committed; a sidecar
// killed mid-file re-reads it after restart and dedupe removes the repeats.
import { createReadStream } from 'node:fs';
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { IngestSink } from './ingestor.js';
import { isOpenSpoolName, isReadySpoolName, readySpoolPath, SPOOL_STALE_OPEN_MS, spoolWriterPid } from '../formats/spool-names.js';

/** What the drain needs of ingest (the Ingestor): lines in, and a wait while it is saturated. */
export interface SpoolIntake {
  submit(line: string, sink: IngestSink): void;
  readonly saturated: boolean;
  waitForCapacity(timeoutMs?: number): Promise<void>;
}

export interface SpoolDepth {
  files: number;
  bytes: number;
}

export class SpoolDrainer {
  readonly stats = { filesDrained: 0, linesDrained: 0 };
  depth: SpoolDepth = { files: 0, bytes: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** During the final drain at stop: when to leave the remaining files for the next start. */
  private finalDeadline = 0;

  constructor(
    private readonly dir: string,
    private readonly ingestor: SpoolIntake,
    private readonly scanIntervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.trigger();
    this.timer = setInterval(() => this.trigger(), this.scanIntervalMs);
    this.timer.unref();
  }

  /**
   * Stops scanning. With a budget, first drains every finished spool file, one file at a time
   * until the budget is spent (a graceful stop flushes the spool; what is left waits for the
   * next start, and nothing is deleted before it is committed).
   */
  async stop(budgetMs = 0): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    if (budgetMs > 0 && !this.stopped) {
      this.finalDeadline = Date.now() + budgetMs;
      await this.drainAll().catch((err) => this.log.error({ err, dir: this.dir }, 'spool drain failed'));
      if (this.depth.files > 0)
        this.log.warn(
          { files: this.depth.files, bytes: this.depth.bytes },
          'stopping with spool files left: they are drained at the next start',
        );
    }
    this.stopped = true;
    await this.running;
  }

  /** Scan now (on start, on a plugin (re)connecting, and on the timer). */
  trigger(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drainAll()
      .catch((err) => this.log.error({ err, dir: this.dir }, 'spool drain failed'))
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          void this.trigger();
        }
      });
    return this.running;
  }

  private async drainAll(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).sort();
    } catch {
      this.depth = { files: 0, bytes: 0 };
      return;
    }
    let files = 0;
    let bytes = 0;
    const ready: string[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      let size: number;
      let mtimeMs: number;
      try {
        ({ size, mtimeMs } = await stat(path));
      } catch {
        continue;
      }
      if (isReadySpoolName(name)) ready.push(path);
      else if (isOpenSpoolName(name) && writerGone(name) && Date.now() - mtimeMs > SPOOL_STALE_OPEN_MS) {
        const to = readySpoolPath(path);
        await rename(path, to).catch(() => {});
        ready.push(to);
      } else if (!isOpenSpoolName(name)) continue;
      files++;
      bytes += size;
    }
    this.depth = { files, bytes };
    for (const path of ready) {
      if (this.stopped || (this.finalDeadline > 0 && Date.now() > this.finalDeadline)) return;
      await this.drainFile(path);
      try {
        this.depth.bytes -= (await stat(path)).size;
      } catch {
        /* gone */
      }
      await unlink(path).catch(() => {});
      this.depth.files--;
    }
    this.depth.bytes = Math.max(0, this.depth.bytes);
  }

  private async drainFile(path: string): Promise<void> {
    let submitted = 0;
    let committed = 0;
    let readAll = false;
    let done!: () => void;
    const allCommitted = new Promise<void>((r) => (done = r));
    const sink: IngestSink = {
      source: 'spool',
      trusted: true,
      committed: (n) => {
        committed += n;
        if (readAll && committed === submitted) done();
      },
    };
    const input = createReadStream(path, { encoding: 'utf8' });
    const rl = createInterface({ input, crlfDelay: Infinity });
    for await (const line of rl) {
      this.ingestor.submit(line, sink);
      submitted++;
      while (this.ingestor.saturated && !this.stopped) await this.ingestor.waitForCapacity();
    }
    readAll = true;
    if (committed === submitted) done();
    await allCommitted;
    this.stats.filesDrained++;
    this.stats.linesDrained += submitted;
    this.log.info({ file: path, lines: submitted }, 'spool file drained');
  }
}

/** `<ms>-<pid>-<n>.open`: is the plugin process that writes it gone? */
function writerGone(name: string): boolean {
  const pid = spoolWriterPid(name);
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
