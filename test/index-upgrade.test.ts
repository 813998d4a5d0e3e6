// Index format 7 (event rows in index/event-row.ts's layout) from an index of format 6 (rows in lmdb-js's
// msgpack): upgraded in place on a read-write open, every event, lookup, bundle cut, dedupe,
// replacement and expiry as before; an upgrade stopped between two of its transactions resumes;
// a read-only open of an index not yet upgraded is refused with what to do.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'lmdb';
import { cutRefsOf } from '../sidecar/bundles/cut.js';
import { loadConfig } from '../sidecar/common/config.js';
import { eventBatchOf, type JudgedEvent } from '../sidecar/judge/event-batch.js';
import { upgradeEventRows, UPGRADE_NEXT_KEY } from '../sidecar/index/event-rows-upgrade.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { Store } from '../sidecar/index/store.js';
import { contentOf, judgedEvent, pubkeyN, unsignedEvent } from './testkit/events.js';
import { firstBytes, writeOldFormat } from './testkit/old-index.js';
import { makeWorkspace } from './testkit/sidecar-process.js';

const T0 = 1_700_000_000;
const EXPIRES = T0 + 10_000;

function setup(t: TestContext) {
  const ws = makeWorkspace();
  t.after(ws.cleanup); // after the test's own finally has closed the store
  const config = loadConfig({ configPath: ws.configPath });
  const policy = { ...config.policy, maxEventBytes: 1 << 20 };
  const itemOf = (e: ReturnType<typeof unsignedEvent>): JudgedEvent => judgedEvent(e, policy, T0);
  const notes = Array.from({ length: 40 }, (_, i) =>
    unsignedEvent(pubkeyN(i % 5), { kind: 1, created_at: T0 + i, content: contentOf(100 + i * 7, i) }),
  );
  const expiring = Array.from({ length: 10 }, (_, i) =>
    unsignedEvent(pubkeyN(i % 3), { kind: 1, created_at: T0 + 100 + i, tags: [['expiration', String(EXPIRES + i)]], content: `exp ${i}` }),
  );
  const articles = Array.from({ length: 6 }, (_, i) =>
    unsignedEvent(pubkeyN(i % 2), {
      kind: 30_023,
      created_at: T0 + 200 + i,
      tags: [['d', `ünïcødé 🎉 日本語 ${i}`]],
      content: `article ${i}`,
    }),
  );
  const profile = unsignedEvent(pubkeyN(4), { kind: 0, created_at: T0 + 300, content: '{"name":"ü"}' });
  const deletion = unsignedEvent(pubkeyN(0), { kind: 5, created_at: T0 + 400, tags: [['e', notes[0]!.id]] });
  const events = [...notes, ...expiring, ...articles, profile, deletion];
  return { dir: config.indexDir, itemOf, events, notes, expiring, articles, deletion };
}

type Setup = ReturnType<typeof setup>;

/** What the index answers about every event, and its rows and cut as a bundle would read them. */
function snapshot(store: Store, events: Setup['events']) {
  const rows = [...store.rowsFrom(1)].map(({ seq, row }) => ({
    seq,
    ...row,
    i: Buffer.from(row.i).toString('hex'),
    p: Buffer.from(row.p).toString('hex'),
  }));
  const { refs, end, bytes } = cutRefsOf(store.rowsFrom(1), 1, 1 << 30);
  return {
    events: events.map((e) => ({ id: e.id, has: store.hasEvent(e.id), seq: store.seqOf(e.id), stored: store.getEvent(e.id) })),
    rows,
    cut: {
      end,
      bytes,
      count: refs.count,
      ids: Buffer.from(refs.ids.subarray(0, 32 * refs.count)).toString('hex'),
      pubkeys: Buffer.from(refs.pubkeys.subarray(0, 32 * refs.count)).toString('hex'),
    },
    eventIds: [...store.eventIds()],
    eventBytes: store.eventBytesFrom(1),
    authors: [...store.scanAuthors(1, 1000, () => true)].map(([p, list]) => [p, list.map((r) => r.seq)]),
  };
}

async function indexed(s: Setup): Promise<ReturnType<typeof snapshot>> {
  const store = Store.open(s.dir);
  try {
    const outcomes = await store.applyBatch(eventBatchOf(s.events.map(s.itemOf)));
    assert.equal(outcomes.filter((o) => o === 'indexed').length, s.events.length);
    assert.equal(store.hasEvent(s.notes[0]!.id), false, 'the deletion removed its target');
    return snapshot(store, s.events);
  } finally {
    await store.close();
  }
}

/** Everything the index does with rows still works on the upgraded one. */
async function checkUpgraded(s: Setup, before: ReturnType<typeof snapshot>, store: Store): Promise<void> {
  assert.equal(store.indexFormat(), 7);
  assert.equal(store.upgradeResumesAt(), undefined);
  assert.deepEqual(snapshot(store, s.events), before);
  // Dedupe: every event again is a duplicate (the deleted one stays deleted).
  const again = await store.applyBatch(eventBatchOf(s.events.map(s.itemOf)));
  assert.deepEqual(
    again,
    s.events.map((e) => (e.id === s.notes[0]!.id ? 'deleted' : 'duplicate')),
  );
  // Replacement reads the old version's slot key from its row.
  const newer = unsignedEvent(s.articles[0]!.pubkey, { kind: 30_023, created_at: T0 + 500, tags: s.articles[0]!.tags, content: 'newer' });
  assert.deepEqual(await store.applyBatch(eventBatchOf([s.itemOf(newer)])), ['indexed']);
  assert.equal(store.hasEvent(s.articles[0]!.id), false);
  assert.equal(store.hasEvent(s.articles[1]!.id), true);
  // Expiry reads each row's expiration.
  assert.equal(await store.sweepExpired(EXPIRES + 4), 5);
  assert.equal(await store.sweepExpired(EXPIRES + 100), 5);
  for (const e of s.expiring) assert.equal(store.hasEvent(e.id), false);
}

test('index upgrade: a format-6 index (msgpack rows) opens as format 7 with every event, lookup, cut, dedupe, replacement and expiry intact', async (t) => {
  const s = setup(t);
  const before = await indexed(s);
  const n = await writeOldFormat(s.dir, 6);
  assert.equal(n, before.rows.length);
  assert.deepEqual(new Set(await firstBytes(s.dir)), new Set([0xd4]), 'rows are msgpack records, as format 6 wrote them');
  assert.throws(
    () => Store.open(s.dir, { readOnly: true }),
    /has format 6, this version reads 7: start the sidecar once, it upgrades the index in place/,
  );

  const store = Store.open(s.dir);
  try {
    assert.equal(store.upgraded?.from, 6);
    assert.equal(store.upgraded?.rows, n);
    await checkUpgraded(s, before, store);
  } finally {
    await store.close();
  }
  assert.ok(
    (await firstBytes(s.dir)).every((b) => b <= 3),
    'every row is a format-7 row',
  );
  const readOnly = Store.open(s.dir, { readOnly: true });
  try {
    assert.equal(readOnly.hasEvent(s.articles[1]!.id), true);
    assert.equal(readOnly.getEvent(s.notes[1]!.id)?.j, canonicalJson(s.notes[1]!));
  } finally {
    await readOnly.close();
  }
  // Opened again: nothing left to upgrade.
  const again = Store.open(s.dir);
  assert.equal(again.upgraded, null);
  await again.close();
});

test('index upgrade: stopped between two of its transactions, it resumes where it stopped on the next open', async (t) => {
  const s = setup(t);
  const before = await indexed(s);
  const n = await writeOldFormat(s.dir, 6);
  const root = open({ path: s.dir, maxDbs: 24, compression: false, mapSize: 2 ** 40 });
  try {
    const meta = root.openDB<unknown, string>({ name: 'meta', compression: false });
    const stopped = upgradeEventRows(root, meta, () => assert.fail('not the last batch'), { batchRows: 7, maxBatches: 3 });
    assert.deepEqual({ rows: stopped.rows, done: stopped.done }, { rows: 21, done: false });
    assert.equal(meta.get('index.format'), 6);
    assert.equal(meta.get(UPGRADE_NEXT_KEY), before.rows[20]!.seq + 1);
  } finally {
    await root.close();
  }
  const bytes = await firstBytes(s.dir);
  assert.ok(
    bytes.slice(0, 21).every((b) => b <= 3) && bytes.slice(21).every((b) => b === 0xd4),
    'the first 21 rows are converted, the rest not',
  );
  assert.throws(() => Store.open(s.dir, { readOnly: true }), /start the sidecar once/);

  const store = Store.open(s.dir);
  try {
    assert.deepEqual({ from: store.upgraded?.from, rows: store.upgraded?.rows }, { from: 6, rows: n - 21 });
    await checkUpgraded(s, before, store);
  } finally {
    await store.close();
  }
});

test('index upgrade: a damaged row stops the upgrade with a clear error and changes nothing', async (t) => {
  const s = setup(t);
  await indexed(s);
  await writeOldFormat(s.dir, 6);
  const root = open({ path: s.dir, maxDbs: 24, compression: false, mapSize: 2 ** 40 });
  const raw = root.openDB<Buffer, number>({ name: 'events', compression: false, encoding: 'binary' });
  await raw.put(3, Buffer.from('not a row'));
  await root.close();
  assert.throws(() => Store.open(s.dir), /upgrading the index's event rows from 0: not index format 5\/6 rows, the index is damaged/);
  assert.deepEqual(new Set(await firstBytes(s.dir)), new Set([0xd4, 'n'.charCodeAt(0)]), 'no row was rewritten');
});
