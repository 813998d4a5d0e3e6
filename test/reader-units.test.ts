// The reader's pure parts on real signed events: key parsing, event verification of bundle
// lines, merging (dedupe, replaceable/addressable, NIP-09 deletions, ephemeral, expired, filters),
// option parsing; and pointer lookup over a local DHT (pages, missing pages, forged items).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nip19 } from 'nostr-tools';
import { canonicalJson, computeEventId, initSignatureCheck } from '../sidecar/formats/nostr-event.js';
import { zbase32 } from '../sidecar/formats/zbase32.js';
import { keyFromSeed } from '../sidecar/formats/ed25519.js';
import { authorSalt, signedBytes } from '../sidecar/formats/pointer-item.js';
import { InputError, parseAuthorKey, parseBridgeKey } from '../scripts/reader/keys.js';
import { parseBootstrap } from '../scripts/reader/reader-dht.js';
import { parseBytes, parseKinds, parseTime } from '../scripts/reader/cli-options.js';
import { LineChecker, Rejections, verifyJsonl } from '../scripts/reader/verify-events.js';
import { PieceLineAssembler } from '../scripts/reader/piece-lines.js';
import { EventMerger } from '../scripts/reader/event-merge.js';
import { checkItem, lookupAuthorPointer } from '../scripts/reader/pointer-lookup.js';
import { followsOf, newestContactList } from '../scripts/reader/crawl.js';
import { startLocalDht } from './testkit/local-dht.js';
import { putPointer, testBridgeKey } from './testkit/hostile-bridge.js';
import { signer, pubkeyN } from './testkit/events.js';

test('keys: npub, nprofile and hex authors; hex and z-base-32 bridges; clear errors', async () => {
  const a = await signer();
  assert.equal(parseAuthorKey(a.pubkey), a.pubkey);
  assert.equal(parseAuthorKey(a.pubkey.toUpperCase()), a.pubkey);
  assert.equal(parseAuthorKey(nip19.npubEncode(a.pubkey)), a.pubkey);
  assert.equal(parseAuthorKey(nip19.nprofileEncode({ pubkey: a.pubkey, relays: ['wss://r.example'] })), a.pubkey);
  assert.throws(
    () => parseAuthorKey(nip19.nsecEncode(a.secretKey)),
    (e: unknown) => e instanceof InputError && /secret key/.test((e as Error).message),
  );
  assert.throws(() => parseAuthorKey('npub1qqqq'), InputError);
  assert.throws(() => parseAuthorKey(nip19.noteEncode(a.pubkey)), InputError);
  const k = keyFromSeed(Buffer.alloc(32, 3)).publicKey;
  assert.deepEqual(parseBridgeKey(k.toString('hex')), k);
  assert.deepEqual(parseBridgeKey(zbase32(k)), k);
  assert.throws(() => parseBridgeKey('l'.repeat(52)), InputError);
  assert.deepEqual(parseBootstrap('127.0.0.1:6881, router.example.org:25401'), ['127.0.0.1:6881', 'router.example.org:25401']);
  assert.throws(() => parseBootstrap('127.0.0.1'), InputError);
  assert.throws(() => parseBootstrap('h:70000'), InputError);
  assert.deepEqual(parseKinds('1,7,30000-30002'), [1, 7, 30000, 30001, 30002]);
  assert.throws(() => parseKinds('70000'), InputError);
  assert.equal(parseTime('--since', '1700000000'), 1_700_000_000);
  assert.equal(parseTime('--since', '2024-01-01T00:00:00Z'), 1_704_067_200);
  assert.equal(parseBytes('--max-bytes', '64K'), 65_536);
  assert.equal(parseBytes('--max-bytes', '1.5M'), 1_572_864);
  assert.throws(() => parseBytes('--max-bytes', '-1'), InputError);
});

test('verifyJsonl: genuine lines pass; others rejected by reason, nothing thrown', async () => {
  await initSignatureCheck();
  const a = await signer();
  const b = await signer();
  const e1 = a.sign({ kind: 1, created_at: 10, content: 'x' });
  const e2 = a.sign({ kind: 1, created_at: 11, content: 'y', tags: [['t', 'z']] });
  const other = b.sign({ kind: 1, created_at: 12, content: 'b' });
  const changed = { ...e2, content: 'changed' };
  const reId = { ...changed, id: computeEventId(changed) };
  const badField = { ...e1, kind: -1 };
  const huge = a.sign({ kind: 1, created_at: 13, content: 'h'.repeat(5000) });
  const text =
    [
      canonicalJson(e1),
      '',
      JSON.stringify(other),
      JSON.stringify(changed),
      JSON.stringify(reId),
      JSON.stringify(badField),
      '[1,2',
      JSON.stringify(e2),
      canonicalJson(huge),
      '"just a string"',
    ].join('\n') +
    '\n' +
    canonicalJson(e2).slice(0, 30);
  const rej = new Rejections();
  const got = verifyJsonl(Buffer.from(text), a.pubkey, rej, { maxEventBytes: 4096 });
  assert.deepEqual(
    got.map((e) => e.id),
    [e1.id, e2.id],
  );
  assert.deepEqual(rej.counts, {
    'wrong-author': 1,
    'bad-id': 1,
    'bad-sig': 1,
    'bad-field': 1,
    malformed: 2,
    'too-large': 1,
    truncated: 1,
  });
  assert.equal(rej.total, 8);
  // The same bytes as pieces arriving in any order (rarest first): the same events and rejections.
  for (const size of [1, 7, 100, 4097]) {
    const buf = Buffer.from(text);
    const count = Math.ceil(buf.length / size);
    const order = Array.from({ length: count }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = (i * 7919 + size) % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const r = new Rejections();
    const evs: string[] = [];
    const lines = new PieceLineAssembler(count, 4096, new LineChecker(a.pubkey, r, (e) => evs.push(e.id)));
    for (const i of order) lines.push(i, buf.subarray(i * size, (i + 1) * size));
    assert.ok(lines.complete);
    assert.deepEqual(evs.sort(), [e1.id, e2.id].sort(), `pieces of ${size}`);
    assert.deepEqual(r.counts, rej.counts, `pieces of ${size}`);
  }
  // Not a single valid byte: no crash.
  assert.deepEqual(verifyJsonl(Buffer.from([0xff, 0xfe, 0x0a, 0x00]), a.pubkey, new Rejections(), { maxEventBytes: 4096 }), []);
});

test('EventMerger: one copy per id, newest replaceable/addressable version, NIP-09 deletions, no ephemeral or expired, filters, newest first', async () => {
  const a = await signer();
  const m = new EventMerger();
  const note1 = a.sign({ kind: 1, created_at: 100, content: 'n1' });
  const note2 = a.sign({ kind: 1, created_at: 200, content: 'n2' });
  const gone = a.sign({ kind: 1, created_at: 150, content: 'gone' });
  const del = a.sign({
    kind: 5,
    created_at: 300,
    tags: [
      ['e', gone.id],
      ['a', `30023:${a.pubkey}:old-post`],
    ],
  });
  const profile1 = a.sign({ kind: 0, created_at: 100, content: '{"name":"a"}' });
  const profile2 = a.sign({ kind: 0, created_at: 250, content: '{"name":"b"}' });
  const tieA = a.sign({ kind: 10002, created_at: 400, tags: [['r', 'wss://a']] });
  const tieB = a.sign({ kind: 10002, created_at: 400, tags: [['r', 'wss://b']] });
  const artX1 = a.sign({ kind: 30023, created_at: 100, tags: [['d', 'x']], content: 'x1' });
  const artX2 = a.sign({ kind: 30023, created_at: 120, tags: [['d', 'x']], content: 'x2' });
  const artY = a.sign({ kind: 30023, created_at: 110, tags: [['d', 'y']], content: 'y' });
  const oldPost = a.sign({ kind: 30023, created_at: 290, tags: [['d', 'old-post']], content: 'deleted by address' });
  const newPost = a.sign({ kind: 30023, created_at: 310, tags: [['d', 'old-post']], content: 'written after the deletion' });
  const ephemeral = a.sign({ kind: 20001, created_at: 500 });
  const expired = a.sign({ kind: 1, created_at: 90, tags: [['expiration', '95']] });
  const notYet = a.sign({ kind: 1, created_at: 95, tags: [['expiration', '9999999999']] });
  const all = [note1, note2, gone, del, profile1, profile2, tieA, tieB, artX1, artX2, artY, oldPost, newPost, ephemeral, expired, notYet];
  for (const e of all) assert.equal(m.add(e, 'swarm'), true);
  assert.equal(m.add(note1, 'wss://r'), false, 'duplicate');
  const { events, counts } = m.result({}, 1000);
  const winner = tieA.id < tieB.id ? tieA : tieB;
  const expected = [winner, newPost, del, profile2, note2, note1, artX2, artY, notYet].sort(
    (x, y) => y.created_at - x.created_at || (x.id < y.id ? -1 : 1),
  );
  assert.deepEqual(
    events.map((x) => x.e.id),
    expected.map((e) => e.id),
  );
  assert.deepEqual(counts, { unique: all.length, duplicates: 1, superseded: 3, deleted: 2, ephemeral: 1, expired: 1, filtered: 0 });
  const f = m.result({ kinds: [1], since: 100 }, 1000);
  assert.deepEqual(
    f.events.map((x) => x.e.id),
    [note2.id, note1.id],
  );
  // Another author's deletion does not delete.
  const b = await signer();
  const m2 = new EventMerger();
  m2.add(note1, 'swarm');
  m2.add(b.sign({ kind: 5, created_at: 300, tags: [['e', note1.id]] }), 'swarm');
  assert.ok(m2.result({}, 1000).events.some((x) => x.e.id === note1.id));
});

test('contact lists: newest kind 3 of the author only; p tags deduplicated and checked', async () => {
  const a = await signer();
  const b = await signer();
  const p = [pubkeyN(1), pubkeyN(2)];
  const old = a.sign({ kind: 3, created_at: 10, tags: [['p', p[0]!]] });
  const cur = a.sign({
    kind: 3,
    created_at: 20,
    tags: [
      ['p', p[0]!],
      ['p', p[1]!.toUpperCase()],
      ['p', 'nothex'],
      ['e', p[0]!],
      ['p', p[0]!],
    ],
  });
  const foreign = b.sign({ kind: 3, created_at: 30, tags: [['p', pubkeyN(3)]] });
  assert.equal(newestContactList([old, cur, foreign], a.pubkey)?.id, cur.id);
  assert.deepEqual(followsOf(cur), p);
});

test('pointer lookup on a local DHT: every page read, n checked; a missing page is reported; forged items refused', {
  timeout: 60_000,
}, async () => {
  const dht = await startLocalDht(16);
  try {
    const bridge = testBridgeKey();
    const author = pubkeyN(7);
    const hashes = Array.from({ length: 100 }, (_, i) => pubkeyN(1000 + i).slice(0, 40));
    await putPointer(dht.nodes[2]!, bridge, author, hashes);
    const reader = dht.nodes[12]!;
    const found = await lookupAuthorPointer(reader, bridge.key.publicKey, author, 10_000);
    assert.equal(found.status, 'found');
    if (found.status !== 'found') return;
    assert.equal(found.pointer.pages, 3);
    assert.deepEqual(found.pointer.infoHashes, hashes);
    assert.equal(found.pointer.complete, true);

    // A bridge whose page 0 promises pages that are not there.
    const other = testBridgeKey();
    const lonely = pubkeyN(8);
    await putPointer(dht.nodes[3]!, other, lonely, hashes.slice(0, 47));
    const v = { v: 1, ih: Buffer.from(hashes[0]!, 'hex'), b: Buffer.alloc(0), n: 100, pg: 3 };
    const salt = authorSalt(lonely, 0);
    const seq = Date.now() * 1000 + 5;
    await new Promise<void>((r, j) =>
      dht.nodes[3]!.put({ k: other.key.publicKey, salt, seq, v, sig: other.key.sign(signedBytes(salt, seq, v)) }, (err) =>
        err ? j(err) : r(),
      ),
    );
    const partial = await lookupAuthorPointer(reader, other.key.publicKey, lonely, 5_000);
    assert.equal(partial.status, 'found');
    if (partial.status === 'found') {
      assert.equal(partial.pointer.complete, false);
      assert.ok(
        partial.pointer.problems.some((p) => /page 2: absent/.test(p)),
        partial.pointer.problems.join('; '),
      );
    }
    assert.deepEqual(await lookupAuthorPointer(reader, bridge.key.publicKey, pubkeyN(9), 5_000), { status: 'absent' });

    // Replies a malicious node could send: checked whatever the DHT library did.
    const mallory = keyFromSeed(Buffer.alloc(32, 9));
    const s0 = authorSalt(author);
    const goodV = { v: 1, n: 0, pg: 1, b: Buffer.alloc(0) };
    const signed = (k: typeof mallory, sl: Buffer, q: number, val: unknown) => k.sign(signedBytes(sl, q, val));
    assert.equal(
      checkItem({ v: goodV, k: mallory.publicKey, salt: s0, seq: 1, sig: signed(mallory, s0, 1, goodV) }, bridge.key.publicKey, s0),
      'wrong-key',
    );
    assert.equal(
      checkItem({ v: goodV, k: bridge.key.publicKey, salt: s0, seq: 1, sig: signed(mallory, s0, 1, goodV) }, bridge.key.publicKey, s0),
      'bad-signature',
    );
    assert.equal(
      checkItem(
        { v: goodV, k: bridge.key.publicKey, salt: authorSalt(pubkeyN(1)), seq: 1, sig: signed(bridge.key, s0, 1, goodV) },
        bridge.key.publicKey,
        s0,
      ),
      'wrong-salt',
    );
    assert.equal(
      checkItem({ v: { ...goodV, b: Buffer.alloc(2000) }, k: bridge.key.publicKey, salt: s0, seq: 1 }, bridge.key.publicKey, s0),
      'too-large',
    );
    assert.equal(checkItem({ v: goodV, k: bridge.key.publicKey, salt: s0, seq: -1 }, bridge.key.publicKey, s0), 'bad-seq');
    assert.deepEqual(
      checkItem({ v: goodV, k: bridge.key.publicKey, salt: s0, seq: 1, sig: signed(bridge.key, s0, 1, goodV) }, bridge.key.publicKey, s0),
      { v: goodV, seq: 1 },
    );
  } finally {
    await dht.stop();
  }
});
