// The library's API (scripts/reader/index.ts, what `import 'nostr-bt'` gives) against a real
// bridge (sidecar child process) on a loopback DHT: the resolve iterator and its result, leaving
// the loop early, the crawl iterator, pointer lookups, file fetches, close() while calls run, and
// the typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { canonicalJson, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import {
  createReader,
  DhtUnreachable,
  InputError,
  ReaderClosedError,
  ReaderError,
  type Reader,
  type VerifiedEvent,
} from '../scripts/reader/index.js';
import { startLocalDht, type LocalDht } from './testkit/local-dht.js';
import { startBridge, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';

let dht: LocalDht;
let bridge: Bridge;
let alice: Awaited<ReturnType<typeof signer>>;
let bob: Awaited<ReturnType<typeof signer>>;
let aliceEvents: NostrEvent[];
let bobEvents: NostrEvent[];

const newestFirst = (a: NostrEvent, b: NostrEvent) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1);

before(async () => {
  dht = await startLocalDht(12);
  bridge = await startBridge(dht.bootstrap);
  alice = await signer();
  bob = await signer();
  aliceEvents = [
    alice.sign({ kind: 3, created_at: 1_795_600_000, tags: [['p', bob.pubkey]] }),
    ...Array.from({ length: 8 }, (_, i) => alice.sign({ kind: 1, created_at: 1_795_600_001 + i, content: `alice ${i}` })),
  ];
  bobEvents = Array.from({ length: 3 }, (_, i) => bob.sign({ kind: 1, created_at: 1_795_600_100 + i, content: `bob ${i}` }));
  await bridge.feed([...aliceEvents, ...bobEvents]);
  await bridge.waitPublished(aliceEvents.length + bobEvents.length, [alice.pubkey, bob.pubkey]);
});

after(async () => {
  await bridge?.stop();
  await dht?.stop();
});

const open = () =>
  createReader({
    bootstrap: dht.bootstrap,
    bind: '127.0.0.1',
    dhtNodeRate: 500,
    limits: { bundleTimeoutMs: 30_000, swarmTimeoutMs: 60_000 },
  });

test('library: resolve streams every verified event with its origin, then the merged result; the stream is read once', {
  timeout: 90_000,
}, async () => {
  const reader = await open();
  try {
    assert.ok(reader.dhtPort > 0);
    const r = reader.resolve(alice.pubkey, { bridges: [bridge.key] });
    assert.equal(r.author, alice.pubkey);
    const got: VerifiedEvent[] = [];
    for await (const item of r) got.push(item);
    assert.deepEqual(got.map((g) => g.event.id).sort(), aliceEvents.map((e) => e.id).sort());
    for (const g of got) {
      assert.equal(g.origin.from, 'swarm');
      if (g.origin.from === 'swarm') assert.deepEqual(g.origin.bridges, [bridge.key]);
    }
    const { events, summary } = await r.result;
    assert.deepEqual(events.map(canonicalJson), [...aliceEvents].sort(newestFirst).map(canonicalJson));
    assert.equal(summary.swarmComplete, true);
    await assert.rejects(async () => {
      for await (const _ of r) break;
    }, /only once/);
    // The filter applies to the merged result.
    const notes = await reader.resolve(alice.pubkey, { bridges: [bridge.key], filter: { kinds: [1] } }).result;
    assert.equal(notes.events.length, 8);
  } finally {
    await reader.close();
  }
});

test('library: leaving the loop early stops the resolve, and its result still answers', { timeout: 90_000 }, async () => {
  const reader = await open();
  try {
    const r = reader.resolve(alice.pubkey, { bridges: [bridge.key] });
    let first: VerifiedEvent | null = null;
    for await (const item of r) {
      first = item;
      break;
    }
    assert.ok(first && first.event.pubkey === alice.pubkey);
    const { summary } = await r.result;
    assert.equal(summary.found, true);
  } finally {
    await reader.close();
  }
});

test('library: crawl follows the verified contact list and hands over one author at a time', { timeout: 120_000 }, async () => {
  const reader = await open();
  try {
    const c = reader.crawl(alice.pubkey, { bridges: [bridge.key], depth: 1 });
    const seen: { author: string; depth: number; n: number }[] = [];
    for await (const a of c) seen.push({ author: a.author, depth: a.depth, n: a.events.length });
    assert.deepEqual(seen, [
      { author: alice.pubkey, depth: 0, n: aliceEvents.length },
      { author: bob.pubkey, depth: 1, n: bobEvents.length },
    ]);
    const s = await c.result;
    assert.equal(s.rootContactList?.follows, 1);
    assert.equal(s.events, aliceEvents.length + bobEvents.length);
  } finally {
    await reader.close();
  }
});

test("library: pointer lookup and one author's file out of a bundle, checked", { timeout: 90_000 }, async () => {
  const reader = await open();
  try {
    const p = await reader.lookupPointer(bridge.key, bob.pubkey);
    assert.equal(p.status, 'found');
    if (p.status !== 'found') return;
    assert.ok(p.pointer.complete && p.pointer.infoHashes.length >= 1);
    const absent = await reader.lookupPointer(bridge.key, randomBytes(32).toString('hex'), { timeoutMs: 20_000 });
    assert.equal(absent.status, 'absent');
    const f = await reader.fetchAuthorFile(p.pointer.infoHashes[0]!, bob.pubkey);
    assert.ok(f.ok, JSON.stringify(f));
    if (!f.ok) return;
    assert.deepEqual(new Set(f.events.map((e) => e.id)), new Set(bobEvents.map((e) => e.id)));
    assert.equal(f.bytes.toString('utf8'), f.events.map((e) => canonicalJson(e) + '\n').join(''));
    assert.deepEqual(f.rejected, {});
    const missing = await reader.fetchAuthorFile(p.pointer.infoHashes[0]!, randomBytes(32).toString('hex'));
    assert.deepEqual(missing.ok ? 'ok' : missing.reason, 'not-in-bundle');
  } finally {
    await reader.close();
  }
});

test('library: close() ends the calls still running; afterwards every call is READER_CLOSED', { timeout: 60_000 }, async () => {
  const reader: Reader = await open();
  // An infohash nobody seeds: the fetch would wait its whole 50 s deadline.
  const pending = reader.fetchAuthorFile(randomBytes(20).toString('hex'), alice.pubkey, { timeoutMs: 50_000 });
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  await reader.close();
  const f = await pending;
  assert.ok(!f.ok && f.reason === 'aborted', JSON.stringify(f));
  assert.ok(Date.now() - t0 < 20_000, 'close did not wait for the deadline');
  assert.throws(
    () => reader.resolve(alice.pubkey, { bridges: [bridge.key] }),
    (err: unknown) => err instanceof ReaderClosedError && err.code === 'READER_CLOSED',
  );
  await assert.rejects(reader.lookupPointer(bridge.key, alice.pubkey), ReaderClosedError);
  await reader.close(); // twice is fine
});

test('library: bad input is an InputError (BAD_INPUT) at the call; an unreachable DHT is DHT_UNREACHABLE', {
  timeout: 60_000,
}, async () => {
  const badInput = (err: unknown) => err instanceof InputError && err instanceof ReaderError && err.code === 'BAD_INPUT';
  await assert.rejects(createReader({ bootstrap: [] }), badInput);
  await assert.rejects(createReader({ bootstrap: 'nowhere' }), badInput);
  await assert.rejects(createReader({ bootstrap: dht.bootstrap, dhtNodeRate: 0 }), badInput);
  const reader = await open();
  try {
    assert.throws(() => reader.resolve('nsec1qqqq', { bridges: [bridge.key] }), badInput);
    assert.throws(() => reader.resolve(alice.pubkey, { bridges: [] }), badInput);
    assert.throws(() => reader.resolve(alice.pubkey, { bridges: [new Uint8Array(31)] }), badInput);
    assert.throws(() => reader.resolve(alice.pubkey, { bridges: [bridge.key], relays: ['http://relay.example'] }), badInput);
    assert.throws(() => reader.crawl(alice.pubkey, { bridges: [bridge.key], depth: 99 }), badInput);
    await assert.rejects(reader.fetchAuthorFile('not-a-hash', alice.pubkey), badInput);
    await assert.rejects(reader.lookupPointer('zz', alice.pubkey), badInput);
  } finally {
    await reader.close();
  }
  // A bootstrap address where nothing answers (a bound UDP socket that never replies).
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    await assert.rejects(
      createReader({ bootstrap: [`127.0.0.1:${silent.address().port}`], bind: '127.0.0.1', dhtReadyTimeoutMs: 1500 }),
      (err: unknown) => err instanceof DhtUnreachable && (err as ReaderError).code === 'DHT_UNREACHABLE',
    );
  } finally {
    silent.close();
  }
});
