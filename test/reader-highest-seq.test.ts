// A reader asks the DHT for a bridge's pointer and some storage nodes still hold an older seq
// (a put need not reach every storing node), while the nodes with the newest one answer late:
// the reader keeps the highest valid seq among all answers, never a higher one that is forged,
// and stops at the end of the lookup or when its settle budget passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type DHT from 'bittorrent-dht';
import { authorPages, authorSalt, signedBytes, targetOf } from '../sidecar/formats/pointer-item.js';
import { keyFromSeed } from '../sidecar/formats/ed25519.js';
import { getVerifiedItem } from '../sidecar/dht/mutable-get.js';
import { lookupAuthorPointer } from '../scripts/reader/pointer-lookup.js';
import { startReaderDht, stopReaderDht } from '../scripts/reader/reader-dht.js';
import { startLocalDht } from './testkit/local-dht.js';
import { testBridgeKey } from './testkit/hostile-bridge.js';
import { pubkeyN } from './testkit/events.js';

type Stored = { v: unknown; k: Buffer; salt: Buffer; sig: Buffer; seq: number; id: Buffer };
type Internals = {
  _values: { set(key: string, value: Stored): void };
  _onget(query: { a: { target: Buffer } }, peer: unknown): void;
  _rpc: { id: Buffer };
};

/** How late the nodes holding the newest seq answer a get of this target (far beyond a 300 ms grace). */
const SLOW_MS = 2500;

test('pointer lookup: the highest valid seq wins over older copies answered first and a forged newer one', {
  timeout: 120_000,
}, async (t) => {
  const dht = await startLocalDht(16);
  t.after(() => dht.stop());
  const bridge = testBridgeKey();
  const author = pubkeyN(7);
  const salt = authorSalt(author, 0);
  const target = targetOf(bridge.key.publicKey, salt);
  const ih = (n: number) => Buffer.alloc(20, n).toString('hex');
  const item = (seq: number, bundles: string[], signer = bridge.key): Stored => {
    const v = authorPages(bundles)[0]!;
    return { v, k: bridge.key.publicKey, salt, seq, sig: signer.sign(signedBytes(salt, seq, v)), id: randomBytes(20) };
  };
  const older = item(100, [ih(1)]);
  const newer = item(200, [ih(2), ih(1)]);
  // Signed by another key: bittorrent-dht's own put would refuse it, so it is placed directly.
  const forged = item(300, [ih(9)], keyFromSeed(randomBytes(32)));

  const nodes = dht.nodes as unknown as Internals[];
  const slow = [nodes[5]!, nodes[11]!];
  nodes.forEach((n, i) => {
    const stored = slow.includes(n) ? newer : i === 8 ? forged : older;
    n._values.set(target.toString('hex'), stored);
  });
  const lateAnswers: Promise<void>[] = [];
  for (const n of slow) {
    const onget = n._onget.bind(n);
    n._onget = (query, peer) => {
      if (!query?.a?.target || !Buffer.from(query.a.target).equals(target)) return onget(query, peer);
      lateAnswers.push(new Promise((resolve) => setTimeout(() => resolve(onget(query, peer)), SLOW_MS)));
    };
  }

  // The reader's query timeout is far above SLOW_MS, so the late answers are part of the lookup.
  const reader: DHT = await startReaderDht({ bootstrap: dht.bootstrap, host: '127.0.0.1', queryTimeoutMs: 15_000 });
  t.after(() => stopReaderDht(reader));
  const queried = new Set<string>();
  for (const n of slow) {
    const id = n._rpc.id.toString('hex');
    (n as unknown as DHT).on('get', (tg: Buffer) => void (tg.equals(target) && queried.add(id)));
  }

  const got = await getVerifiedItem(reader, bridge.key.publicKey, salt, 60_000);
  assert.equal(typeof got, 'object', `an item, not ${String(got)}`);
  assert.ok(queried.size > 0, 'the lookup reached a node holding the newest seq');
  assert.equal((got as { seq: number }).seq, newer.seq, 'the newest valid seq, not the older copies answered first nor the forged one');

  const pointer = await lookupAuthorPointer(reader, bridge.key.publicKey, author, 60_000);
  assert.equal(pointer.status, 'found');
  assert.equal(pointer.status === 'found' && pointer.pointer.seq, newer.seq);
  assert.deepEqual(pointer.status === 'found' && pointer.pointer.infoHashes, [ih(2), ih(1)]);

  // A settle budget shorter than the late nodes' delay: the best valid answer seen by then (the
  // older seq), never the forged one. This is the reader's behaviour before the fix, on purpose.
  const hurried = await getVerifiedItem(reader, bridge.key.publicKey, salt, 60_000, 300);
  assert.equal(typeof hurried, 'object');
  assert.equal((hurried as { seq: number }).seq, older.seq, 'a 300 ms budget ends before the late answers');
  await Promise.all(lateAnswers); // sent before the nodes stop
});

test('pointer lookup: only older copies and forged newer ones → the older valid seq, and the lookup ends by itself', {
  timeout: 60_000,
}, async (t) => {
  const dht = await startLocalDht(10);
  t.after(() => dht.stop());
  const bridge = testBridgeKey();
  const author = pubkeyN(8);
  const salt = authorSalt(author, 0);
  const target = targetOf(bridge.key.publicKey, salt);
  const v = authorPages([Buffer.alloc(20, 3).toString('hex')])[0]!;
  const good: Stored = { v, k: bridge.key.publicKey, salt, seq: 5, sig: bridge.key.sign(signedBytes(salt, 5, v)), id: randomBytes(20) };
  const bad: Stored = { ...good, seq: 6 }; // a signature over seq 5 does not sign seq 6
  for (const [i, n] of (dht.nodes as unknown as Internals[]).entries()) n._values.set(target.toString('hex'), i % 2 ? bad : good);
  const reader: DHT = await startReaderDht({ bootstrap: dht.bootstrap, host: '127.0.0.1' });
  t.after(() => stopReaderDht(reader));
  // The settle budget is above the test's timeout: an answer means the lookup ended by itself.
  const got = await getVerifiedItem(reader, bridge.key.publicKey, salt, 50_000, 45_000);
  assert.equal(typeof got, 'object', `an item, not ${String(got)}`);
  assert.equal((got as { seq: number }).seq, 5);
});
