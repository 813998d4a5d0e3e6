// Piping verified events into `strfry --config=FILE import` (JSONL on stdin) through execa, with
// backpressure: the crawl waits while strfry is busy instead of buffering a whole archive.
import { execa, type ResultPromise } from 'execa';

export interface StrfryImportResult {
  exitCode: number | null;
  /** The last part of what strfry printed (stdout and stderr). */
  output: string;
  lines: number;
  failed: boolean;
  error?: string;
}

export class StrfryImport {
  private readonly proc: ResultPromise<{ stdin: 'pipe'; all: true; reject: false; maxBuffer: number }>;
  private lines = 0;
  private broken: string | null = null;

  constructor(strfryPath: string, configPath: string) {
    this.proc = execa(strfryPath, [`--config=${configPath}`, 'import'], {
      stdin: 'pipe',
      all: true,
      reject: false,
      maxBuffer: 1024 * 1024,
    });
    this.proc.stdin.on('error', (err: Error) => {
      this.broken ??= `strfry stopped reading: ${err.message}`;
    });
  }

  /** Writes one JSON line; resolves when strfry can take more (or has gone). */
  async write(json: string): Promise<void> {
    const stdin = this.proc.stdin;
    if (this.broken) return;
    if (stdin.destroyed || stdin.writableEnded) {
      this.broken = 'strfry stopped reading its input';
      return;
    }
    this.lines++;
    if (stdin.write(json + '\n') || stdin.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        stdin.off('error', done);
        resolve();
      };
      stdin.on('drain', done);
      stdin.on('close', done);
      stdin.on('error', done);
    });
  }

  async finish(): Promise<StrfryImportResult> {
    this.proc.stdin.end();
    const r = await this.proc;
    const output = String(r.all ?? '').slice(-4000);
    const exitCode = r.exitCode ?? null;
    const failed = r.failed || this.broken !== null;
    const error = this.broken ?? (r.failed ? (r.shortMessage ?? `strfry exited with ${String(exitCode)}`) : undefined);
    return { exitCode, output, lines: this.lines, failed, ...(error ? { error } : {}) };
  }
}
