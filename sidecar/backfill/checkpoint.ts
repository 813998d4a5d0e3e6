// Backfill checkpoints, kept in the sidecar's LMDB environment (database `backfill-checkpoints`)
// so they live and are backed up with the index. The backfill command opens the environment from
// its own process (LMDB and lmdb-js are multi-process safe); the sidecar's reconciliation uses the
// same database through its own handle. Format: docs/protocol.md §8.
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { open, type Database, type RootDatabase } from 'lmdb';

export interface Checkpoint {
  /** What was read, for humans. */
  source: string;
  /** strfry: every event with created_at below this was delivered by some run. */
  resumeCreatedAt?: number;
  /** file: bytes at the start of the file whose lines were all delivered. */
  offset?: number;
  /** file: sha256 (hex) of its first `headBytes` bytes (≤ 64 KiB), to notice a different file. */
  head?: string;
  headBytes?: number;
  /** The last run read the source to its end. */
  complete: boolean;
  /** Lines delivered (acknowledged by the sidecar) over all runs. */
  lines: number;
  /** Unix ms of the last update. */
  updatedAt: number;
}

export const CHECKPOINT_DB = 'backfill-checkpoints';
export const HEAD_BYTES = 64 * 1024;

export class CheckpointStore {
  private readonly db: Database<Checkpoint, string>;
  private readonly owned: RootDatabase | null;

  constructor(root: RootDatabase, owned = false) {
    this.db = root.openDB<Checkpoint, string>({ name: CHECKPOINT_DB, compression: false });
    this.owned = owned ? root : null;
  }

  /** Opens the sidecar's index environment from another process. */
  static openIndex(indexDir: string): CheckpointStore {
    return new CheckpointStore(open({ path: indexDir, maxDbs: 24, compression: false }), true);
  }

  get(key: string): Checkpoint | undefined {
    return this.db.get(key);
  }

  async put(key: string, cp: Checkpoint): Promise<void> {
    await this.db.put(key, cp);
  }

  async reset(key: string): Promise<void> {
    await this.db.remove(key);
  }

  entries(): { key: string; value: Checkpoint }[] {
    return [...this.db.getRange()].map(({ key, value }) => ({ key, value }));
  }

  async close(): Promise<void> {
    if (this.owned) await this.owned.close();
  }
}

/** sha256 of a file's first `bytes` bytes (hex). */
export async function fileHead(path: string, bytes: number): Promise<string> {
  const h = createHash('sha256');
  if (bytes > 0) for await (const c of createReadStream(path, { start: 0, end: bytes - 1 })) h.update(c as Buffer);
  return h.digest('hex');
}
