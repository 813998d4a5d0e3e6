// The index's `meta` table: single values that describe the index as a whole, one key each. The
// table is private here; every other owner reads and writes its own values through the named
// methods below, so the keys (which are on disk) are listed in one place.
import type { Database, RootDatabase } from 'lmdb';
import { upgradeEventRows, UPGRADE_NEXT_KEY, type RowsUpgradeResult } from './event-rows-upgrade.js';

const FORMAT_KEY = 'index.format';
const LOG_END_KEY = 'log.end';
const FRONTIER_KEY = 'bundle.frontier';
const CLEAN_STOP_KEY = 'bundler.cleanStop';
const LAST_CUT_KEY = 'bundler.lastCutPeriod';
const POINTER_SEQ_KEY = 'pointer.seq';

/** Every key of the table (docs/protocol.md lists them). */
export const META_KEYS = [FORMAT_KEY, LOG_END_KEY, FRONTIER_KEY, CLEAN_STOP_KEY, LAST_CUT_KEY, POINTER_SEQ_KEY, UPGRADE_NEXT_KEY] as const;

export class IndexMeta {
  private readonly db: Database<unknown, string>;

  constructor(private readonly root: RootDatabase) {
    this.db = root.openDB<unknown, string>({ name: 'meta', compression: false });
  }

  /** The index format recorded on disk (undefined: a new or unversioned index). */
  format(): unknown {
    return this.db.get(FORMAT_KEY);
  }

  setFormatSync(format: number): void {
    this.db.putSync(FORMAT_KEY, format);
  }

  /**
   * Upgrades the event rows to the current layout (index/event-rows-upgrade.ts), which records
   * its progress here; `finish` runs inside its last transaction.
   */
  upgradeRows(finish: () => void): RowsUpgradeResult {
    return upgradeEventRows(this.root, this.db, finish);
  }

  /** Where the event log's committed lines end (index/event-log.ts). */
  logEnd(): number {
    return (this.db.get(LOG_END_KEY) as number | undefined) ?? 0;
  }

  /** Inside a transaction. */
  setLogEnd(end: number): void {
    this.db.put(LOG_END_KEY, end);
  }

  /** Events below this sequence number are in bundles. */
  frontier(): number {
    return (this.db.get(FRONTIER_KEY) as number | undefined) ?? 1;
  }

  /** Inside a transaction. */
  setFrontier(seq: number): void {
    this.db.put(FRONTIER_KEY, seq);
  }

  /** Whether the bundler stopped cleanly last time (its bundle files were all written out). */
  cleanStop(): boolean {
    return this.db.get(CLEAN_STOP_KEY) === true;
  }

  setCleanStop(clean: boolean): Promise<boolean> {
    return this.db.put(CLEAN_STOP_KEY, clean);
  }

  /** Start of the latest window cut's period (0: none yet). */
  lastCutPeriod(): number {
    return (this.db.get(LAST_CUT_KEY) as number | undefined) ?? 0;
  }

  /** Inside a transaction. */
  setLastCutPeriod(periodStart: number): void {
    this.db.put(LAST_CUT_KEY, periodStart);
  }

  /** The seq of the last BEP-44 item the bridge signed (0: none). */
  pointerSeq(): number {
    return (this.db.get(POINTER_SEQ_KEY) as number | undefined) ?? 0;
  }

  /** Inside a transaction. */
  setPointerSeq(seq: number): void {
    this.db.put(POINTER_SEQ_KEY, seq);
  }

  /** Where an interrupted rows upgrade resumes (undefined: none in progress). */
  upgradeResumesAt(): number | undefined {
    return this.db.get(UPGRADE_NEXT_KEY) as number | undefined;
  }
}
