// The in-memory id index (sidecar/index/id-index.ts) against a plain Map, and the index built on it:
// dedupe across a reopen, entries that share a prefix, a format-5 index (with its LMDB `ids`
// table) upgraded in place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../sidecar/common/config.js';
import { IdIndex, prefixAt, prefixOfHex, type IdPrefix } from '../sidecar/index/id-index.js';
import { Store } from '../sidecar/index/store.js';
import { eventBatchOf, type JudgedEvent } from '../sidecar/judge/event-batch.js';
import { judgedEvent, prng, pubkeyN, unsignedEvent } from './testkit/events.js';
import { writeOldFormat } from './testkit/old-index.js';
import { makeWorkspace } from './testkit/sidecar-process.js';

const key = (p: IdPrefix) => `${p.hi}:${p.lo}`;

test('id index: random adds and removes (shared prefixes, probe runs that wrap, growth) answer as a Map does', () => {
  const rand = prng(7);
  const index = new IdIndex();
  const reference = new Map<string, Set<number>>();
  // Few distinct prefixes, crowded at the end of the table: long probe runs that wrap around,
  // several sequence numbers per prefix. Then many random ones: the table grows several times.
  const crowded = Array.from({ length: 40 }, (_, i) => ({ hi: i % 3, lo: (1024 - 1 - (i % 5)) >>> 0 }));
  const randomPrefix = (): IdPrefix => prefixAt(randomBytes(8), 0);
  const live: [IdPrefix, number][] = [];
  let seq = 1;
  for (let step = 0; step < 20_000; step++) {
    const r = rand();
    if (r < 0.6 || live.length === 0) {
      const p = step < 2_000 ? crowded[Math.floor(rand() * crowded.length)]! : randomPrefix();
      index.add(p, seq);
      live.push([p, seq]);
      const set = reference.get(key(p)) ?? new Set<number>();
      set.add(seq++);
      reference.set(key(p), set);
    } else {
      const at = Math.floor(rand() * live.length);
      const [p, s] = live[at]!;
      live[at] = live[live.length - 1]!;
      live.pop();
      assert.equal(index.remove(p, s), true);
      reference.get(key(p))!.delete(s);
    }
    if (step % 997 === 0) {
      for (const [p] of live) assert.deepEqual(new Set(index.candidates(p)), reference.get(key(p)), `step ${step}`);
    }
  }
  assert.equal(index.size, live.length);
  for (const [p] of live) assert.deepEqual(new Set(index.candidates(p)), reference.get(key(p)));
  for (const [p] of live) assert.equal(index.has(p), (reference.get(key(p))?.size ?? 0) > 0);
  assert.deepEqual(index.candidates({ hi: 12345, lo: 67890 }), []);
  assert.equal(index.has({ hi: 12345, lo: 67890 }), false);
  assert.equal(index.remove({ hi: 12345, lo: 67890 }, 1), false);
  assert.throws(() => index.add({ hi: 1, lo: 1 }, 0), RangeError);
});

test('id prefix: the same words from hex and from bytes', () => {
  const id = randomBytes(32);
  assert.deepEqual(prefixOfHex(id.toString('hex')), prefixAt(id, 0));
  assert.deepEqual(prefixAt(Buffer.concat([randomBytes(37), id]), 37), prefixAt(id, 0), 'at an offset in a batch of keys');
  assert.deepEqual(prefixOfHex('ffffffff' + '00000001' + '0'.repeat(48)), { hi: 0xffffffff, lo: 1 });
});

const policy = (() => {
  const ws = makeWorkspace();
  try {
    return { ...loadConfig({ configPath: ws.configPath }).policy, maxEventBytes: 1 << 20 };
  } finally {
    ws.cleanup();
  }
})();
const itemOf = (e: ReturnType<typeof unsignedEvent>): JudgedEvent => judgedEvent(e, policy);

test('index: dedupe holds across a reopen (the id index is rebuilt from the events table); ids sharing a prefix stay apart', async (t) => {
  const ws = makeWorkspace();
  t.after(ws.cleanup);
  const dir = loadConfig({ configPath: ws.configPath }).indexDir;
  const events = Array.from({ length: 300 }, (_, i) =>
    unsignedEvent(pubkeyN(i % 7), { kind: 1, created_at: 1_700_000_000 + i, content: `e${i}` }),
  );
  // Same first 8 bytes as events[0], different id (the index must confirm against the row).
  const twin = { ...events[0]!, id: events[0]!.id.slice(0, 16) + 'f'.repeat(48) };
  let store = Store.open(dir);
  try {
    assert.deepEqual(new Set(await store.applyBatch(eventBatchOf(events.map(itemOf)))), new Set(['indexed']));
    assert.equal(store.hasEvent(twin.id), false, 'a shared prefix alone is not a match');
    assert.deepEqual(await store.applyBatch(eventBatchOf([itemOf(twin)])), ['indexed']);
    assert.equal(store.seqOf(twin.id), 301);
  } finally {
    await store.close();
  }
  store = Store.open(dir);
  try {
    assert.equal(store.eventCount(), 301);
    assert.equal(store.seqOf(events[0]!.id), 1);
    assert.equal(store.seqOf(twin.id), 301);
    const again = await store.applyBatch(eventBatchOf([...events.slice(0, 50), twin].map(itemOf)));
    assert.deepEqual(new Set(again), new Set(['duplicate']));
    assert.equal(store.eventCount(), 301);
  } finally {
    await store.close();
  }
  const readOnly = Store.open(dir, { readOnly: true });
  try {
    assert.equal(readOnly.hasEvent(events[299]!.id), true);
    assert.equal(readOnly.hasEvent(randomBytes(32).toString('hex')), false);
  } finally {
    await readOnly.close();
  }
});

test('index: a format-5 index (ids in an LMDB table, msgpack rows) opens as format 7 with its events and dedupe intact', async (t) => {
  const ws = makeWorkspace();
  t.after(ws.cleanup);
  const dir = loadConfig({ configPath: ws.configPath }).indexDir;
  const events = Array.from({ length: 20 }, (_, i) =>
    unsignedEvent(pubkeyN(i), { kind: 1, created_at: 1_700_000_000 + i, content: `v5-${i}` }),
  );
  let store = Store.open(dir);
  try {
    await store.applyBatch(eventBatchOf(events.map(itemOf)));
    // What format 5 had on top of format 6: the table, and its version number.
    const ids = store.root.openDB<number, Buffer>({ name: 'ids', keyEncoding: 'binary', compression: false });
    await store.root.transaction(() => events.forEach((e, i) => void ids.put(Buffer.from(e.id, 'hex'), i + 1)));
  } finally {
    await store.close();
  }
  await writeOldFormat(dir, 5);
  store = Store.open(dir);
  try {
    assert.equal(store.indexFormat(), 7);
    assert.deepEqual(store.upgraded && { from: store.upgraded.from, rows: store.upgraded.rows }, { from: 5, rows: 20 });
    assert.equal(
      store.root.openDB<number, Buffer>({ name: 'ids', keyEncoding: 'binary', compression: false }).getKeysCount(),
      0,
      'the old table is gone',
    );
    assert.deepEqual(new Set(await store.applyBatch(eventBatchOf(events.map(itemOf)))), new Set(['duplicate']));
    assert.equal(store.eventCount(), 20);
  } finally {
    await store.close();
  }
});
