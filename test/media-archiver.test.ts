// The media archiver inside a real sidecar (in process, real LMDB, real torrent client, a real
// HTTP media server on loopback): removal by vanish and expiry, the kinds filter, the queue's
// per-author bound counted without loss to ingest, a fetch interrupted by a stop finished after
// the restart, and what a crash can leave on disk reconciled at open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { blobPath, mediaRoot } from '../sidecar/media/blob-store.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';
import { pluginLine, signer } from './testkit/events.js';

const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };
const T0 = 1_800_000_000;

interface Rig {
  sc: Sidecar;
  feed(events: NostrEvent[]): Promise<void>;
  /** Ingest committed, the archiver read it, fetched what it queued, and swept removals. */
  settle(): Promise<void>;
}

async function withSidecar(
  ws: ReturnType<typeof makeWorkspace>,
  media: Record<string, unknown>,
  clock: { now: number },
  fn: (rig: Rig) => Promise<void>,
): Promise<void> {
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: { media: { enabled: true, allowLoopback: true, ...media }, dht: { enabled: false } },
  });
  const sc = new Sidecar(config, createLogger('test', (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent'), {
    statusHttp: false,
    nowSec: () => clock.now,
    bundleSchedule: false,
  });
  await sc.start();
  try {
    await fn({
      sc,
      feed: async (events) => {
        for (const e of events) sc.ingestor.submit(pluginLine(e), sink);
        await sc.ingestor.idle();
      },
      settle: async () => {
        await sc.ingestor.idle();
        await sc.media!.idle();
        // A sweep already running may have read the counters before the last removal: run a second.
        await sc.media!.sweepRemovals();
        await sc.media!.sweepRemovals();
      },
    });
  } finally {
    await sc.stop();
  }
}

const imeta = (srv: MediaServer, sha: string) => ['imeta', `url ${srv.url(sha)}`, `x ${sha}`];

test('media: vanish and expiry release blobs; only configured kinds are read; a flooding author is bounded and counted', {
  timeout: 60_000,
}, async () => {
  const srv = await mediaServer();
  const ws = makeWorkspace();
  const clock = { now: T0 };
  try {
    const [vanisher, expirer, flooder, other] = await Promise.all([signer(), signer(), signer(), signer()]);
    const blob = () => srv.add(randomBytes(20_000 + Math.floor(Math.random() * 1000)));
    const [shaV, shaE, shaKeep, shaKind] = [blob(), blob(), blob(), blob()];
    const flood = Array.from({ length: 6 }, blob);
    await withSidecar(ws, { kinds: [1, 1063], maxQueuedPerAuthor: 2, concurrency: 1 }, clock, async ({ sc, feed, settle }) => {
      await feed([
        vanisher.sign({ kind: 1, created_at: T0 - 10, tags: [imeta(srv, shaV)] }),
        expirer.sign({ kind: 1, created_at: T0 - 10, tags: [imeta(srv, shaE), ['expiration', String(T0 + 100)]] }),
        other.sign({
          kind: 1063,
          created_at: T0 - 10,
          tags: [
            ['url', srv.url(shaKeep)],
            ['x', shaKeep],
          ],
        }),
        // Kind 30023 is not in media.kinds: its media is not read.
        other.sign({ kind: 30023, created_at: T0 - 10, tags: [['d', 'post'], imeta(srv, shaKind)] }),
        // One event naming six blobs: two fit the author's share of the queue, four are dropped and counted.
        flooder.sign({ kind: 1, created_at: T0 - 10, tags: flood.map((s) => imeta(srv, s)) }),
      ]);
      await settle();
      let m = sc.status().media!;
      assert.equal(m.queue.droppedAuthor, 4, 'the flood past the per-author bound is counted');
      assert.equal(m.blobs, 5, 'vanish, expiry, the kind-1063 blob and two of the flood');
      assert.equal(m.seeded, 5);
      assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaKind)), false, 'a kind outside media.kinds is not read');
      assert.equal(sc.status().events.stored, 5, 'ingest took every event whatever the queue did');

      await feed([vanisher.sign({ kind: 62, created_at: T0, tags: [['relay', 'ALL_RELAYS']] })]);
      await settle();
      m = sc.status().media!;
      assert.equal(m.blobs, 4, "NIP-62: the vanished author's blob is gone");
      assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaV)), false);

      clock.now = T0 + 200;
      assert.equal(await sc.sweepExpired(), 1);
      await settle();
      m = sc.status().media!;
      assert.equal(m.blobs, 3, "NIP-40: the expired event's blob is gone");
      assert.equal(m.seeded, 3);
      assert.equal(m.removed, 2);
      assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaE)), false);
      assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaKeep)), true);
    });
  } finally {
    await srv.close();
    ws.cleanup();
  }
});

test('media: a fetch cut by a stop is finished after the restart; leftovers of a crash are reconciled at open', {
  timeout: 60_000,
}, async () => {
  const srv = await mediaServer();
  const ws = makeWorkspace();
  const clock = { now: T0 };
  try {
    const alice = await signer();
    const bytes = randomBytes(64_000);
    const sha = srv.add(bytes);
    // First the server answers the headers and then stalls: the fetch is in flight when the sidecar stops.
    let stall = true;
    const held: import('node:http').ServerResponse[] = [];
    srv.route(`/stall/${sha}`, (_req, res) => {
      if (!stall) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length }).end(bytes);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
      res.write(bytes.subarray(0, 1000));
      held.push(res);
    });
    const stray = 'ab'.repeat(32);
    await withSidecar(ws, {}, clock, async ({ sc, feed }) => {
      await feed([alice.sign({ kind: 1, created_at: T0, tags: [['imeta', `url ${srv.url(`/stall/${sha}`)}`, `x ${sha}`]] })]);
      for (let i = 0; i < 200 && sc.status().media!.queue.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(sc.status().media!.queue.inFlight, 1, 'the fetch is in flight');
    });
    for (const r of held) r.destroy();
    // A blob file the index never recorded (a crash between the rename and the index write).
    mkdirSync(dirname(blobPath(mediaRoot(ws.dataDir), stray)), { recursive: true });
    writeFileSync(blobPath(mediaRoot(ws.dataDir), stray), 'stray');
    stall = false;
    await withSidecar(ws, {}, clock, async ({ sc, settle }) => {
      await settle();
      const m = sc.status().media!;
      assert.equal(m.blobs, 1, 'the pending fetch was queued again and finished');
      assert.equal(m.seeded, 1);
      assert.equal(m.references, 1, 'its reference was kept across the restart');
      assert.equal(m.queue.failures.aborted ?? 0, 0);
      assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), sha)), true);
      assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), stray)), false, 'the unrecorded blob file was removed');
      assert.equal((await sc.seeder!.torrent(sc.media!.infoHashOf(sha)!)) !== null, true, 'and the blob is seeded');
    });
  } finally {
    await srv.close();
    ws.cleanup();
  }
});
