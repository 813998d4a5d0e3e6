// A hostile bridge: its pointer lists hand-made bundles with other authors' events, forged
// signatures, bad ids, invalid and truncated JSON, bad file layouts, oversized metadata, a file
// over the limit, a bundle nobody seeds and one whose pieces never come. The reader outputs only
// the author's genuine events, reports every rejection by reason, and finishes in bounded time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { canonicalJson, computeEventId, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { ResolveSummary } from '../scripts/reader/resolve.js';
import { startLocalDht } from './testkit/local-dht.js';
import { HandmadeSeeder, makeBundle, putPointer, testBridgeKey } from './testkit/hostile-bridge.js';
import { runCli, parseJsonl, lastJson } from './testkit/reader-rig.js';
import { signer, contentOf } from './testkit/events.js';

const line = (e: object) => JSON.stringify(e) + '\n';

test('resolve against a hostile bridge: only genuine events out, every rejection reported by reason, bounded time', {
  timeout: 90_000,
}, async () => {
  const dht = await startLocalDht(16);
  const seeder = new HandmadeSeeder(dht.nodes[0]!);
  try {
    const alice = await signer();
    const mallory = await signer();
    const a1 = alice.sign({ kind: 1, created_at: 1_700_000_001, content: 'one' });
    const a2 = alice.sign({ kind: 1, created_at: 1_700_000_002, content: 'two' });
    const a3 = alice.sign({ kind: 1, created_at: 1_700_000_003, content: 'three, cut short' });
    const byMallory = mallory.sign({ kind: 1, created_at: 1_700_000_009, content: 'not alice' });
    const reSigned = { ...a2, content: 'altered', created_at: a2.created_at + 1 };
    const forgedSig = { ...reSigned, id: computeEventId(reSigned) }; // right id, signature of another event
    const badId = { ...a1, content: 'altered but same id' };
    const goodFile = Buffer.from(
      canonicalJson(a1) +
        '\n' +
        line(byMallory) +
        line(forgedSig) +
        line(badId) +
        'not json{\n' +
        line({ kind: 1 }) +
        canonicalJson(a2) +
        '\n' +
        canonicalJson(a3).slice(0, 60),
    );
    const good = makeBundle([
      { path: [`${alice.pubkey}.jsonl`], data: goodFile },
      { path: [`${mallory.pubkey}.jsonl`], data: Buffer.from(canonicalJson(byMallory) + '\n') },
    ]);
    const nested = makeBundle([{ path: ['sub', `${alice.pubkey}.jsonl`], data: Buffer.from(canonicalJson(a1) + '\n') }]);
    const manyFiles = makeBundle(
      Array.from({ length: 2000 }, (_, i) => ({ path: [`${randomBytes(32).toString('hex')}.jsonl`], data: Buffer.from(`${i}\n`) })).concat([
        { path: [`${alice.pubkey}.jsonl`], data: Buffer.from(canonicalJson(a1) + '\n') },
      ]),
    );
    const bigFile = makeBundle([{ path: [`${alice.pubkey}.jsonl`], data: Buffer.from(contentOf(200_000, 1) + '\n') }]);
    const neverSeeded = randomBytes(20).toString('hex');
    const noPieces = makeBundle([
      { path: [`${alice.pubkey}.jsonl`], data: Buffer.from(canonicalJson(a1) + '\n' + contentOf(50_000, 2) + '\n') },
    ]);
    await seeder.seed(good);
    await seeder.seed(nested);
    await seeder.seed(manyFiles);
    await seeder.seed(bigFile);
    await seeder.seedMetadataOnly(noPieces);
    const h = testBridgeKey();
    await putPointer(dht.nodes[1]!, h, alice.pubkey, [
      good.infoHash,
      nested.infoHash,
      manyFiles.infoHash,
      bigFile.infoHash,
      neverSeeded,
      noPieces.infoHash,
    ]);

    const r = await runCli([
      'resolve',
      alice.pubkey,
      '--bridge',
      h.hex,
      '--bootstrap',
      dht.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--bundle-timeout',
      '5',
      '--max-metadata-bytes',
      '64K',
      '--max-file-bytes',
      '100K',
      '--concurrency',
      '6',
      '--summary',
      'json',
    ]);
    assert.equal(r.code, 4, `partial: events found, some bundles failed; ${r.stderr}`);
    assert.deepEqual(
      parseJsonl(r.stdout).map((e: NostrEvent) => e.id),
      [a2.id, a1.id],
    );
    const s = lastJson<ResolveSummary>(r.stderr);
    assert.deepEqual(s.rejected, { 'wrong-author': 1, 'bad-sig': 1, 'bad-id': 1, malformed: 1, 'bad-field': 1, truncated: 1 });
    const reason = (ih: string) =>
      s.bundles.find((b) => b.infoHash === ih)?.reason ?? (s.bundles.find((b) => b.infoHash === ih)?.ok ? 'ok' : 'missing');
    assert.equal(reason(good.infoHash), 'ok');
    assert.equal(reason(nested.infoHash), 'bad-metadata');
    assert.equal(reason(manyFiles.infoHash), 'metadata-too-large');
    assert.equal(reason(bigFile.infoHash), 'file-too-large');
    assert.equal(reason(neverSeeded), 'no-peers');
    assert.equal(reason(noPieces.infoHash), 'timeout');
  } finally {
    await seeder.stop();
    await dht.stop();
  }
});
