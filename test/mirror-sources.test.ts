// Where a mirror gets an origin's bundles from, and what it does when they do not fit:
// - an origin whose only reachable source is its gateway (no BitTorrent peer at all: its bridge
//   item names the gateway, `g`): the mirror fetches the catalog's and every bundle's `.torrent`
//   from `<g>/torrent/` and the bytes from the web seed `<g>/webseed/<ih>/` (docs/protocol.md §9,
//   §11 "Mirrors"), verifies every event and catches up;
// - a real origin with a gateway (`gateway.publicUrl`): its bridge item names it, its gateway serves
//   the catalog like a bundle, and the mirror's downloads take bytes from that web seed too;
// - bundles refused for the disk quota are fetched once the origin retires others and they fit.
// Real sidecar (the mirror), real bittorrent-dht nodes on 127.0.0.1, a hand-made origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import bencode from 'bencode';
import { catalogTorrent, type CatalogBundle } from '../sidecar/formats/catalog.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { startPortedDht, stopDhtNodes } from './testkit/local-dht.js';
import { startBridge, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';
import { freeTcpPort } from './testkit/gateway-rig.js';
import {
  HandmadeSeeder,
  makeBundle,
  putPointer,
  testBridgeKey,
  putBridgeItem,
  catalogEntry,
  type HandmadeBundle,
  type TestBridgeKey,
} from './testkit/hostile-bridge.js';

const N_DHT = 20;

function catalogBundle(bridge: TestBridgeKey, entries: CatalogBundle[]): HandmadeBundle {
  const cat = catalogTorrent({ bridge: bridge.hex, bundles: entries });
  return {
    infoHash: cat.infoHash,
    name: cat.name,
    torrent: cat.torrent,
    files: [{ path: [`${bridge.hex}.jsonl`], data: cat.data }],
    pieceLength: cat.pieceLength,
  };
}

/**
 * The two gateway routes a mirror uses (§9): `GET /torrent/<ih>.torrent` (with the web seed in
 * `url-list`) and `GET /webseed/<ih>/[<name>/<path>]` with byte ranges; counts the bytes it served.
 */
async function startGateway(bundles: HandmadeBundle[]): Promise<{ server: Server; url: string; served: () => number }> {
  let served = 0;
  let url = '';
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/\/+/g, '/');
    const t = /^\/torrent\/([0-9a-f]{40})\.torrent$/.exec(path);
    if (t) {
      const b = bundles.find((x) => x.infoHash === t[1]);
      if (!b) return void res.writeHead(404).end();
      const { info } = bencode.decode(b.torrent) as { info: unknown };
      const body = Buffer.from(bencode.encode({ info, 'url-list': [`${url}/webseed/${b.infoHash}/`] }));
      return void res.writeHead(200, { 'content-type': 'application/x-bittorrent', 'content-length': body.length }).end(body);
    }
    // `/webseed/<ih>/` is the data file (what a client asks for a torrent of one file), else one file.
    const w = /^\/webseed\/([0-9a-f]{40})\/(.*)$/.exec(path);
    const b = w && bundles.find((x) => x.infoHash === w[1]);
    const f =
      b && w![2] === ''
        ? { data: Buffer.concat(b.files.map((x) => x.data)) }
        : b?.files.find((x) => `${b.name}/${x.path.join('/')}` === w![2]);
    if (!f) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Math.min(Number(range[2]), f.data.length - 1) : f.data.length - 1;
    if (start > end) return void res.writeHead(416).end();
    const body = f.data.subarray(start, end + 1);
    served += body.length;
    res
      .writeHead(range ? 206 : 200, {
        'content-length': body.length,
        ...(range ? { 'content-range': `bytes ${start}-${end}/${f.data.length}` } : {}),
      })
      .end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, url, served: () => served };
}

test('mirror: an origin reachable only through its gateway (no BitTorrent peer): catalog and bundles come from the web seed, every event verified', {
  timeout: 300_000,
}, async () => {
  const { nodes, bootstrap } = await startPortedDht(N_DHT);
  const bridge = testBridgeKey();
  let mirror: Bridge | null = null;
  let gateway: Awaited<ReturnType<typeof startGateway>> | null = null;
  try {
    const authors = await Promise.all([signer(), signer(), signer()]);
    // Two bundles: one of three authors (a multi-file torrent), one of a single author; pieces of 16 KiB.
    const lines = (s: (typeof authors)[number], from: number, n: number) =>
      Buffer.from(
        Array.from(
          { length: n },
          (_, i) => canonicalJson(s.sign({ kind: 1, created_at: from + i, content: `w${i} `.repeat(200) })) + '\n',
        ).join(''),
      );
    const b1 = makeBundle(
      authors
        .map((s) => ({ path: [`${s.pubkey}.jsonl`], data: lines(s, 1_700_000_000, 20) }))
        .sort((x, y) => (x.path[0]! < y.path[0]! ? -1 : 1)),
      { name: 'nostr-bt-1700000000-1700000019-60' },
    );
    const b2 = makeBundle([{ path: [`${authors[0]!.pubkey}.jsonl`], data: lines(authors[0]!, 1_700_100_000, 30) }], {
      name: 'nostr-bt-1700100000-1700100029-30',
    });
    const sortedAuthors = authors.map((s) => s.pubkey).sort();
    const cat = catalogBundle(bridge, [
      catalogEntry(b1, 60, sortedAuthors, 1_700_000_060),
      catalogEntry(b2, 30, [authors[0]!.pubkey], 1_700_100_060),
    ]);
    gateway = await startGateway([b1, b2, cat]);
    for (const s of authors) await putPointer(nodes[1]!, bridge, s.pubkey, s === authors[0] ? [b2.infoHash, b1.infoHash] : [b1.infoHash]);
    await putBridgeItem(nodes[0]!, bridge, cat.infoHash, 1, gateway.url);

    mirror = await startBridge(bootstrap, { mirror: { bridges: [bridge.hex], pollIntervalSeconds: 2, bundleTimeoutSeconds: 60 } });
    const s = await mirror.sidecar.waitFor((st) => {
      const b = st.mirror?.bridges[0];
      return Boolean(b?.caughtUp);
    }, 120_000);
    const b = s.mirror!.bridges[0]!;
    assert.equal(b.catalog, cat.infoHash);
    assert.equal(b.bundles.held, 2);
    assert.equal(b.bundles.events, 90);
    assert.deepEqual(b.bundles.refused, {});
    const bytes = [b1, b2, cat].reduce((n, x) => n + x.files.reduce((m, f) => m + f.data.length, 0), 0);
    // Nobody but the web seed has these bytes.
    assert.ok(gateway.served() >= bytes, `the web seed served ${gateway.served()} of ${bytes} bytes`);
    const files = readdirSync(join(mirror.ws.dataDir, 'mirror', bridge.hex, 'bundles')).sort();
    assert.deepEqual(
      files,
      [b1.infoHash, b2.infoHash].sort().flatMap((ih) => [`${ih}.data`, `${ih}.torrent`]),
    );
  } finally {
    await mirror?.stop();
    await new Promise<void>((r) => (gateway ? gateway.server.close(() => r()) : r()));
    await stopDhtNodes(nodes);
  }
});

test('mirror: a bundle refused for the disk quota is fetched once the origin retires another and it fits', {
  timeout: 300_000,
}, async () => {
  const { nodes, bootstrap } = await startPortedDht(N_DHT);
  const seeder = new HandmadeSeeder(nodes[N_DHT - 1]!);
  const bridge = testBridgeKey();
  let mirror: Bridge | null = null;
  try {
    const a = await signer();
    // Two bundles of 18 × ~2.2 KB: either fits the 64 KiB quota, both do not.
    const big = (from: number) =>
      makeBundle(
        [
          {
            path: [`${a.pubkey}.jsonl`],
            data: Buffer.from(
              Array.from(
                { length: 18 },
                (_, i) => canonicalJson(a.sign({ kind: 1, created_at: from + i, content: 'y'.repeat(2000) })) + '\n',
              ).join(''),
            ),
          },
        ],
        { name: `nostr-bt-${from}-${from + 17}-18` },
      );
    const older = big(1_700_000_100);
    const newer = big(1_700_000_200);
    // The newest bundle is fetched first: `newer` is held, `older` refused for the quota.
    const cat1 = catalogBundle(bridge, [
      catalogEntry(older, 18, [a.pubkey], 1_700_000_160),
      catalogEntry(newer, 18, [a.pubkey], 1_700_000_260),
    ]);
    for (const b of [older, newer, cat1]) await seeder.seed(b);
    await putPointer(nodes[1]!, bridge, a.pubkey, [newer.infoHash, older.infoHash], 1);
    await putBridgeItem(nodes[0]!, bridge, cat1.infoHash, 1, null);

    mirror = await startBridge(bootstrap, {
      mirror: { bridges: [bridge.hex], pollIntervalSeconds: 1, maxBytesPerBridge: 64 * 1024, bundleTimeoutSeconds: 30 },
    });
    const m = mirror;
    const first = await m.sidecar.waitFor((st) => {
      const b = st.mirror?.bridges[0];
      return b?.catalog === cat1.infoHash && b.bundles.held === 1 && (b.bundles.refused['over-quota'] ?? 0) === 1;
    }, 120_000);
    const pollsBefore = first.mirror!.bridges[0]!.lastPollAt;
    // A few more polls: still over the quota, counted once, not caught up.
    const later = await m.sidecar.waitFor((st) => (st.mirror?.bridges[0]?.lastPollAt ?? '') > (pollsBefore ?? ''), 30_000);
    const lb = later.mirror!.bridges[0]!;
    assert.equal(lb.bundles.held, 1);
    assert.equal(lb.bundles.refused['over-quota'], 1);
    assert.equal(lb.caughtUp, false);
    const bundleDir = join(m.ws.dataDir, 'mirror', bridge.hex, 'bundles');
    assert.deepEqual(readdirSync(bundleDir).sort(), [`${newer.infoHash}.data`, `${newer.infoHash}.torrent`]);

    // The origin merges: `newer` is retired, `older` (plus a small new one) stays listed. The
    // mirror retires `newer` first, then `older` fits.
    const small = makeBundle(
      [
        {
          path: [`${a.pubkey}.jsonl`],
          data: Buffer.from(canonicalJson(a.sign({ kind: 1, created_at: 1_700_000_300, content: 'z' })) + '\n'),
        },
      ],
      {
        name: 'nostr-bt-1700000300-1700000300-1',
      },
    );
    const cat2 = catalogBundle(bridge, [
      catalogEntry(older, 18, [a.pubkey], 1_700_000_160),
      catalogEntry(small, 1, [a.pubkey], 1_700_000_360),
    ]);
    for (const b of [small, cat2]) await seeder.seed(b);
    await putPointer(nodes[1]!, bridge, a.pubkey, [small.infoHash, older.infoHash], 2);
    await putBridgeItem(nodes[0]!, bridge, cat2.infoHash, 2, null);
    const done = await m.sidecar.waitFor((st) => {
      const b = st.mirror?.bridges[0];
      return Boolean(b?.catalog === cat2.infoHash && b.caughtUp);
    }, 120_000);
    const b = done.mirror!.bridges[0]!;
    assert.equal(b.bundles.held, 2);
    assert.equal(b.bundles.events, 19);
    assert.ok(b.bundles.bytes <= 64 * 1024);
    assert.deepEqual(
      readdirSync(bundleDir).sort(),
      [older.infoHash, small.infoHash].sort().flatMap((ih) => [`${ih}.data`, `${ih}.torrent`]),
    );
  } finally {
    await mirror?.stop();
    await seeder.stop();
    await stopDhtNodes(nodes);
  }
});

test("mirror: a real origin's bridge item names its gateway; the catalog's .torrent is served there and the mirror takes bytes from its web seed", {
  timeout: 300_000,
}, async () => {
  const { nodes, bootstrap } = await startPortedDht(N_DHT);
  let origin: Bridge | null = null;
  let mirror: Bridge | null = null;
  try {
    const port = await freeTcpPort();
    const publicUrl = `http://127.0.0.1:${port}`;
    origin = await startBridge(bootstrap, { catalog: { intervalSeconds: 1 }, gateway: { listen: `127.0.0.1:${port}`, publicUrl } });
    const signers = await Promise.all(Array.from({ length: 5 }, () => signer()));
    const events = signers.flatMap((s, i) =>
      [0, 1].map((k) => s.sign({ kind: 1, created_at: 1_700_000_000 + i * 10 + k, content: `event ${i}.${k} `.repeat(400) })),
    );
    await origin.feed(events);
    await origin.waitPublished(
      events.length,
      signers.map((s) => s.pubkey),
      60_000,
    );
    const o = origin;
    const os = await o.sidecar.waitFor(
      (s) =>
        Boolean(s.catalog?.infoHash) &&
        !s.catalog!.pending &&
        s.catalog!.bundles === s.bundles?.active &&
        (s.pointers?.dirtyAuthors ?? 1) === 0,
      60_000,
    );
    const catalogIh = os.catalog!.infoHash!;
    // The catalog is served like a bundle: its .torrent (web seed in url-list) and its one file.
    const t = await fetch(`${publicUrl}/torrent/${catalogIh}.torrent`);
    assert.equal(t.status, 200);
    const torrent = bencode.decode(Buffer.from(await t.arrayBuffer())) as { 'url-list': Uint8Array[] };
    assert.equal(Buffer.from(torrent['url-list'][0]!).toString(), `${publicUrl}/webseed/${catalogIh}/`);
    const whole = await fetch(`${publicUrl}/webseed/${catalogIh}/`);
    assert.equal(whole.status, 200);
    assert.match((await whole.text()).split('\n')[0]!, new RegExp(`"bridge":"${o.key}"`));

    mirror = await startBridge(bootstrap, { mirror: { bridges: [o.key], pollIntervalSeconds: 2, bundleTimeoutSeconds: 60 } });
    const done = await mirror.sidecar.waitFor((st) => {
      const b = st.mirror?.bridges[0];
      return Boolean(b && b.catalog === catalogIh && b.caughtUp);
    }, 120_000);
    const b = done.mirror!.bridges[0]!;
    assert.equal(b.bundles.held, os.bundles!.active);
    assert.equal(b.bundles.events, events.length);
    const statusAddress = (JSON.parse(readFileSync(join(o.ws.dataDir, 'sidecar.json'), 'utf8')) as { status: string }).status;
    const metrics = await (await fetch(`http://${statusAddress}/metrics`)).text();
    const served = Number(/^nostr_bt_gateway_webseed_bytes_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(served > 0, `the origin's web seed served ${served} bytes`);
  } finally {
    await mirror?.stop();
    await origin?.stop().catch(() => origin?.ws.cleanup());
    await stopDhtNodes(nodes);
  }
});
