// Bundles seeded by the sidecar, fetched by independent peers; compaction, deletion, restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quietWebTorrent } from './testkit/quiet-webtorrent.js';
import { initNostrWasm } from 'nostr-wasm';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { BundleRecord } from '../sidecar/index/store.js';
import { dataPathOf, readAuthorFile, torrentPathOf } from '../sidecar/bundles/builder.js';
import { Store } from '../sidecar/index/store.js';
import { makeWorkspace, FIXTURES } from './testkit/sidecar-process.js';
import { ltFetch } from './testkit/libtorrent.js';
import { signer, unsignedEvent, pluginLine, pubkeyN, contentOf } from './testkit/events.js';

const FIXTURE_NOW = 1795464400;
const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };

interface Rig {
  sc: Sidecar;
  feed(lines: string[]): Promise<void>;
  /** Each author's file content as the index says it should be, for one bundle. */
  expectedFiles(ih: string): Map<string, string>;
  ws: ReturnType<typeof makeWorkspace>;
}

async function withRig(
  fn: (rig: Rig) => Promise<void>,
  opts: {
    overrides?: Record<string, unknown>;
    nowMs?: () => number;
    schedule?: boolean;
    keep?: boolean;
    ws?: ReturnType<typeof makeWorkspace>;
  } = {},
): Promise<void> {
  const ws = opts.ws ?? makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath, overrides: opts.overrides });
  const sc = new Sidecar(config, createLogger('test', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent'), {
    statusHttp: false,
    nowSec: () => FIXTURE_NOW,
    nowMs: opts.nowMs,
    bundleSchedule: opts.schedule ?? false,
  });
  await sc.start();
  const rig: Rig = {
    sc,
    ws,
    feed: async (lines) => {
      for (const l of lines) sc.ingestor.submit(l, sink);
      await sc.ingestor.idle();
    },
    expectedFiles: (ih) => {
      const files = new Map<string, string>();
      const b = sc.store.bundles.get(ih)!;
      for (const { pubkey } of sc.store.bundles.files(ih)) {
        files.set(
          pubkey,
          sc
            .bundler!.eventsOf(b, pubkey)
            .map((e) => e.j + '\n')
            .join(''),
        );
      }
      return files;
    },
  };
  try {
    await fn(rig);
  } finally {
    await sc.stop();
    if (!opts.keep) ws.cleanup();
  }
}

const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8').trim().split('\n');

test('a window bundle is seeded when its window closes and libtorrent downloads it byte for byte; every event verifies', {
  timeout: 60_000,
}, async () => {
  const wasm = await initNostrWasm();
  await withRig(
    async ({ sc, feed, expectedFiles }) => {
      await feed(fixtureLines());
      const made = new Promise<BundleRecord>((r) => sc.bundler!.once('bundle', r));
      const b = await made;
      // LMDB: every stored event knows its bundle and file; the bundle and its authors are recorded.
      for (const id of sc.store.eventIds()) assert.deepEqual(sc.store.locate(id), { ih: b.ih, file: `${sc.store.getEvent(id)!.p}.jsonl` });
      assert.equal(sc.store.bundles.get(b.ih)?.state, 'active');
      const expected = expectedFiles(b.ih);
      for (const pubkey of expected.keys()) {
        const [newest] = sc.store.bundles.authorBundles(pubkey);
        assert.equal(newest, b.ih);
      }
      const save = mkdtempSync(join(tmpdir(), 'nostr-bt-lt-'));
      try {
        const res = await ltFetch({ torrent: torrentPathOf(sc.config.bundle.dir, b.ih), save, peerPort: sc.seeder!.port });
        assert.ok(res.ok, 'libtorrent completed the download');
        assert.equal(res.infoHash, b.ih);
        assert.equal(res.files.length, expected.size);
        for (const [pubkey, content] of expected) {
          const got = readFileSync(join(save, b.name, `${pubkey}.jsonl`), 'utf8');
          assert.equal(got, content);
          for (const line of got.trim().split('\n')) {
            const ev = JSON.parse(line) as NostrEvent;
            assert.equal(ev.pubkey, pubkey);
            assert.doesNotThrow(() => wasm.verifyEvent(ev), `event ${ev.id} verifies`);
          }
        }
      } finally {
        rmSync(save, { recursive: true, force: true });
      }
    },
    { overrides: { bundle: { windowSeconds: 1 } }, schedule: true },
  );
});

test("selective fetch: a WebTorrent client downloads one author's file out of a 1,000-author bundle", { timeout: 60_000 }, async () => {
  await withRig(async ({ sc, feed, expectedFiles }) => {
    const lines: string[] = [];
    for (let a = 0; a < 1000; a++) {
      for (let j = 0; j < 3; j++)
        lines.push(pluginLine(unsignedEvent(pubkeyN(a), { kind: 1, created_at: 1_700_000_000 + j, content: contentOf(300, a * 3 + j) })));
    }
    await feed(lines);
    const [b] = await sc.bundler!.closeWindow();
    assert.ok(b);
    assert.equal(b.authors, 1000);
    const target = pubkeyN(500);
    const expected = expectedFiles(b.ih).get(target)!;
    const client = quietWebTorrent();
    const out = mkdtempSync(join(tmpdir(), 'nostr-bt-wt-'));
    try {
      const torrent = readFileSync(torrentPathOf(sc.config.bundle.dir, b.ih));
      const got = await new Promise<{ text: string; downloaded: number; total: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('selective fetch timed out')), 30_000);
        const t = client.add(torrent, { path: out, deselect: true });
        t.once('metadata', () => {
          const f = t.files.find((x) => x.name === `${target}.jsonl`)!;
          f.select();
          f.once('done', () => {
            clearTimeout(timer);
            setTimeout(() => resolve({ text: readFileSync(join(out, f.path), 'utf8'), downloaded: t.downloaded, total: t.length }), 50);
          });
        });
        t.once('ready', () => t.addPeer(`127.0.0.1:${sc.seeder!.port}`));
      });
      assert.equal(got.text, expected);
      assert.ok(got.downloaded <= Buffer.byteLength(expected) + 2 * b.pieceLength, `downloaded ${got.downloaded} of ${got.total} bytes`);
      assert.ok(got.downloaded * 50 < got.total);
    } finally {
      await new Promise<void>((r) => client.destroy(() => r()));
      rmSync(out, { recursive: true, force: true });
    }
  });
});

test('deletion after seeding: the bundle is rewritten without the event and the old infohash is no longer seeded', {
  timeout: 60_000,
}, async () => {
  const alice = await signer();
  const keep = alice.sign({ kind: 1, created_at: 1_700_000_000, content: 'keep' });
  const doomed = alice.sign({ kind: 1, created_at: 1_700_000_001, content: 'regret' });
  await withRig(async ({ sc, feed, expectedFiles }) => {
    await feed([keep, doomed].map((e) => pluginLine(e)));
    const [old] = await sc.bundler!.closeWindow();
    assert.ok(old);
    const del = alice.sign({ kind: 5, created_at: 1_700_000_002, tags: [['e', doomed.id]] });
    await feed([pluginLine(del)]);
    assert.equal(await sc.bundler!.rewriteRemovals(), 1);
    const active = sc.bundler!.activeBundles();
    const rewritten = active.find((b) => b.level === 0 && b.ih !== old.ih && sc.store.locate(keep.id)?.ih === b.ih)!;
    assert.ok(rewritten, 'a rewritten bundle holds the kept event');
    const text = expectedFiles(rewritten.ih).get(alice.pubkey)!;
    assert.ok(text.includes(keep.id) && !text.includes(doomed.id));
    const onDisk = await readAuthorFile(sc.config.bundle.dir, rewritten.ih, alice.pubkey);
    assert.equal(onDisk, text);
    assert.equal(await sc.seeder!.torrent(old.ih), null, 'old infohash unseeded');
    assert.equal(sc.store.bundles.get(old.ih)?.state, 'retired');
    assert.deepEqual(sc.store.bundles.get(old.ih)?.replacedBy, [rewritten.ih]);
    // An independent peer can no longer get the old bundle from the bridge.
    const save = mkdtempSync(join(tmpdir(), 'nostr-bt-lt-'));
    try {
      const res = await ltFetch({ magnet: `magnet:?xt=urn:btih:${old.ih}`, save, peerPort: sc.seeder!.port, timeoutSec: 3 });
      assert.equal(res.ok, false);
    } finally {
      rmSync(save, { recursive: true, force: true });
    }
  });
});

test('compaction: 100k events over simulated days keep active torrents under the bound; nothing lost', { timeout: 240_000 }, async () => {
  let now = Date.UTC(2026, 0, 30, 22, 0, 0);
  const N = 100_000;
  const maxActive = 40;
  await withRig(
    async ({ sc, feed }) => {
      let peak = 0;
      const perWindow = 1000;
      for (let i = 0; i < N; i += perWindow) {
        const lines: string[] = [];
        for (let j = i; j < i + perWindow; j++) {
          lines.push(pluginLine(unsignedEvent(pubkeyN(j % 60), { kind: 1, created_at: 1_700_000_000 + j, content: contentOf(120, j) })));
        }
        await feed(lines);
        now += 30 * 60_000; // one window every 30 simulated minutes: 100 windows ≈ 2 days
        await sc.bundler!.closeWindow(now);
        peak = Math.max(peak, sc.bundler!.activeCount);
      }
      now += 40 * 86_400_000;
      await sc.bundler!.closeWindow(now);
      assert.ok(peak <= maxActive, `peak active torrents ${peak} ≤ ${maxActive}`);
      assert.equal(
        sc.seeder!.stats().torrents,
        sc.bundler!.activeCount + (sc.catalog?.status().seeded ?? 0),
        'seeding exactly the active bundles (and the catalog)',
      );
      // Every stored event is in exactly one active bundle, and that bundle's file holds it.
      const active = new Set(sc.bundler!.activeBundles().map((b) => b.ih));
      let events = 0;
      for (const b of sc.bundler!.activeBundles()) events += b.events;
      assert.equal(events, N);
      assert.equal(sc.store.eventCount(), N);
      for (const id of sc.store.eventIds()) assert.ok(active.has(sc.store.locate(id)!.ih));
      const levels = sc.bundler!.summary().byLevel;
      assert.ok((levels.month ?? 0) >= 1, `old data compacted into month bundles: ${JSON.stringify(levels)}`);
      const sample = sc.bundler!.activeBundles()[0]!;
      for (const { pubkey } of [...sc.store.bundles.files(sample.ih)].slice(0, 3)) {
        const file = await readAuthorFile(sc.config.bundle.dir, sample.ih, pubkey);
        assert.equal(
          file,
          sc
            .bundler!.eventsOf(sample, pubkey)
            .map((e) => e.j + '\n')
            .join(''),
        );
      }
    },
    { nowMs: () => now, overrides: { bundle: { maxActiveTorrents: maxActive } } },
  );
});

test('restart: every bundle is seeded again from disk with the same infohash, nothing rebuilt', { timeout: 60_000 }, async () => {
  const ws = makeWorkspace();
  let before: string[] = [];
  try {
    await withRig(
      async ({ sc, feed }) => {
        await feed(fixtureLines());
        await sc.bundler!.closeWindow();
        const lines = Array.from({ length: 50 }, (_, i) =>
          pluginLine(unsignedEvent(pubkeyN(i), { kind: 1, created_at: 1_700_000_000 + i, content: 'x' })),
        );
        await feed(lines);
        await sc.bundler!.closeWindow(Date.now() + 120_000);
        before = sc
          .bundler!.activeBundles()
          .map((b) => b.ih)
          .sort();
        assert.ok(before.length >= 1);
      },
      { ws, keep: true },
    );
    await withRig(
      async ({ sc }) => {
        assert.deepEqual(
          sc
            .bundler!.activeBundles()
            .map((b) => b.ih)
            .sort(),
          before,
        );
        // The catalog torrent (docs/protocol.md §11) is seeded beside the bundles.
        const seeded = sc
          .seeder!.client.torrents.filter((t) => !t.name.startsWith('nostr-bt-catalog-'))
          .map((t) => t.infoHash)
          .sort();
        assert.deepEqual(seeded, before);
        for (const t of sc.seeder!.client.torrents) {
          assert.equal(t.done, true);
          assert.equal((t as unknown as { received: number }).received, 0, 'nothing re-downloaded');
        }
      },
      { ws },
    );
  } finally {
    ws.cleanup();
  }
});

test('after a crash, bundle data that is damaged or missing is found and rebuilt from the index, same infohash', {
  timeout: 60_000,
}, async () => {
  const ws = makeWorkspace();
  let before: BundleRecord[] = [];
  try {
    await withRig(
      async ({ sc, feed }) => {
        for (let w = 0; w < 3; w++) {
          const lines = Array.from({ length: 40 }, (_, i) =>
            pluginLine(
              unsignedEvent(pubkeyN(i), { kind: 1, created_at: 1_700_000_000 + w * 100 + i, content: contentOf(200, w * 100 + i) }),
            ),
          );
          await feed(lines);
          await sc.bundler!.closeWindow(Date.now() + w * 120_000);
        }
        before = sc.bundler!.activeBundles().sort((a, b) => (a.ih < b.ih ? -1 : 1));
        assert.equal(before.length, 3);
      },
      { ws, keep: true },
    );
    const config = loadConfig({ configPath: ws.configPath });
    const [damaged, lost, intact] = before as [BundleRecord, BundleRecord, BundleRecord];
    // One flipped byte (same size, so only re-hashing finds it) and one data file gone.
    const original = readFileSync(dataPathOf(config.bundle.dir, damaged.ih));
    const fd = openSync(dataPathOf(config.bundle.dir, damaged.ih), 'r+');
    writeSync(fd, Buffer.from([original[10]! ^ 1]), 0, 1, 10);
    closeSync(fd);
    rmSync(dataPathOf(config.bundle.dir, lost.ih));
    const store = Store.open(config.indexDir);
    await store.bundles.setCleanStop(false); // as if the sidecar had been killed
    await store.close();
    await withRig(
      async ({ sc }) => {
        await sc.bundler!.compactNow(); // waits for the queued rebuilds
        assert.deepEqual(
          sc
            .bundler!.activeBundles()
            .map((b) => b.ih)
            .sort(),
          before.map((b) => b.ih),
          'same infohashes',
        );
        for (const b of [damaged, lost, intact]) {
          const t = await sc.seeder!.torrent(b.ih);
          assert.ok(t?.done, `${b.ih} seeded`);
        }
        assert.ok(readFileSync(dataPathOf(sc.config.bundle.dir, damaged.ih)).equals(original), 'damaged bytes replaced');
      },
      { ws },
    );
  } finally {
    ws.cleanup();
  }
});

/** Every stored event is in the active bundle the index says, and every bundle's data is exactly its events. */
async function assertArchiveConsistent(sc: Sidecar): Promise<void> {
  const active = new Map(sc.bundler!.activeBundles().map((b) => [b.ih, b]));
  for (const id of sc.store.eventIds()) {
    const loc = sc.store.locate(id);
    assert.ok(loc && active.has(loc.ih), `event ${id} is in an active bundle`);
  }
  for (const b of active.values()) {
    let expected = '';
    for (const { pubkey } of sc.store.bundles.files(b.ih)) {
      expected += sc
        .bundler!.eventsOf(b, pubkey)
        .map((e) => e.j + '\n')
        .join('');
    }
    assert.equal(readFileSync(dataPathOf(sc.config.bundle.dir, b.ih), 'utf8'), expected, `bundle ${b.ih} holds exactly its events`);
  }
}

test('deletions racing cuts, merges and rewrites: every deleted event leaves the swarm, every other one stays', {
  timeout: 120_000,
}, async () => {
  let now = Date.UTC(2026, 2, 1, 10, 0, 0);
  const authors = await Promise.all(Array.from({ length: 6 }, () => signer()));
  await withRig(
    async ({ sc, feed }) => {
      const notes: NostrEvent[] = [];
      for (let w = 0; w < 12; w++) {
        const lines: string[] = [];
        for (let i = 0; i < 60; i++) {
          const e = authors[i % authors.length]!.sign({
            kind: 1,
            created_at: 1_700_000_000 + w * 100 + i,
            content: contentOf(150, w * 100 + i),
          });
          notes.push(e);
          lines.push(pluginLine(e));
        }
        await feed(lines);
        // Deletions of earlier notes arrive while the window is cut and the hour merged.
        const dels = notes
          .filter((_, k) => k % 7 === w % 7)
          .slice(0, 8)
          .map((e) =>
            pluginLine(authors.find((a) => a.pubkey === e.pubkey)!.sign({ kind: 5, created_at: 1_700_010_000 + w, tags: [['e', e.id]] })),
          );
        now += 10 * 60_000; // 10 simulated minutes per window: an hour merge every 6 windows
        const cut = sc.bundler!.closeWindow(now);
        for (const l of dels) sc.ingestor.submit(l, sink);
        const rewrite = sc.bundler!.rewriteRemovals();
        await Promise.all([cut, rewrite, sc.ingestor.idle()]);
      }
      await sc.bundler!.closeWindow((now += 10 * 60_000));
      while ((await sc.bundler!.rewriteRemovals()) > 0);
      assert.equal(sc.bundler!.summary().pendingRewrites, 0);
      assert.ok((sc.store.counts()['removed.deleted'] ?? 0) > 20, 'deletions applied');
      assert.ok((sc.bundler!.summary().byLevel.hour ?? 0) >= 1, 'hours were merged');
      await assertArchiveConsistent(sc);
      for (const e of notes) {
        const stored = sc.store.hasEvent(e.id);
        const inSwarm = sc
          .bundler!.activeBundles()
          .some((b) => readFileSync(dataPathOf(sc.config.bundle.dir, b.ih), 'utf8').includes(`"id":"${e.id}"`));
        assert.equal(inSwarm, stored, `${e.id}: ${stored ? 'kept' : 'deleted'}`);
      }
    },
    { nowMs: () => now },
  );
});

test("vanish: the author's events leave merged, window and pending bundles alike; merges read their sources' files", {
  timeout: 60_000,
}, async () => {
  let now = Date.UTC(2026, 2, 1, 10, 0, 0);
  const [alice, bob] = await Promise.all([signer(), signer()]);
  const note = (who: typeof alice, c: number) => who.sign({ kind: 1, created_at: c, content: contentOf(120, c) });
  await withRig(
    async ({ sc, feed }) => {
      const aliceNotes: NostrEvent[] = [];
      const bobNotes: NostrEvent[] = [];
      const window = async (n: number, c0: number) => {
        const a = Array.from({ length: n }, (_, i) => note(alice, c0 + i));
        const b = Array.from({ length: n }, (_, i) => note(bob, c0 + 50 + i));
        aliceNotes.push(...a);
        bobNotes.push(...b);
        await feed([...a, ...b].map((e) => pluginLine(e)));
      };
      await window(3, 1_700_000_000);
      await sc.bundler!.closeWindow((now += 10 * 60_000));
      await window(3, 1_700_000_100);
      await sc.bundler!.closeWindow((now += 10 * 60_000));
      now = Date.UTC(2026, 2, 1, 11, 5, 0);
      await window(2, 1_700_000_200); // cut in hour 11, after hour 10 was merged
      await sc.bundler!.closeWindow(now);
      assert.equal(sc.bundler!.summary().byLevel.hour, 1, "hour 10 merged (from its windows' files)");
      await assertArchiveConsistent(sc);
      await window(2, 1_700_000_300); // still pending
      const vanish = alice.sign({ kind: 62, created_at: 1_700_001_000, tags: [['relay', 'ALL_RELAYS']] });
      await feed([pluginLine(vanish)]);
      assert.equal(sc.store.counts()['removed.vanished'], aliceNotes.length);
      for (const e of aliceNotes) assert.equal(sc.store.hasEvent(e.id), false, `${e.id} left the index`);
      await sc.bundler!.closeWindow((now += 60_000));
      while ((await sc.bundler!.rewriteRemovals()) > 0);
      await assertArchiveConsistent(sc);
      const swarm = sc
        .bundler!.activeBundles()
        .map((b) => readFileSync(dataPathOf(sc.config.bundle.dir, b.ih), 'utf8'))
        .join('');
      for (const e of aliceNotes) assert.ok(!swarm.includes(e.id), `${e.id} left the swarm`);
      for (const e of bobNotes) assert.ok(swarm.includes(e.id), `${e.id} stays`);
      assert.ok(swarm.includes(vanish.id), 'the vanish request itself is archived');
    },
    { nowMs: () => now },
  );
});

test('a merge whose source data is gone is built from the index instead, with the same content', { timeout: 60_000 }, async () => {
  let now = Date.UTC(2026, 2, 1, 10, 0, 0);
  await withRig(
    async ({ sc, feed }) => {
      for (let w = 0; w < 3; w++) {
        await feed(
          Array.from({ length: 30 }, (_, i) =>
            pluginLine(
              unsignedEvent(pubkeyN(i % 7), { kind: 1, created_at: 1_700_000_000 + w * 100 + i, content: contentOf(100, w * 100 + i) }),
            ),
          ),
        );
        await sc.bundler!.closeWindow((now += 10 * 60_000));
      }
      const windows = sc.bundler!.activeBundles();
      assert.equal(windows.length, 3);
      rmSync(dataPathOf(sc.config.bundle.dir, windows[1]!.ih));
      now = Date.UTC(2026, 2, 1, 11, 5, 0);
      await sc.bundler!.compactNow();
      assert.equal(sc.bundler!.activeBundles().length, 1);
      // Damaged in place (same size, two lines run together): found while reading, built from the index.
      for (let w = 0; w < 2; w++) {
        await feed(
          Array.from({ length: 30 }, (_, i) =>
            pluginLine(
              unsignedEvent(pubkeyN(i % 7), { kind: 1, created_at: 1_700_001_000 + w * 100 + i, content: contentOf(100, w * 100 + i) }),
            ),
          ),
        );
        await sc.bundler!.closeWindow((now += 10 * 60_000));
      }
      const later = sc.bundler!.activeBundles().filter((b) => b.level === 0);
      assert.equal(later.length, 2);
      const path = dataPathOf(sc.config.bundle.dir, later[0]!.ih);
      const bytes = readFileSync(path);
      bytes[bytes.indexOf(0x0a)] = 0x20;
      writeFileSync(path, bytes);
      now = Date.UTC(2026, 2, 1, 12, 5, 0);
      await sc.bundler!.compactNow();
      const active = sc.bundler!.activeBundles();
      assert.deepEqual(
        active.map((b) => b.level),
        [1, 1],
        'hours 10 and 11',
      );
      assert.equal(active[0]!.events + active[1]!.events, 150);
      await assertArchiveConsistent(sc);
    },
    { nowMs: () => now },
  );
});

test('clock stepped backwards: windows are still cut, labelled no earlier than the last one', { timeout: 60_000 }, async () => {
  let now = Date.UTC(2026, 2, 1, 10, 30, 0);
  await withRig(
    async ({ sc, feed }) => {
      await feed([pluginLine(unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1_700_000_000, content: 'before' }))]);
      const [first] = await sc.bundler!.closeWindow((now += 60_000));
      now -= 2 * 3_600_000; // NTP stepped the clock back two hours
      await feed([pluginLine(unsignedEvent(pubkeyN(2), { kind: 1, created_at: 1_700_000_001, content: 'after' }))]);
      const [second] = await sc.bundler!.closeWindow((now += 60_000));
      assert.ok(first && second, 'both windows cut');
      assert.ok(second.periodStart >= first.periodStart, 'period did not go back');
      assert.equal(second.seqStart, first.seqEnd, 'contiguous');
      await assertArchiveConsistent(sc);
    },
    { nowMs: () => now },
  );
});
