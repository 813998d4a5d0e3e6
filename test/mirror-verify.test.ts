// The check of a downloaded bundle spread over worker threads (sidecar/mirror/verify-parallel.ts)
// gives one thread's verdict (sidecar/mirror/verify-bundle.ts): every event of a good bundle
// counted, and a bundle with one forged line refused at that file, whatever run it falls in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, initSignatureCheck } from '../sidecar/formats/nostr-event.js';
import { verifyBundleData } from '../sidecar/mirror/verify-bundle.js';
import { verifyBundleParallel } from '../sidecar/mirror/verify-parallel.js';
import { signer } from './testkit/events.js';

test('parallel bundle check: same verdict as one thread for a good bundle and for one with a forged line', async () => {
  await initSignatureCheck();
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-verify-'));
  try {
    const authors = await Promise.all(Array.from({ length: 7 }, () => signer()));
    authors.sort((a, b) => (a.pubkey < b.pubkey ? -1 : 1));
    const fileOf = (s: (typeof authors)[number], i: number, forgeAt = -1) =>
      Buffer.from(
        Array.from({ length: 20 + i * 3 }, (_, k) => {
          const e = s.sign({ kind: 1, created_at: 1_700_000_000 + k, content: `note ${i}.${k}` });
          if (k === forgeAt) e.content = 'changed after signing';
          return canonicalJson(e) + '\n';
        }).join(''),
      );
    const good = authors.map((s, i) => ({ name: `${s.pubkey}.jsonl`, data: fileOf(s, i) }));
    const files = good.map((f) => ({ name: f.name, length: f.data.length }));
    const goodPath = join(dir, 'good.data');
    writeFileSync(goodPath, Buffer.concat(good.map((f) => f.data)));
    const expected = good.reduce((n, _f, i) => n + 20 + i * 3, 0);
    const one = await verifyBundleData(goodPath, files, 1 << 20);
    assert.deepEqual(one, { ok: true, events: expected });
    for (const threads of [2, 3, 7])
      assert.deepEqual(await verifyBundleParallel(goodPath, files, 1 << 20, threads, 0), one, `${threads} threads`);

    // The 6th file's 4th line is forged.
    const bad = good.map((f, i) => (i === 5 ? { name: f.name, data: fileOf(authors[i]!, i, 3) } : f));
    const badFiles = bad.map((f) => ({ name: f.name, length: f.data.length }));
    const badPath = join(dir, 'bad.data');
    writeFileSync(badPath, Buffer.concat(bad.map((f) => f.data)));
    const refused = await verifyBundleData(badPath, badFiles, 1 << 20);
    assert.equal(refused.ok, false);
    assert.match(refused.problem!, new RegExp(`${authors[5]!.pubkey}\\.jsonl line 4: bad-id`));
    for (const threads of [2, 3, 7]) {
      const v = await verifyBundleParallel(badPath, badFiles, 1 << 20, threads, 0);
      assert.equal(v.ok, false, `${threads} threads`);
      assert.equal(v.problem, refused.problem);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
