// Media list rebuilds are incremental (sidecar/media/media-lists.ts): a change to one author's
// stored blobs rebuilds that author's list alone, reading only that author's entries; a touch
// that changed nothing (a second event naming a blob the author already has) rebuilds nothing;
// an author naming a blob another author's event brought in gets it in their list. (Removal
// rebuilds are in media-archiver.test.ts / media-read.test.ts.)
// Counted as work (lists rebuilt, entries read), not timed. Real sidecar, LMDB, torrent client,
// a real HTTP media server on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';
import { pluginLine, signer } from './testkit/events.js';

const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };
const T0 = 1_800_000_000;
const imeta = (srv: MediaServer, sha: string) => ['imeta', `url ${srv.url(sha)}`, `x ${sha}`];

test('media lists: one author changing rebuilds their list only, from their entries only; no change, no rebuild', {
  timeout: 90_000,
}, async () => {
  const srv = await mediaServer();
  const ws = makeWorkspace();
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: { media: { enabled: true, allowLoopback: true }, dht: { enabled: false } },
  });
  const sc = new Sidecar(config, createLogger('test', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent'), {
    statusHttp: false,
    nowSec: () => T0,
    bundleSchedule: false,
  });
  await sc.start();
  try {
    const feed = async (events: NostrEvent[]) => {
      for (const e of events) sc.ingestor.submit(pluginLine(e), sink);
      await sc.ingestor.idle();
      await sc.media!.idle();
      // Until the list work stops moving (a fetch's store step touches its authors after the queue is idle).
      let last = '';
      for (let i = 0; i < 100; i++) {
        await sc.media!.idle();
        await new Promise((r) => setTimeout(r, 100));
        const now = JSON.stringify(work());
        if (now === last) break;
        last = now;
      }
    };
    const work = () => sc.status().media!.listWork;
    const [a, b, c] = await Promise.all([signer(), signer(), signer()]);
    const blob = () => srv.add(randomBytes(5000 + Math.floor(Math.random() * 1000)));
    const shasA = [blob(), blob(), blob()];
    const shasB = [blob(), blob()];
    const shasC = Array.from({ length: 20 }, blob);
    await feed([
      a.sign({ kind: 1, created_at: T0 - 30, tags: shasA.map((s) => imeta(srv, s)) }),
      b.sign({ kind: 1, created_at: T0 - 30, tags: shasB.map((s) => imeta(srv, s)) }),
      c.sign({ kind: 1, created_at: T0 - 30, tags: shasC.map((s) => imeta(srv, s)) }),
    ]);
    assert.equal(sc.status().media!.blobs, 25);
    assert.equal(sc.status().media!.lists, 3);
    const listA = sc.media!.mediaListOf(a.pubkey);
    const listB = sc.media!.mediaListOf(b.pubkey);
    const listC = sc.media!.mediaListOf(c.pubkey);
    assert.ok(listA && listB && listC);
    const w0 = work();
    // Each list built from its final blobs at least once; every build read only its author's entries.
    assert.ok(w0.rebuilds >= 3);

    // A gains one blob: A's list alone is rebuilt, reading A's 4 entries (not the 25 stored).
    const newA = blob();
    await feed([a.sign({ kind: 1, created_at: T0 - 20, tags: [imeta(srv, newA)] })]);
    const w1 = work();
    assert.equal(w1.rebuilds - w0.rebuilds, 1, 'one list rebuilt');
    assert.equal(w1.entriesRead - w0.entriesRead, 4, "A's entries only");
    assert.notEqual(sc.media!.mediaListOf(a.pubkey), listA);
    assert.equal(sc.media!.mediaListOf(b.pubkey), listB);
    assert.equal(sc.media!.mediaListOf(c.pubkey), listC);

    // A names a blob A already has: nothing changed, nothing rebuilt or read.
    await feed([a.sign({ kind: 1, created_at: T0 - 10, tags: [imeta(srv, shasA[0]!)] })]);
    const w2 = work();
    assert.equal(w2.rebuilds, w1.rebuilds);
    assert.equal(w2.entriesRead, w1.entriesRead);

    // B names C's first blob (already stored): B's list is rebuilt from B's 3 entries, C's untouched.
    await feed([b.sign({ kind: 1, created_at: T0 - 10, tags: [imeta(srv, shasC[0]!)] })]);
    const w3 = work();
    assert.equal(w3.rebuilds - w2.rebuilds, 1);
    assert.equal(w3.entriesRead - w2.entriesRead, 3);
    assert.equal(sc.media!.mediaListOf(c.pubkey), listC);
  } finally {
    await sc.stop();
    await srv.close();
    ws.cleanup();
  }
});
