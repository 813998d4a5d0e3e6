// Takes a data directory's lock in its own process (for the lock race tests): prints "locked" or
// "refused <why>", then holds the lock until stdin closes.
import { DataDirLock, DataDirLockedError } from '../../sidecar/data-dir-lock.js';

const dir = process.argv[2]!;
try {
  const lock = DataDirLock.acquire(dir);
  process.stdout.write('locked\n');
  process.stdin.resume();
  process.stdin.on('end', () => {
    lock.release();
    process.exit(0);
  });
} catch (err) {
  process.stdout.write(`refused ${err instanceof DataDirLockedError ? 'locked' : String(err)}\n`);
  process.exit(3);
}
