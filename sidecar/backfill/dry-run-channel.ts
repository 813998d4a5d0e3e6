// --dry-run: the sidecar's checks, applied in the backfill process without writing anything.
// Each line goes through the same parse, id (and signature) check and content policy as ingest,
// then is compared with the index (opened read-only) by Store.verdict: already there, deleted,
// vanished, superseded. Duplicates inside the source itself are not seen (strfry exports each
// event once; a JSONL file with repeats counts them as new).
import type { Config } from '../common/config.js';
import { judgeLine } from '../judge/line-judge.js';
import type { PolicyConfig } from '../policy/content-policy.js';
import type { Store } from '../index/store.js';
import type { IngestChannel, Tally } from './channel.js';

export class DryRunChannel implements IngestChannel {
  sent = 0;
  acked = 0;
  readonly tally: Tally = {};
  readonly hasRoom = true;
  private readonly policy: PolicyConfig;
  private readonly verify: boolean;

  constructor(
    private readonly store: Store | null,
    config: Config,
    trusted: boolean,
    private readonly nowSec: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.policy = { ...config.policy, maxEventBytes: config.ingest.maxEventBytes };
    const v = config.ingest.verifySignatures;
    this.verify = v === 'always' || (v === 'untrusted' && !trusted);
  }

  send(line: Buffer): void {
    this.sent++;
    const label = this.judge(line.toString('utf8'));
    this.tally[label] = (this.tally[label] ?? 0) + 1;
    this.acked++;
  }

  async waitForAck(): Promise<void> {}

  async close(): Promise<void> {}

  private judge(line: string): string {
    const j = judgeLine(line, this.verify, this.policy, this.nowSec());
    if (j.kind !== 'event') return `${j.kind}.${j.reason}`;
    const v = this.store ? this.store.verdict(j.event, j.cls) : null;
    return v === null ? 'indexed' : v === 'duplicate' ? 'duplicate' : `skipped.${v}`;
  }
}
