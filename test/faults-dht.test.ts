// DHT faults: no bootstrap node answers (ingest and bundling go on, pointers queue and go out once
// a DHT appears at those addresses), and the clock stepped back (seq still grows, a changed author
// is still republished at once). Real bittorrent-dht nodes on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type DHT from 'bittorrent-dht';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import { verifyEd25519 } from '../sidecar/formats/ed25519.js';
import { authorSalt, decodeAuthorPage, signedBytes, targetOf } from '../sidecar/formats/pointer-item.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { dhtGet, freeUdpPorts, startLocalDhtAt } from './testkit/local-dht.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';

const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };

test('DHT unreachable, then back; clock stepped back: ingest and bundles go on, pointers queue and are published when the DHT answers; seq still grows', {
  timeout: 90_000,
}, async () => {
  const ports = await freeUdpPorts(3);
  const bootstrap = ports.map((p) => `127.0.0.1:${p}`);
  const ws = makeWorkspace();
  let now = Date.UTC(2026, 5, 1, 12, 0, 0);
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: { dht: { bootstrap, putsPerSecond: 200 }, bundle: { windowSeconds: 1 } },
  });
  const sc = new Sidecar(config, createLogger('test', 'silent'), { statusHttp: false, bundleSchedule: false, nowMs: () => now });
  let nodes: DHT[] = [];
  try {
    await sc.start();
    const feed = async (lines: string[]) => {
      for (const l of lines) sc.ingestor.submit(l, sink);
      await sc.ingestor.idle();
    };
    const authors = [0, 1, 2].map(pubkeyN);
    await feed(
      authors.map((p, i) =>
        pluginLine(unsignedEvent(p, { kind: 1, created_at: 1_700_000_000 + i, content: `while the DHT is down ${i}` })),
      ),
    );
    const [b1] = await sc.bundler!.closeWindow((now += 60_000));
    assert.ok(b1, 'bundles are cut with no DHT');
    assert.equal(sc.store.eventCount(), 3, 'ingest goes on with no DHT');
    assert.ok((await sc.seeder!.torrent(b1.ih)) !== null, 'and seeded');
    // Until the publisher has queued the three authors and tried to reach the DHT (a fixed 1.5 s
    // is too short on a busy machine); then nothing may have been published.
    const tried = Date.now() + 30_000;
    const waiting = () => sc.publisher!.stats().lastError !== null && sc.publisher!.stats().dirtyAuthors === 3;
    while (!waiting() && Date.now() < tried) await new Promise((r) => setTimeout(r, 100));
    const p0 = sc.publisher!.stats();
    assert.equal(sc.dht!.nodes.count(), 0, 'nothing answered');
    assert.equal(p0.published, 0);
    assert.equal(p0.dirtyAuthors, 3, 'pointers wait in the queue');
    assert.equal(p0.lastError, 'no DHT nodes reachable');

    // The DHT appears at the bootstrap addresses: the sidecar rejoins by itself and publishes.
    nodes = await startLocalDhtAt(ports, 9);
    assert.ok(await sc.publisher!.idle(30_000), 'queued pointers published once the DHT answers');
    assert.ok(sc.dht!.nodes.count() > 0);
    const k = sc.identity!.publicKey;
    const reader = nodes[nodes.length - 1]!;
    const seqs: number[] = [];
    for (const a of authors) {
      const salt = authorSalt(a);
      const res = await dhtGet(reader, targetOf(k, salt), salt);
      assert.ok(res, `pointer of ${a.slice(0, 8)} in the DHT`);
      assert.ok(verifyEd25519(res.sig!, signedBytes(salt, res.seq!, res.v), k));
      assert.deepEqual(decodeAuthorPage(res.v).infoHashes, [b1.ih]);
      seqs.push(res.seq!);
    }

    // NTP steps the clock back two hours; author 0 posts again.
    now -= 2 * 3_600_000;
    await feed([pluginLine(unsignedEvent(authors[0]!, { kind: 1, created_at: 1_700_000_100, content: 'after the clock step' }))]);
    const [b2] = await sc.bundler!.closeWindow((now += 60_000));
    assert.ok(b2, 'a window is still cut after the step');
    assert.ok(b2.periodStart >= b1.periodStart);
    assert.ok(await sc.publisher!.idle(30_000), 'the changed author is published without waiting for the clock to catch up');
    const salt0 = authorSalt(authors[0]!);
    const res = await dhtGet(reader, targetOf(k, salt0), salt0);
    assert.ok(res);
    assert.ok(res.seq! > seqs[0]!, `seq still grows (${seqs[0]} → ${res.seq})`);
    assert.deepEqual(decodeAuthorPage(res.v).infoHashes, [b2.ih, b1.ih], 'newest bundle first');
  } finally {
    await sc.stop();
    await Promise.all(nodes.map((d) => new Promise<void>((r) => d.destroy(() => r()))));
    ws.cleanup();
  }
});
