// Stops writes to an lmdb-js environment and waits until none is in flight, so that the process
// can exit (see common/exit-safely.ts). Awaiting root.close() is not enough: after a failed commit
// (disk full) lmdb-js 3.5 with overlappingSync (its default on Linux) never settles the flush
// promise close() waits for, so close() never resolves; `committed` does settle (it rejects).
import type { RootDatabase } from 'lmdb';

/** Resolves once no write is queued or in flight; root-level writes are refused from the call on. */
export async function quiesceWrites(root: RootDatabase): Promise<void> {
  // Refuses new root transactions at once ("Database is closed"); closes the environment when the
  // writes in flight are flushed, which may never happen (above): not awaited.
  root.close().catch(() => {});
  // A write through a child database may still be queued while we wait: loop until the last
  // commit has settled and no new one started within a turn of the event loop.
  for (;;) {
    await Promise.resolve(root.committed).catch(() => {});
    if (await settledWithinATurn(root.committed)) return;
  }
}

function settledWithinATurn(p: PromiseLike<unknown>): Promise<boolean> {
  return Promise.race([
    Promise.resolve(p).then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((r) => setImmediate(() => r(false))),
  ]);
}
