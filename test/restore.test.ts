// `nostr-bt restore` end to end: a real bridge (plugin → sidecar → bundles, catalog, pointers) on a
// loopback DHT, and the restore in another process, into the strfry stand-in (which records every
// line it was given) and into a JSONL file; a rerun resumes from the state file; --since filters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { RestoreSummary } from '../scripts/reader/restore.js';
import { startLocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, lastJson, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';
import { DIST, sleep } from './testkit/sidecar-process.js';

const STANDIN = resolve(DIST, '..', 'test/testkit/strfry-standin.mjs');

test('restore: every verified event of every author of the catalog into strfry import; a rerun skips what was delivered; --out and --since', {
  timeout: 240_000,
}, async () => {
  const dht = await startLocalDht(16);
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-restore-'));
  let bridge: Bridge | null = null;
  try {
    bridge = await startBridge(dht.bootstrap, { catalog: { intervalSeconds: 1 } });
    const signers = await Promise.all(Array.from({ length: 8 }, () => signer()));
    const all: NostrEvent[] = [];
    for (let round = 0; round < 2; round++) {
      const batch = signers.map((s, i) =>
        s.sign({ kind: 1, created_at: 1_700_000_000 + round * 1000 + i, content: `round ${round} note ${i}` }),
      );
      await bridge.feed(batch);
      all.push(...batch);
      await bridge.waitPublished(
        all.length,
        signers.map((s) => s.pubkey),
      );
      await sleep(1200);
    }
    const b = bridge;
    const st = await b.sidecar.waitFor(
      (s) =>
        Boolean(s.catalog?.infoHash) && !s.catalog!.pending && s.catalog!.bundles === s.bundles?.active && s.pointers?.dirtyAuthors === 0,
      30_000,
    );
    // The bridge item naming the current catalog is out (re-signed at most once per window).
    const net = ['--bridge', b.key, '--bootstrap', dht.bootstrap.join(','), '--bind', '127.0.0.1', '--summary', 'json'];
    for (let i = 0; i < 60; i++) {
      const c = await runCli(['catalog', ...net.slice(0, 6), '--no-verify', '--format', 'json']);
      if (c.code === 0 && (JSON.parse(c.stdout) as { infoHash: string }).infoHash === st.catalog!.infoHash) break;
      await sleep(500);
    }

    const conf = join(dir, 'strfry.conf');
    writeFileSync(conf, 'db = "./db"\n');
    const record = join(dir, 'standin.json');
    process.env.STRFRY_STANDIN_OUT = record;
    const r1 = await runCli(['restore', ...net, '--strfry', STANDIN, '--strfry-config', conf], 120_000);
    assert.equal(r1.code, 0, r1.stderr);
    const s1 = lastJson<RestoreSummary>(r1.stderr);
    const got = JSON.parse(readFileSync(record, 'utf8')) as { args: string[]; lines: string[] };
    assert.deepEqual(got.args, [`--config=${conf}`, 'import']);
    assert.deepEqual(got.lines.map((l) => (JSON.parse(l) as NostrEvent).id).sort(), all.map((e) => e.id).sort(), 'every event once');
    assert.equal(s1.events.unique, all.length);
    assert.equal(s1.files.failed, 0);
    assert.equal(s1.files.done, s1.files.total);
    assert.ok(s1.bundles >= 2, `${s1.bundles} bundles`);
    const statePath = `${conf}.restore-${b.key.slice(0, 16)}.json`;
    assert.ok(existsSync(statePath), 'state file written');

    // Resumed: nothing left to fetch, nothing sent.
    rmSync(record);
    const r2 = await runCli(['restore', ...net, '--strfry', STANDIN, '--strfry-config', conf], 120_000);
    assert.equal(r2.code, 0, r2.stderr);
    const s2 = lastJson<RestoreSummary>(r2.stderr);
    assert.equal(s2.files.skipped, s1.files.total);
    assert.equal(s2.events.sent, 0);
    assert.deepEqual((JSON.parse(readFileSync(record, 'utf8')) as { lines: string[] }).lines, []);

    // A run stopped halfway (its state lists half the files): only the rest is fetched.
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { bridge: string; done: string[] };
    const half = state.done.slice(0, Math.floor(state.done.length / 2));
    const partial = join(dir, 'partial.json');
    writeFileSync(partial, JSON.stringify({ bridge: state.bridge, done: half }));
    const out = join(dir, 'restored.jsonl');
    const r3 = await runCli(['restore', ...net, '--out', out, '--state', partial], 120_000);
    assert.equal(r3.code, 0, r3.stderr);
    const s3 = lastJson<RestoreSummary>(r3.stderr);
    assert.equal(s3.files.skipped, half.length);
    assert.equal(s3.files.done, s1.files.total - half.length);
    const skippedAuthors = new Set(half.map((k) => k.split(':')[1]));
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NostrEvent);
    assert.equal(lines.length, s3.events.sent);
    assert.ok(lines.length < all.length && lines.length > 0);
    const fullyDone = (JSON.parse(readFileSync(partial, 'utf8')) as { done: string[] }).done;
    assert.equal(fullyDone.length, s1.files.total, 'the state now lists every file');
    assert.ok(skippedAuthors.size > 0);

    // --since: only the second round.
    const out2 = join(dir, 'since.jsonl');
    const r4 = await runCli(['restore', ...net, '--out', out2, '--state', join(dir, 'since-state.json'), '--since', '1700000500'], 120_000);
    assert.equal(r4.code, 0, r4.stderr);
    const since = readFileSync(out2, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as NostrEvent);
    assert.deepEqual(
      since.map((e) => e.id).sort(),
      all
        .filter((e) => e.created_at >= 1_700_000_500)
        .map((e) => e.id)
        .sort(),
    );

    // Bad input.
    const bad = await runCli(['restore', '--bridge', b.key, '--bootstrap', dht.bootstrap.join(',')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--strfry-config <file>.*or --out <file>/);
  } finally {
    delete process.env.STRFRY_STANDIN_OUT;
    await bridge?.stop();
    await dht.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
