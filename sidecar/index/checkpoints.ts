// Backfill checkpoints live in the sidecar's LMDB index (database `backfill-checkpoints`), so they
// are backed up with it. Only the sidecar process writes that environment: the backfill command
// reads and saves its checkpoint through the ingest socket (docs/protocol.md §2). A second writer
// process that may be SIGKILLed mid-commit is a risk to the index: in one of six runs of the
// kill -9 test, when the command still wrote its checkpoint itself, the sidecar's next commit
// failed with MDB_PANIC.
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Database, RootDatabase } from 'lmdb';

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

/** How a run reads and saves its checkpoint: in process, or through the ingest socket. */
export interface CheckpointIO {
  readonly key: string;
  /** The checkpoint as it was when the run started (undefined: none). */
  load(): Checkpoint | undefined;
  /** Saves (null: forgets) it. A value may only describe lines the sidecar already acknowledged. */
  save(cp: Checkpoint | null): Promise<void>;
}

export const CHECKPOINT_DB = 'backfill-checkpoints';
export const HEAD_BYTES = 64 * 1024;

export class CheckpointStore {
  private readonly db: Database<Checkpoint, string>;

  constructor(root: RootDatabase) {
    this.db = root.openDB<Checkpoint, string>({ name: CHECKPOINT_DB, compression: false });
  }

  get(key: string): Checkpoint | undefined {
    return this.db.get(key);
  }

  async put(key: string, cp: Checkpoint | null): Promise<void> {
    if (cp === null) await this.db.remove(key);
    else await this.db.put(key, cp);
  }

  /** In-process access for one key (the sidecar's reconciliation). */
  io(key: string): CheckpointIO {
    const start = this.get(key);
    return { key, load: () => start, save: (cp) => this.put(key, cp) };
  }
}

/** sha256 of a file's first `bytes` bytes (hex). */
export async function fileHead(path: string, bytes: number): Promise<string> {
  const h = createHash('sha256');
  if (bytes > 0) for await (const c of createReadStream(path, { start: 0, end: bytes - 1 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Loose shape check of a checkpoint received over the socket. */
export function isCheckpoint(v: unknown): v is Checkpoint {
  if (!v || typeof v !== 'object') return false;
  const c = v as Record<string, unknown>;
  const optNum = (x: unknown) => x === undefined || (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  return (
    typeof c.source === 'string' &&
    typeof c.complete === 'boolean' &&
    optNum(c.lines) &&
    optNum(c.updatedAt) &&
    optNum(c.resumeCreatedAt) &&
    optNum(c.offset) &&
    optNum(c.headBytes) &&
    (c.head === undefined || typeof c.head === 'string')
  );
}
