// Child process for ops-exit.test.ts: exits from inside an lmdb-js write transaction, which is
// where a stop deadline can land (the write worker waits for this thread to finish the callback).
// argv: <mode: plain|safe|stuck> <index dir>
import { open } from 'lmdb';
import { createLogger } from '../../sidecar/common/log.js';
import { exitSafely } from '../../sidecar/common/exit-safely.js';
import { quiesceWrites } from '../../sidecar/index/lmdb-quiesce.js';

const [mode, dir] = process.argv.slice(2);
// `node --test dist/test/` also runs this file, without arguments: then it does nothing.
if (dir !== undefined && (mode === 'plain' || mode === 'safe' || mode === 'stuck')) {
  const root = open({ path: dir, compression: false });
  const db = root.openDB<number, string>({ name: 'x' });
  await root.transaction(() => db.put('before', 1));
  const log = createLogger('exit-child');
  void root.transaction(() => {
    db.put('during', 2);
    if (mode === 'plain') process.exit(3);
    else if (mode === 'safe') void exitSafely(() => quiesceWrites(root), 3, log);
    else void exitSafely(() => new Promise(() => {}), 3, log, 300); // writes that never settle
  });
}
