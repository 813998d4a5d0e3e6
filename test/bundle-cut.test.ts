// Window cuts built in a worker thread (sidecar/bundle-cut*.ts): the same bundle as on the calling
// thread; lines removed before the cut read them are left out, removals committed while a cut
// reads the log wait for it; a worker that dies mid-request leaves the cut to the calling thread.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCut, cutRefsOf } from '../sidecar/bundles/cut.js';
import { CutThread } from '../sidecar/bundles/cut-thread.js';
import { buildBundle, readAuthorFile } from '../sidecar/bundles/builder.js';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { Store } from '../sidecar/index/store.js';
import { eventBatchOf, type JudgedEvent } from '../sidecar/judge/event-batch.js';
import { contentOf, judgedEvent, prng, pubkeyN, unsignedEvent } from './testkit/events.js';
import { makeWorkspace } from './testkit/sidecar-process.js';

const log = createLogger('test', 'silent');

function setup(t: TestContext) {
  const ws = makeWorkspace();
  t.after(ws.cleanup); // after the test's own finally has closed the store
  const config = loadConfig({ configPath: ws.configPath });
  const policy = { ...config.policy, maxEventBytes: 1 << 20 };
  const itemOf = (e: ReturnType<typeof unsignedEvent>): JudgedEvent => judgedEvent(e, policy);
  // 600 events by 40 authors, several per author sharing a created_at (ordered by id then).
  const events = Array.from({ length: 600 }, (_, i) =>
    unsignedEvent(pubkeyN(i % 40), { kind: 1, created_at: 1_700_000_000 + Math.floor(i / 120), content: contentOf(200 + (i % 7) * 50, i) }),
  );
  return { ws, config, itemOf, events, store: Store.open(config.indexDir) };
}

test('bundle cut: the worker builds the same bundle as the calling thread, authors and lines in protocol order', async (t) => {
  const { ws, itemOf, events, store } = setup(t);
  const thread = new CutThread(log);
  try {
    await store.applyBatch(eventBatchOf(events.map(itemOf)));
    const { refs, end } = cutRefsOf(store.rowsFrom(1), 1, 1 << 30);
    assert.equal(refs.count, 600);
    assert.equal(end, 601);
    const inWorker = await thread.build(join(ws.dir, 'a'), store.log.path, refs);
    const inline = await buildCut(join(ws.dir, 'b'), store.log.path, refs);
    // Lines read one by one (a cut spanning more of the log than one read may take): the same.
    const lineByLine = await buildCut(join(ws.dir, 'c'), store.log.path, refs, 1000);
    assert.equal(thread.fallbacks, 0);
    assert.ok(inWorker.built && inline.built);
    assert.equal(inWorker.built.infoHash, inline.built.infoHash);
    assert.ok(Buffer.isBuffer(inWorker.built.torrent));
    assert.deepEqual(inWorker.built.torrent, inline.built.torrent);
    assert.deepEqual(lineByLine.built?.torrent, inline.built.torrent);
    assert.deepEqual(inWorker.authors, [...new Set(events.map((e) => e.pubkey))].sort());
    // One author's file: created_at, then id, canonical JSON lines.
    const mine = events.filter((e) => e.pubkey === pubkeyN(3)).sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
    const file = await readAuthorFile(join(ws.dir, 'a'), inWorker.built.infoHash, pubkeyN(3));
    assert.equal(file, mine.map((e) => canonicalJson(e) + '\n').join(''));
    // Only part of the index, by size: whole events, at least one.
    const part = cutRefsOf(store.rowsFrom(1), 1, 5_000);
    assert.ok(part.refs.count >= 1 && part.refs.count < 600 && part.bytes <= 5_000);
    assert.equal(cutRefsOf(store.rowsFrom(1), 1, 1).refs.count, 1);
  } finally {
    await thread.close();
    await store.close();
  }
});

test('bundle cut: a line removed before the cut reads it is left out; removals during a cut wait for it', async (t) => {
  const { ws, itemOf, events, store } = setup(t);
  const thread = new CutThread(log);
  try {
    const del5 = unsignedEvent(pubkeyN(5), { kind: 5, created_at: 1_700_000_100, tags: [['e', events[5]!.id]] });
    await store.applyBatch(eventBatchOf(events.map(itemOf)));
    const { refs } = cutRefsOf(store.rowsFrom(1), 1, 1 << 30);
    // Removed after the references were taken, before the cut: blanked at once, left out.
    await store.applyBatch(eventBatchOf([itemOf(del5)]));
    assert.ok(!readFileSync(store.log.path, 'utf8').includes(canonicalJson(events[5]!)), 'blanked at once');
    const first = await thread.build(join(ws.dir, 'a'), store.log.path, refs);
    assert.equal(first.built!.events, 599);
    assert.ok(first.authors.includes(pubkeyN(5)));

    // Removed while a cut holds the log: the bytes stay until it is done, then are blanked.
    const release = store.log.holdBlanking();
    const del = unsignedEvent(pubkeyN(6), { kind: 5, created_at: 1_700_000_101, tags: [['e', events[6]!.id]] });
    await store.applyBatch(eventBatchOf([itemOf(del)]));
    assert.ok(readFileSync(store.log.path, 'utf8').includes(canonicalJson(events[6]!)), 'held while the cut reads');
    const second = await thread.build(join(ws.dir, 'b'), store.log.path, refs);
    assert.equal(second.built!.events, 599, 'whole: in the bundle (its removal is recorded for a rewrite)');
    release();
    assert.ok(!readFileSync(store.log.path, 'utf8').includes(canonicalJson(events[6]!)), 'blanked on release');
  } finally {
    await thread.close();
    await store.close();
  }
});

test('bundle cut: a worker that dies with a cut in hand leaves it to the calling thread; the next cut gets a new worker', async (t) => {
  const { ws, itemOf, events, store } = setup(t);
  const thread = new CutThread(log);
  try {
    await store.applyBatch(eventBatchOf(events.map(itemOf)));
    const { refs } = cutRefsOf(store.rowsFrom(1), 1, 1 << 30);
    const expected = (await buildCut(join(ws.dir, 'x'), store.log.path, refs)).built!.infoHash;
    // Ended before it could answer (it is still loading when terminate is called).
    const pending = thread.build(join(ws.dir, 'a'), store.log.path, refs);
    await thread.crashForTest();
    assert.equal((await pending).built!.infoHash, expected);
    assert.equal(thread.fallbacks, 1);
    assert.equal((await thread.build(join(ws.dir, 'b'), store.log.path, refs)).built!.infoHash, expected);
    assert.equal(thread.fallbacks, 1, 'built by a new worker');
  } finally {
    await thread.close();
    await store.close();
  }
});

test('bundle cut: the same bundle as buildBundle given the events in protocol order (authors by pubkey, then created_at, then id)', async (t) => {
  const { ws, itemOf, store } = setup(t);
  try {
    // Authors whose pubkeys share leading bytes, several events per author at the same second.
    const rnd = prng(5);
    const pubkeys = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? `00${pubkeyN(i).slice(2)}` : pubkeyN(i)));
    const events = Array.from({ length: 400 }, (_, i) =>
      unsignedEvent(pubkeys[Math.floor(rnd() * pubkeys.length)]!, {
        kind: 1,
        created_at: 1_700_000_000 + Math.floor(rnd() * 4),
        content: contentOf(50 + Math.floor(rnd() * 400), i),
      }),
    );
    await store.applyBatch(eventBatchOf(events.map(itemOf)));
    const { refs } = cutRefsOf(store.rowsFrom(1), 1, 1 << 30);
    const cut = await buildCut(join(ws.dir, 'cut'), store.log.path, refs);
    const authors = [...new Set(events.map((e) => e.pubkey))].sort();
    const lines = (pubkey: string) =>
      events
        .filter((e) => e.pubkey === pubkey)
        .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1))
        .map((e) => ({ json: canonicalJson(e), createdAt: e.created_at }));
    const reference = await buildBundle(
      join(ws.dir, 'ref'),
      authors.map((pubkey) => ({ pubkey, lines: lines(pubkey) })),
    );
    assert.deepEqual(cut.authors, authors);
    assert.equal(cut.built!.infoHash, reference!.infoHash);
    assert.deepEqual(cut.built!.files, reference!.files);
  } finally {
    await store.close();
  }
});
