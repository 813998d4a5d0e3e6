// Tombstones (a deletion that arrived before its target) are checked through an in-memory table
// of id prefixes (index/tombstones.ts): the target is refused before and after a reopen, while an
// event sharing the target's prefix, or the same id by another author, is indexed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../sidecar/common/config.js';
import { Store } from '../sidecar/index/store.js';
import { eventBatchOf, type JudgedEvent } from '../sidecar/judge/event-batch.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { judgedEvent, pubkeyN, unsignedEvent } from './testkit/events.js';

test('a tombstoned id is refused across a reopen; a prefix twin and another author are not', async () => {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath });
  const policy = { ...config.policy, maxEventBytes: 1 << 20 };
  const itemOf = (e: ReturnType<typeof unsignedEvent>): JudgedEvent => judgedEvent(e, policy);
  const author = pubkeyN(1);
  const target = unsignedEvent(author, { kind: 1, created_at: 1_700_000_000, content: 'to be deleted' });
  const deletion = unsignedEvent(author, { kind: 5, created_at: 1_700_000_100, tags: [['e', target.id]], content: '' });
  // Same first 8 bytes as the target's id: the prefix table names it, the tombstone table does not.
  const twin = {
    ...unsignedEvent(author, { kind: 1, created_at: 1_700_000_001, content: 'twin' }),
    id: target.id.slice(0, 16) + '0'.repeat(48),
  };
  const sameIdOtherAuthor = { ...target, pubkey: pubkeyN(2) };
  let store = Store.open(config.indexDir);
  try {
    assert.deepEqual(await store.applyBatch(eventBatchOf([itemOf(deletion)])), ['indexed']);
    assert.deepEqual(await store.applyBatch(eventBatchOf([itemOf(target), itemOf(twin)])), ['deleted', 'indexed']);
  } finally {
    await store.close();
  }
  store = Store.open(config.indexDir);
  try {
    assert.deepEqual(await store.applyBatch(eventBatchOf([itemOf(target), itemOf(sameIdOtherAuthor)])), ['deleted', 'indexed']);
    assert.equal(store.hasEvent(target.id), true, 'the other author’s copy');
  } finally {
    await store.close();
    ws.cleanup();
  }
});
