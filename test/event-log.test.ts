// The events' JSON lives in events.log next to LMDB (docs/protocol.md, "Where each event is").
// Real LMDB files and a real log file: what the index points to is what was written; a removed
// event's bytes leave the log; a batch whose log write fails commits nothing; a restart continues
// at the committed end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { judgeLine } from '../sidecar/judge/line-judge.js';
import { Store } from '../sidecar/index/store.js';
import { eventBatchOf, type JudgedEvent } from '../sidecar/judge/event-batch.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { pluginLine, pubkeyN, unsignedEvent } from './testkit/events.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';

function itemsOf(config: ReturnType<typeof loadConfig>, events: NostrEvent[]): JudgedEvent[] {
  const policy = { ...config.policy, maxEventBytes: config.ingest.maxEventBytes };
  return events.map((e) => {
    const j = judgeLine(pluginLine(e), false, policy, 1_800_000_000);
    assert.equal(j.kind, 'event');
    return j as JudgedEvent;
  });
}

test('event log: rows point at the bytes written; removals blank them; a failed batch commits nothing; restart continues', async () => {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath });
  const logPath = join(config.indexDir, 'events.log');
  let store = Store.open(config.indexDir);
  try {
    const author = pubkeyN(1);
    const notes = Array.from({ length: 5 }, (_, i) =>
      unsignedEvent(author, { kind: 1, created_at: 1_700_000_000 + i, content: `secret-note-${i}` }),
    );
    const profile1 = unsignedEvent(author, { kind: 0, created_at: 1_700_000_000, content: 'profile-v1' });
    assert.deepEqual(await store.applyBatch(eventBatchOf(itemsOf(config, [...notes, profile1]))), [
      'indexed',
      'indexed',
      'indexed',
      'indexed',
      'indexed',
      'indexed',
    ]);
    for (const e of notes) assert.equal(store.getEvent(e.id)!.j, itemsOf(config, [e])[0]!.json);
    assert.equal(readFileSync(logPath, 'utf8').split('\n').filter(Boolean).length, 6);

    // A deletion and a replacement: their targets' bytes are gone from the log.
    const deletion = unsignedEvent(author, { kind: 5, created_at: 1_700_000_100, tags: [['e', notes[1]!.id]] });
    const profile2 = unsignedEvent(author, { kind: 0, created_at: 1_700_000_200, content: 'profile-v2' });
    await store.applyBatch(eventBatchOf(itemsOf(config, [deletion, profile2])));
    const log = readFileSync(logPath, 'utf8');
    assert.ok(!log.includes('secret-note-1'), 'the deleted note is blanked');
    assert.ok(!log.includes('profile-v1'), 'the superseded profile is blanked');
    assert.ok(log.includes('secret-note-2') && log.includes('profile-v2'));
    assert.equal(store.getEvent(notes[1]!.id), undefined);

    // A late copy of the deleted note is written ahead of its transaction, which refuses it: its
    // bytes are blanked too. A duplicate is not written at all.
    const before = readFileSync(logPath).length;
    assert.deepEqual(await store.applyBatch(eventBatchOf(itemsOf(config, [notes[1]!, notes[2]!]))), ['deleted', 'duplicate']);
    assert.ok(!readFileSync(logPath, 'utf8').includes('secret-note-1'), 'the late copy is blanked');
    assert.equal(readFileSync(logPath).length, before + itemsOf(config, [notes[1]!])[0]!.json.length + 1, 'only the late copy was written');

    // A batch whose log write fails commits nothing at all.
    const doomed = unsignedEvent(pubkeyN(2), { kind: 1, created_at: 1_700_000_300, content: 'never-committed' });
    const items = itemsOf(config, [doomed]);
    const writeAhead = store.log.writeAhead.bind(store.log);
    store.log.writeAhead = () => Promise.reject(new Error('ENOSPC: simulated'));
    await assert.rejects(store.applyBatch(eventBatchOf(items)), /ENOSPC/);
    store.log.writeAhead = writeAhead;
    assert.equal(store.hasEvent(doomed.id), false, 'no row for an event whose bytes were not written');
    assert.equal(store.counts().indexed, 8, 'counters of the failed batch not committed either');

    // An event the transaction indexes that was not written ahead (the check before it saw the id
    // indexed, and a batch committed meanwhile removed it) is appended and synced inside the
    // transaction; a failure there commits nothing either.
    const late = unsignedEvent(pubkeyN(3), { kind: 1, created_at: 1_700_000_400, content: 'appended-in-txn' });
    const lateItems = itemsOf(config, [late]);
    // The store's id lookup by key bytes, answering "indexed" once (the check before the transaction).
    const index = store as unknown as { seqOfKey(keys: Uint8Array, at: number): number | undefined };
    const lookup = index.seqOfKey;
    const seenOnceBeforeTxn = () => {
      index.seqOfKey = () => {
        index.seqOfKey = lookup;
        return 1;
      };
    };
    seenOnceBeforeTxn();
    const flush = store.log.flush.bind(store.log);
    store.log.flush = () => {
      throw new Error('ENOSPC: simulated in the transaction');
    };
    await assert.rejects(store.applyBatch(eventBatchOf(lateItems)), /ENOSPC/);
    store.log.flush = flush;
    assert.equal(store.hasEvent(late.id), false);
    seenOnceBeforeTxn();
    assert.deepEqual(await store.applyBatch(eventBatchOf(lateItems)), ['indexed']);
    assert.equal(index.seqOfKey, lookup);
    assert.equal(store.getEvent(late.id)!.j, lateItems[0]!.json);

    // After a restart, old events read back and new ones append after the committed end.
    await store.close();
    store = Store.open(config.indexDir);
    assert.equal(store.getEvent(notes[4]!.id)!.j, itemsOf(config, [notes[4]!])[0]!.json);
    assert.deepEqual(await store.applyBatch(eventBatchOf(items)), ['indexed']);
    assert.equal(store.getEvent(doomed.id)!.j, items[0]!.json);
    for (const e of [notes[0]!, notes[2]!, profile2, deletion]) assert.ok(store.getEvent(e.id)!.j.includes(e.id));
  } finally {
    await store.close();
    ws.cleanup();
  }
});
