// The index's binary keys (docs/protocol.md §6, "The index's tables"; index format 7): an
// author's bundles and a bundle's author files are found by key prefix, including at the edges of
// the key space (pubkeys and infohashes of all 0xff bytes), and a bundle's rows move and go with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../sidecar/common/config.js';
import { Store } from '../sidecar/index/store.js';
import { makeWorkspace } from './testkit/sidecar-process.js';

const LOW = '00'.repeat(32);
const HIGH = 'ff'.repeat(32);
const MID = '7f' + 'ff'.repeat(31);
const NEXT = '80' + '00'.repeat(31);

test('bundle files and author bundles: prefix ranges hold exactly their own rows, newest period first', async () => {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath });
  const store = Store.open(config.indexDir);
  try {
    const ihTop = 'ff'.repeat(20);
    const ihBelow = 'fe' + 'ff'.repeat(19);
    const ihLow = '00'.repeat(20);
    await store.root.transaction(() => {
      store.bundles.putFile(ihTop, 3_000, HIGH, { n: 1, bytes: 10, o: 100 });
      store.bundles.putFile(ihTop, 3_000, LOW, { n: 2, bytes: 20, o: 200 });
      store.bundles.putFile(ihBelow, 2_000, HIGH, { n: 3, bytes: 30, o: 300 });
      store.bundles.putFile(ihBelow, 2_000, MID, { n: 4, bytes: 40, o: 400 });
      store.bundles.putFile(ihLow, 1_000, HIGH, { n: 5, bytes: 50, o: 500 });
      store.bundles.putFile(ihLow, 1_000, NEXT, { n: 6, bytes: 60, o: 600 });
    });
    assert.deepEqual(
      [...store.bundles.files(ihTop)],
      [
        { pubkey: LOW, n: 2, bytes: 20, o: 200 },
        { pubkey: HIGH, n: 1, bytes: 10, o: 100 },
      ],
    );
    // Walked a few rows at a time, from after a given pubkey (exclusive), up to the top of the key space.
    assert.deepEqual(
      store.bundles.filesAfter(ihTop, '', 1).map((f) => f.pubkey),
      [LOW],
    );
    assert.deepEqual(
      store.bundles.filesAfter(ihTop, LOW, 5).map((f) => f.pubkey),
      [HIGH],
    );
    assert.deepEqual(store.bundles.filesAfter(ihTop, HIGH, 5), []);
    assert.deepEqual(
      store.bundles.filesAfter(ihBelow, '', 5).map((f) => f.pubkey),
      [MID, HIGH],
    );
    assert.deepEqual(
      store.bundles.filesAfter(ihBelow, MID, 5).map((f) => f.o),
      [300],
    );
    assert.deepEqual(
      [...store.bundles.files(ihBelow)].map((f) => f.pubkey),
      [MID, HIGH],
    );
    assert.deepEqual([...store.bundles.files('01'.repeat(20))], []);
    assert.deepEqual([...store.bundles.authorBundles(HIGH)], [ihTop, ihBelow, ihLow]);
    assert.deepEqual([...store.bundles.authorBundles(MID)], [ihBelow]);
    assert.deepEqual([...store.bundles.authorBundles(NEXT)], [ihLow]);
    assert.deepEqual([...store.bundles.authorBundles(LOW)], [ihTop]);

    // Merged into a later period: the low bundle becomes HIGH's newest.
    await store.root.transaction(() => store.bundles.relabelFiles(ihLow, 1_000, 4_000));
    assert.deepEqual([...store.bundles.authorBundles(HIGH)], [ihLow, ihTop, ihBelow]);
    await store.root.transaction(() => store.bundles.removeFiles(ihTop, 3_000));
    assert.deepEqual([...store.bundles.files(ihTop)], []);
    assert.deepEqual([...store.bundles.authorBundles(HIGH)], [ihLow, ihBelow]);
    assert.deepEqual([...store.bundles.authorBundles(LOW)], []);
  } finally {
    await store.close();
    ws.cleanup();
  }
});
