// Lines the sidecar cannot index (not JSON, bad id or signature, too long) are kept here with the
// reason, never silently dropped: one JSONL file per day under <dataDir>/quarantine, bounded size.
import { appendFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

export class Quarantine {
  kept = 0;
  overflow = 0;
  private bytes: number | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly log: Logger,
  ) {}

  add(reason: string, source: string, line: string): void {
    const entry = JSON.stringify({ at: new Date().toISOString(), reason, source, line }) + '\n';
    this.chain = this.chain.then(() => this.write(entry)).catch((err) => {
      this.log.error({ err }, 'quarantine write failed');
    });
  }

  flush(): Promise<void> {
    return this.chain;
  }

  private async write(entry: string): Promise<void> {
    if (this.bytes === null) this.bytes = await this.measure();
    const size = Buffer.byteLength(entry);
    if (this.bytes + size > this.maxBytes) {
      this.overflow++;
      if (this.overflow === 1 || this.overflow % 10_000 === 0) {
        this.log.error({ dir: this.dir, overflow: this.overflow }, 'quarantine full: rejected lines are only counted now');
      }
      return;
    }
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    await appendFile(join(this.dir, `${new Date().toISOString().slice(0, 10)}.jsonl`), entry, { mode: 0o640 });
    this.bytes += size;
    this.kept++;
  }

  private async measure(): Promise<number> {
    let total = 0;
    try {
      for (const name of await readdir(this.dir)) total += (await stat(join(this.dir, name))).size;
    } catch {
      /* none yet */
    }
    return total;
  }
}
