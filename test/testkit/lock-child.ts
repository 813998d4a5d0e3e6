// Takes a data directory's lock in its own process (for the lock race tests): prints "ready",
// waits for a line on stdin (so that all racers start together), tries once, prints "locked" or
// "refused <why>", then holds the lock until stdin closes.
import { DataDirLock, DataDirLockedError } from '../../sidecar/ops/data-dir-lock.js';

const dir = process.argv[2];
// `node --test dist/test/` runs every file here too: without a directory there is nothing to do.
if (!dir) process.exit(0);
let lock: DataDirLock | null = null;
let tried = false;
process.stdin.setEncoding('utf8');
process.stdin.on('data', () => {
  if (tried) return;
  tried = true;
  try {
    lock = DataDirLock.acquire(dir!);
    process.stdout.write('locked\n');
  } catch (err) {
    process.stdout.write(`refused ${err instanceof DataDirLockedError ? 'locked' : String(err)}\n`);
  }
});
process.stdin.on('end', () => {
  lock?.release();
  process.exit(0);
});
process.stdout.write('ready\n');
