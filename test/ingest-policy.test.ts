// The sidecar's ingest and content policy against a real LMDB index (in-process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { makeWorkspace, FIXTURES } from './testkit/sidecar-process.js';
import { signer, unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';

const FIXTURE_NOW = 1795464400; // shortly after the fixture run, before its expiration tag

async function withSidecar(
  fn: (sc: Sidecar, feed: (lines: string[], sink?: Partial<IngestSink>) => Promise<void>) => Promise<void>,
  opts: { nowSec?: () => number; overrides?: Record<string, unknown> } = {},
): Promise<void> {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath, overrides: opts.overrides });
  const sc = new Sidecar(config, createLogger('test', 'silent'), { nowSec: opts.nowSec, statusHttp: false });
  await sc.start();
  const feed = async (lines: string[], sink: Partial<IngestSink> = {}) => {
    const s: IngestSink = { source: 'test', trusted: true, committed: () => {}, ...sink };
    for (const l of lines) sc.ingestor.submit(l, s);
    await sc.ingestor.idle();
  };
  try {
    await fn(sc, feed);
  } finally {
    await sc.stop();
    ws.cleanup();
  }
}

const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8').trim().split('\n');
const exportEvents = () =>
  readFileSync(join(FIXTURES, 'strfry-export.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as NostrEvent);
const storedIds = (sc: Sidecar) => [...sc.store.eventIds()].sort();

test('fixture run: index equals strfry export minus ephemeral (expiration tag still in the future)', async () => {
  await withSidecar(
    async (sc, feed) => {
      await feed(fixtureLines());
      const expected = exportEvents()
        .filter((e) => !(e.kind >= 20000 && e.kind < 30000))
        .map((e) => e.id)
        .sort();
      assert.deepEqual(storedIds(sc), expected);
      const c = sc.store.counts();
      assert.equal(c.received, 15);
      assert.equal(c['skipped.ephemeral'], 1);
      assert.equal(c['removed.deleted'], 1);
      assert.equal(c['removed.replaced'], 1);
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('fixture run: stored bytes are exactly the strfry export lines (canonical JSON)', async () => {
  await withSidecar(
    async (sc, feed) => {
      await feed(fixtureLines());
      const lines = readFileSync(join(FIXTURES, 'strfry-export.jsonl'), 'utf8').trim().split('\n');
      for (const line of lines) {
        const id = (JSON.parse(line) as NostrEvent).id;
        const rec = sc.store.getEvent(id);
        if (rec) assert.equal(rec.j, line);
      }
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('expired events are dropped at ingest and swept from the index when they expire', async () => {
  let now = FIXTURE_NOW;
  await withSidecar(
    async (sc, feed) => {
      await feed(fixtureLines());
      const expiring = '5344d92d';
      assert.ok(storedIds(sc).some((id) => id.startsWith(expiring)));
      now = 1795467942 + 1;
      assert.equal(await sc.sweepExpired(), 1);
      assert.ok(!storedIds(sc).some((id) => id.startsWith(expiring)));
    },
    { nowSec: () => now },
  );
  await withSidecar(async (sc, feed) => {
    await feed(fixtureLines()); // real clock: the fixture's expiration is in the past now
    if (Date.now() / 1000 > 1795467942) {
      assert.equal(sc.store.counts()['skipped.expired'], 1);
      assert.equal(storedIds(sc).length, 11);
    }
  });
});

test('dedupe: the same lines twice index nothing new', async () => {
  await withSidecar(
    async (sc, feed) => {
      await feed(fixtureLines());
      const before = storedIds(sc);
      await feed(fixtureLines());
      assert.deepEqual(storedIds(sc), before);
      assert.equal(sc.store.counts().indexed, 14); // 15 lines minus the ephemeral one
      assert.ok((sc.store.counts().duplicate ?? 0) >= 10);
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('deletion before its target (tombstone), a-tag deletion, other authors cannot delete', async () => {
  const alice = await signer();
  const mallory = await signer();
  const note = alice.sign({ kind: 1, created_at: 1000, content: 'to be deleted' });
  const del = alice.sign({ kind: 5, created_at: 1001, tags: [['e', note.id]] });
  const other = alice.sign({ kind: 1, created_at: 1002, content: 'keep me' });
  const forged = mallory.sign({ kind: 5, created_at: 1003, tags: [['e', other.id]] });
  const art1 = alice.sign({ kind: 30023, created_at: 1004, tags: [['d', 'x']], content: 'v1' });
  const delAddr = alice.sign({ kind: 5, created_at: 1005, tags: [['a', `30023:${alice.pubkey}:x`]] });
  const artOld = alice.sign({ kind: 30023, created_at: 1003, tags: [['d', 'x']], content: 'v0 late copy' });
  const artNew = alice.sign({ kind: 30023, created_at: 1006, tags: [['d', 'x']], content: 'v2 after delete' });
  await withSidecar(async (sc, feed) => {
    await feed([del, other, forged, art1, delAddr].map((e) => pluginLine(e)));
    await feed([note, artOld, artNew].map((e) => pluginLine(e)));
    const ids = new Set(storedIds(sc));
    assert.ok(!ids.has(note.id), 'late copy of a deleted note is not archived');
    assert.ok(ids.has(other.id), 'a deletion by another author does nothing');
    assert.ok(!ids.has(art1.id) && !ids.has(artOld.id), 'address deletion removes versions up to its time');
    assert.ok(ids.has(artNew.id), 'a newer version after the deletion is kept');
    assert.equal(sc.store.counts()['skipped.deleted'], 2);
  });
});

test('replaceable: newest wins in any arrival order, ties go to the lowest id', async () => {
  const a = await signer();
  const v1 = a.sign({ kind: 0, created_at: 10, content: '{"name":"v1"}' });
  const v2 = a.sign({ kind: 0, created_at: 20, content: '{"name":"v2"}' });
  const t1 = a.sign({ kind: 10002, created_at: 30, content: 'a' });
  const t2 = a.sign({ kind: 10002, created_at: 30, content: 'b' });
  await withSidecar(async (sc, feed) => {
    await feed([v2, v1, t1, t2].map((e) => pluginLine(e)));
    const ids = new Set(storedIds(sc));
    assert.ok(ids.has(v2.id) && !ids.has(v1.id));
    const low = t1.id < t2.id ? t1 : t2;
    const high = low === t1 ? t2 : t1;
    assert.ok(ids.has(low.id) && !ids.has(high.id));
  });
});

test("NIP-62 vanish removes the author's earlier events and blocks late copies; protected and denied kinds skipped", async () => {
  const a = await signer();
  const b = await signer();
  const n1 = a.sign({ kind: 1, created_at: 100, content: 'one' });
  const n2 = a.sign({ kind: 1, created_at: 200, content: 'two' });
  const vanish = a.sign({ kind: 62, created_at: 300, tags: [['relay', 'ALL_RELAYS']] });
  const late = a.sign({ kind: 1, created_at: 250, content: 'late' });
  const after = a.sign({ kind: 1, created_at: 400, content: 'after' });
  const protectedEv = b.sign({ kind: 1, created_at: 100, tags: [['-']], content: 'protected' });
  const denied = b.sign({ kind: 4, created_at: 100, content: 'dm' });
  await withSidecar(
    async (sc, feed) => {
      await feed([n1, n2, vanish, late, after, protectedEv, denied].map((e) => pluginLine(e)));
      assert.deepEqual(storedIds(sc), [vanish.id, after.id].sort());
      const c = sc.store.counts();
      assert.equal(c['removed.vanished'], 2);
      assert.equal(c['skipped.vanished'], 1);
      assert.equal(c['skipped.protected'], 1);
      assert.equal(c['skipped.kind-denied'], 1);
    },
    { overrides: { policy: { denyKinds: [4] } } },
  );
});

test('bad input is counted and quarantined, never indexed, never fatal', async () => {
  const a = await signer();
  const good = a.sign({ kind: 1, created_at: 5, content: 'good' });
  const badSig = { ...a.sign({ kind: 1, created_at: 6, content: 'x' }) };
  badSig.sig = good.sig;
  const badId = { ...good, content: 'tampered' };
  const unsigned = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 7, content: 'no real sig' });
  const lines = [
    'not json',
    '{"event":42}',
    '[]',
    JSON.stringify(badId),
    JSON.stringify(badSig),
    JSON.stringify(unsigned),
    JSON.stringify(good),
  ];
  let committed = 0;
  await withSidecar(async (sc, feed) => {
    await feed(lines, { trusted: false, committed: (n) => (committed += n) });
    assert.deepEqual(storedIds(sc), [good.id]);
    const c = sc.store.counts();
    assert.equal(c.received, 7);
    assert.equal(c['invalid.bad-sig'], 2);
    assert.equal(c['invalid.bad-id'], 1);
    assert.equal(c['invalid.malformed'], 3);
    assert.equal(committed, 7, 'every line is acknowledged');
    await sc.quarantine.flush();
    assert.equal(sc.quarantine.kept, 6);
  });
});
