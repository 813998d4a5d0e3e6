// The restore's signature checks on worker threads give exactly what verifyJsonl gives on the
// main thread (events in file order, rejections by reason), for good files and files with forged,
// foreign, malformed and oversized lines; and a pool whose threads are gone still answers (on the
// main thread) instead of losing the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, computeEventId, initSignatureCheck } from '../sidecar/formats/nostr-event.js';
import { Rejections, verifyJsonl } from '../scripts/reader/verify-events.js';
import { VerifyPool } from '../scripts/reader/verify-pool.js';
import { signer } from './testkit/events.js';

test('verify pool: same events and rejections as the main thread, many files at once; dead threads fall back', async () => {
  await initSignatureCheck();
  const alice = await signer();
  const bob = await signer();
  const notes = Array.from({ length: 60 }, (_, i) => alice.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `note ${i}` }));
  const forgedContent = { ...notes[3]!, content: 'forged' }; // id no longer matches
  const forgedSig = { ...forgedContent, id: computeEventId(forgedContent) }; // id matches, signature does not
  const foreign = bob.sign({ kind: 1, created_at: 1_700_000_100, content: 'bob' });
  const lines = [
    ...notes.slice(0, 20).map(canonicalJson),
    JSON.stringify(forgedContent),
    JSON.stringify(forgedSig),
    canonicalJson(foreign),
    '{not json',
    JSON.stringify({ ...notes[20]!, content: 'x'.repeat(5000) }),
    ...notes.slice(21).map(canonicalJson),
  ];
  const bad = Buffer.from(lines.join('\n') + '\n');
  const good = Buffer.from(notes.map(canonicalJson).join('\n') + '\n');
  const expect = (buf: Buffer) => {
    const r = new Rejections();
    const events = verifyJsonl(buf, alice.pubkey, r, { maxEventBytes: 2000 });
    return { events, rejected: r.counts };
  };

  const pool = new VerifyPool(2);
  try {
    const files = [good, bad, good, bad, bad, good];
    const got = await Promise.all(files.map((f) => pool.verify(f, alice.pubkey, 2000)));
    for (const [i, g] of got.entries()) assert.deepEqual(g, expect(files[i]!), `file ${i}`);
    assert.equal(got[0]!.events.length, 60);
    assert.deepEqual(got[1]!.rejected, { 'bad-id': 1, 'bad-sig': 1, 'wrong-author': 1, malformed: 1, 'too-large': 1 });
    assert.equal(got[1]!.events.length, 59);
  } finally {
    await pool.close();
  }

  // Threads gone (terminated under it): the answer still comes, from the main thread.
  const dead = new VerifyPool(1);
  await (dead as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads[0]!.worker.terminate();
  assert.deepEqual(await dead.verify(bad, alice.pubkey, 2000), expect(bad));
  await dead.close();
});
