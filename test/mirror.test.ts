// Mirrors (`[mirror] bridges`): three processes that share only a loopback DHT of 20 real
// bittorrent-dht nodes — origin O (a bridge with 50 authors), mirror M following O, and reader R.
// After M caught up, O is killed and R still resolves every author's events; then every DHT node is
// restarted empty, and within one (short) republish interval M has re-put O's signed items and
// announced the bundles, so R resolves everything again. A hostile origin (a 10,000-bundle catalog,
// a 10 GB bundle, forged events, lying entries) leaves M within its quota and running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import DHT from 'bittorrent-dht';
import { hardenDht } from '../sidecar/dht/harden.js';
import { verifyEd25519 } from '../sidecar/formats/ed25519.js';
import { authorSalt, BRIDGE_SALT, targetOf } from '../sidecar/formats/pointer-item.js';
import { catalogTorrent, type CatalogBundle } from '../sidecar/formats/catalog.js';
import { canonicalJson, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import { freeUdpPorts, startLocalDhtAt, startPortedDht, stopDhtNodes } from './testkit/local-dht.js';
import { startBridge, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';
import { DIST, sleep } from './testkit/sidecar-process.js';
import { HandmadeSeeder, makeBundle, testBridgeKey, putBridgeItem, catalogEntry, type HandmadeBundle } from './testkit/hostile-bridge.js';

const execFileP = promisify(execFile);
const N_AUTHORS = 50;
const N_DHT = 20;

/**
 * Every node stopped and started again with nothing stored: same id and port (a restarted node
 * with a new id at an old address is refused by its peers' k-rpc, "unexpected node id", until
 * their tables forget it), empty storage.
 */
async function restartEmpty(nodes: DHT[], ports: number[]): Promise<DHT[]> {
  const ids = nodes.map((d) => Buffer.from((d as unknown as { nodeId: Uint8Array }).nodeId));
  await stopDhtNodes(nodes);
  const seeds = ports.slice(0, 4).map((p) => `127.0.0.1:${p}`);
  return Promise.all(
    ports.map(
      (port, i) =>
        new Promise<DHT>((resolve, reject) => {
          const d = new DHT({
            nodeId: ids[i],
            bootstrap: i === 0 ? false : seeds,
            host: false,
            verify: verifyEd25519,
          } as ConstructorParameters<typeof DHT>[0]);
          hardenDht(d);
          d.on('error', () => {});
          d.on('warning', () => {});
          const t = setTimeout(() => reject(new Error('DHT node did not restart')), 20_000);
          d.listen(port, '127.0.0.1', () => {
            clearTimeout(t);
            resolve(d);
          });
        }),
    ),
  );
}

/** R: a separate process resolving every author through the library. */
async function resolveAll(
  bootstrap: string[],
  bridge: string,
  authors: string[],
): Promise<{ events: Record<string, string[]>; problems: Record<string, unknown> }> {
  const { stdout } = await execFileP(
    process.execPath,
    [join(DIST, 'test/testkit/resolve-many.js'), JSON.stringify({ bootstrap, bridge, authors, minEvents: 2 })],
    { timeout: 400_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as { events: Record<string, string[]>; problems: Record<string, unknown> };
}

function assertAll(
  got: { events: Record<string, string[]>; problems: Record<string, unknown> },
  expected: Map<string, NostrEvent[]>,
  when: string,
): void {
  let missing = 0;
  for (const [author, events] of expected) {
    const ids = new Set(got.events[author] ?? []);
    for (const e of events) if (!ids.has(e.id)) missing++;
  }
  assert.equal(
    missing,
    0,
    `${when}: ${missing} events not resolved; problems ${JSON.stringify(Object.entries(got.problems).slice(0, 2), null, 1)}`,
  );
}

test("mirror: O with 50 authors, M following O, R resolving; O killed → R resolves 100 %; every DHT node restarted empty → M re-puts O's items within one interval and R resolves 100 % again", {
  timeout: 600_000,
}, async () => {
  const ports = await freeUdpPorts(N_DHT);
  let nodes = await startLocalDhtAt(ports, 0);
  const bootstrap = ports.slice(0, 8).map((p) => `127.0.0.1:${p}`);
  let origin: Bridge | null = null;
  let mirror: Bridge | null = null;
  try {
    origin = await startBridge(bootstrap, { catalog: { intervalSeconds: 1 } });
    const signers = await Promise.all(Array.from({ length: N_AUTHORS }, () => signer()));
    const expected = new Map<string, NostrEvent[]>();
    const batch1 = signers.map((s, i) => s.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `first ${i}` }));
    await origin.feed(batch1);
    await origin.waitPublished(
      batch1.length,
      signers.map((s) => s.pubkey),
      60_000,
    );
    await sleep(1200);
    const batch2 = signers.map((s, i) => s.sign({ kind: 1, created_at: 1_700_001_000 + i, content: `second ${i}` }));
    await origin.feed(batch2);
    await origin.waitPublished(
      batch1.length + batch2.length,
      signers.map((s) => s.pubkey),
      60_000,
    );
    for (const [i, s] of signers.entries()) expected.set(s.pubkey, [batch1[i]!, batch2[i]!]);
    const o = origin;
    const oStatus = await o.sidecar.waitFor(
      (s) =>
        Boolean(s.catalog?.infoHash) &&
        !s.catalog!.pending &&
        s.catalog!.bundles === s.bundles?.active &&
        (s.pointers?.dirtyAuthors ?? 1) === 0,
      60_000,
    );
    assert.ok((oStatus.bundles?.active ?? 0) >= 2);

    const republishSec = 15;
    mirror = await startBridge(bootstrap, {
      mirror: {
        bridges: [o.key],
        pollIntervalSeconds: 2,
        republishIntervalSeconds: republishSec,
        putsPerSecond: 200,
        bundleTimeoutSeconds: 60,
      },
    });
    const m = mirror;
    // Caught up: the catalog O has now, every bundle in it held, every author's pointer and the bridge item kept.
    const caught = await m.sidecar.waitFor((s) => {
      const b = s.mirror?.bridges[0];
      return Boolean(b && b.catalog === oStatus.catalog!.infoHash && b.caughtUp && b.items.held >= N_AUTHORS + 1);
    }, 180_000);
    const mb = caught.mirror!.bridges[0]!;
    assert.equal(mb.bundles.held, oStatus.bundles!.active);
    assert.equal(mb.bundles.events, batch1.length + batch2.length);
    assert.equal(mb.lagSec, 0);
    assert.deepEqual(mb.bundles.refused, {});
    const statusAddress = (JSON.parse(readFileSync(join(m.ws.dataDir, 'sidecar.json'), 'utf8')) as { status: string }).status;
    const metrics = await (await fetch(`http://${statusAddress}/metrics`)).text();
    assert.match(metrics, new RegExp(`nostr_bt_mirror_bundles_held\\{bridge="${o.key}"\\} ${mb.bundles.held}`));

    // O is gone for good.
    await o.sidecar.kill9();
    const afterKill = await resolveAll(
      bootstrap,
      o.key,
      signers.map((s) => s.pubkey),
    );
    const kk = Buffer.from(o.key, 'hex');
    const where = (author: string) =>
      nodes
        .map(
          (d) =>
            (d as unknown as { _values: { get(k: string): { seq?: number } | undefined } })._values.get(
              targetOf(kk, authorSalt(author)).toString('hex'),
            )?.seq ?? '-',
        )
        .join(' ');
    assertAll(
      afterKill,
      expected,
      `origin killed (seqs on the nodes: ${Object.keys(afterKill.problems)
        .map((a) => where(a))
        .join('; ')})`,
    );

    // Every DHT node restarted empty, on the same ports.
    nodes = await restartEmpty(nodes, ports);
    assert.equal(
      nodes.filter((d) => (d as unknown as { _values: { length: number } })._values.length > 0).length,
      0,
      'nothing stored after the restart',
    );
    const restartedAt = Date.now();
    const before = (await m.sidecar.status()).mirror!.bridges[0]!.items.reput;
    // Within one republish interval (plus the time the puts take), every item is re-put and held
    // by the restarted nodes (not only by the mirror's own node).
    const k = Buffer.from(o.key, 'hex');
    const held = (salt: Buffer) =>
      nodes.filter((d) => (d as unknown as { _values: { get(k: string): unknown } })._values.get(targetOf(k, salt).toString('hex'))).length;
    const unstored = () => signers.filter((s) => held(authorSalt(s.pubkey)) === 0).length + (held(BRIDGE_SALT) === 0 ? 1 : 0);
    const limitMs = (republishSec + 60) * 1000;
    while (unstored() > 0 && Date.now() - restartedAt < limitMs) await sleep(500);
    const tookSec = (Date.now() - restartedAt) / 1000;
    assert.equal(unstored(), 0, `${unstored()} of ${N_AUTHORS + 1} items on no restarted node after ${tookSec} s`);
    const reput = (await m.sidecar.status()).mirror!.bridges[0]!;
    console.log(
      `# re-put after the DHT restart: ${tookSec} s (republish interval ${republishSec} s), ${reput.items.repaired} stale copies repaired`,
    );
    assert.ok(reput.items.reput - before >= N_AUTHORS + 1, `${reput.items.reput - before} items re-put since the restart`);
    // The announces are renewed on the same schedule.
    const announcedBefore = (await m.sidecar.status()).mirror!.announced;
    await m.sidecar.waitFor((st) => st.mirror!.announced >= announcedBefore + mb.bundles.held, (republishSec + 60) * 1000);
    const again = await resolveAll(
      bootstrap,
      o.key,
      signers.map((s) => s.pubkey),
    );
    assertAll(again, expected, 'DHT restarted empty');
  } finally {
    await mirror?.stop();
    await origin?.stop().catch(() => origin?.ws.cleanup());
    await stopDhtNodes(nodes);
  }
});

test('mirror: a hostile origin (10,000-bundle catalog, a 10 GB bundle, forged events, a lying entry) leaves the mirror within its quota and running', {
  timeout: 300_000,
}, async () => {
  const { nodes, bootstrap } = await startPortedDht(N_DHT);
  const seeder = new HandmadeSeeder(nodes[N_DHT - 1]!);
  const bridge = testBridgeKey();
  let mirror: Bridge | null = null;
  try {
    // First: a catalog of 10,000 bundles (none exists).
    const huge = catalogTorrent({
      bridge: bridge.hex,
      bundles: Array.from({ length: 10_000 }, (_, i) => ({
        ih: i.toString(16).padStart(40, '0'),
        level: 0,
        start: 1,
        end: 61,
        events: 1,
        bytes: 100,
        authors: ['a'.repeat(64)],
      })),
    });
    const hugeBundle: HandmadeBundle = {
      infoHash: huge.infoHash,
      name: huge.name,
      torrent: huge.torrent,
      files: [{ path: [`${bridge.hex}.jsonl`], data: huge.data }],
      pieceLength: huge.pieceLength,
    };
    await seeder.seed(hugeBundle);
    await putBridgeItem(nodes[0]!, bridge, huge.infoHash, 1);

    const quota = 64 * 1024;
    mirror = await startBridge(bootstrap, {
      mirror: {
        bridges: [bridge.hex],
        pollIntervalSeconds: 2,
        maxBytesPerBridge: quota,
        maxBundlesPerBridge: 1000,
        bundleTimeoutSeconds: 20,
      },
    });
    const m = mirror;
    await m.sidecar.waitFor((s) => /10000 bundles \(limit 1000\)/.test(s.mirror?.bridges[0]?.lastError ?? ''), 60_000);

    // Then: a catalog with one good bundle, one with a forged event, one whose entry lies about its
    // size, a 10 GB one (announced, never served) and one over the quota.
    const a = await signer();
    const good = a.sign({ kind: 1, created_at: 1_700_000_000, content: 'good' });
    const goodBundle = makeBundle([{ path: [`${a.pubkey}.jsonl`], data: Buffer.from(canonicalJson(good) + '\n') }], {
      name: 'nostr-bt-1700000000-1700000000-1',
    });
    const forged = { ...a.sign({ kind: 1, created_at: 1_700_000_001, content: 'forged' }) };
    forged.content = 'changed after signing';
    const forgedBundle = makeBundle([{ path: [`${a.pubkey}.jsonl`], data: Buffer.from(canonicalJson(forged) + '\n') }], {
      name: 'nostr-bt-1700000001-1700000001-1',
    });
    const lyingBundle = makeBundle(
      [
        {
          path: [`${a.pubkey}.jsonl`],
          data: Buffer.from(canonicalJson(a.sign({ kind: 1, created_at: 1_700_000_002, content: 'x'.repeat(2000) })) + '\n'),
        },
      ],
      { name: 'nostr-bt-1700000002-1700000002-1' },
    );
    // Two of 18 × 2.2 KB: either fits the 64 KiB quota, both do not.
    const bigLines = (from: number) =>
      Array.from({ length: 18 }, (_, i) => canonicalJson(a.sign({ kind: 1, created_at: from + i, content: 'y'.repeat(2000) })) + '\n').join(
        '',
      );
    const big1 = makeBundle([{ path: [`${a.pubkey}.jsonl`], data: Buffer.from(bigLines(1_700_000_100)) }], {
      name: 'nostr-bt-1700000100-1700000117-18',
    });
    const big2 = makeBundle([{ path: [`${a.pubkey}.jsonl`], data: Buffer.from(bigLines(1_700_000_200)) }], {
      name: 'nostr-bt-1700000200-1700000217-18',
    });
    for (const b of [goodBundle, forgedBundle, lyingBundle, big1, big2]) await seeder.seed(b);
    const entries: CatalogBundle[] = [
      catalogEntry(goodBundle, 1, [a.pubkey]),
      catalogEntry(forgedBundle, 1, [a.pubkey]),
      { ...catalogEntry(lyingBundle, 1, [a.pubkey]), bytes: 100 },
      { ih: 'f'.repeat(40), level: 4, start: 1, end: 2, events: 50_000_000, bytes: 10 * 1024 ** 3, authors: [a.pubkey] },
      catalogEntry(big1, 18, [a.pubkey]),
      catalogEntry(big2, 18, [a.pubkey]),
    ];
    const cat = catalogTorrent({ bridge: bridge.hex, bundles: entries });
    await seeder.seed({
      infoHash: cat.infoHash,
      name: cat.name,
      torrent: cat.torrent,
      files: [{ path: [`${bridge.hex}.jsonl`], data: cat.data }],
      pieceLength: cat.pieceLength,
    });
    await putBridgeItem(nodes[0]!, bridge, cat.infoHash, 2);

    const s = await m.sidecar.waitFor((st) => {
      const b = st.mirror?.bridges[0];
      const r = b?.bundles.refused ?? {};
      return (
        b?.catalog === cat.infoHash &&
        b.bundles.held === 2 &&
        (r.forged ?? 0) >= 1 &&
        (r.refused ?? 0) >= 1 &&
        (r['too-large'] ?? 0) >= 1 &&
        (r['over-quota'] ?? 0) >= 1
      );
    }, 120_000);
    const b = s.mirror!.bridges[0]!;
    assert.ok(b.bundles.bytes <= quota, `held ${b.bundles.bytes} bytes, quota ${quota}`);
    assert.equal(b.bundles.held, 2);
    assert.equal(b.caughtUp, false);
    // Only the good bundle and one of the two large ones are on disk.
    const files = readdirSync(join(m.ws.dataDir, 'mirror', bridge.hex, 'bundles')).sort();
    assert.equal(files.length, 4, files.join(' '));
    assert.ok(files.includes(`${goodBundle.infoHash}.data`) && files.includes(`${goodBundle.infoHash}.torrent`));
    assert.ok(
      files.some((f) => f.startsWith(big1.infoHash)) !== files.some((f) => f.startsWith(big2.infoHash)),
      'one large bundle, not both',
    );
    assert.equal(s.sidecar, 'up');
  } finally {
    await mirror?.stop();
    await seeder.stop();
    await stopDhtNodes(nodes);
  }
});
