// The bridge catalog (docs/protocol.md §11): the format is deterministic and its decoder strict; a
// real bridge publishes one through its bridge item, and `nostr-bt catalog` in another process
// (sharing only the DHT) reads it and checks every bundle against the bundle's own metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import {
  BadCatalog,
  catalogMismatch,
  catalogTorrent,
  decodeCatalog,
  encodeCatalog,
  type Catalog,
  type CatalogBundle,
} from '../sidecar/formats/catalog.js';
import { BRIDGE_SALT, bridgeValue, decodeBridgeValue, targetOf } from '../sidecar/formats/pointer-item.js';
import { buildBundle } from '../sidecar/bundles/builder.js';
import { torrentLayout } from '../sidecar/formats/torrent-layout.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { Store } from '../sidecar/index/store.js';
import { dhtGet, startLocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';
import { sleep } from './testkit/sidecar-process.js';

const hex = (n: number) => randomBytes(n).toString('hex');
const sorted = (a: string[]) => [...a].sort();

function sample(nBundles: number, nAuthors: number): Catalog {
  const authors = sorted(Array.from({ length: nAuthors }, () => hex(32)));
  const bundles: CatalogBundle[] = Array.from({ length: nBundles }, (_, i) => ({
    ih: hex(20),
    level: i % 5,
    start: 1_700_000_000 + i * 60,
    end: 1_700_000_060 + i * 60,
    events: 3 + i,
    bytes: 1000 + i,
    authors: sorted(authors.filter((_, j) => (j + i) % 3 !== 0)),
  }));
  return { bridge: hex(32), bundles };
}

test('catalog format: the same entries in any order give the same bytes and infohash; what decodes is what was encoded', () => {
  const c = sample(7, 20);
  const a = catalogTorrent(c);
  const b = catalogTorrent({ bridge: c.bridge, bundles: [...c.bundles].reverse() });
  assert.ok(a.data.equals(b.data));
  assert.equal(a.infoHash, b.infoHash);
  assert.equal(
    a.infoHash,
    createHash('sha1')
      .update(bencode.encode(bencode.decode(a.torrent).info))
      .digest('hex'),
    'infohash is the SHA-1 of the info dict bencoded as the library does',
  );
  const layout = torrentLayout(a.torrent, a.infoHash);
  assert.equal(layout.length, a.data.length);
  assert.equal(layout.name, `nostr-bt-catalog-7-${new Set(c.bundles.flatMap((x) => x.authors)).size}`);
  const files = (bencode.decode(a.torrent).info as { files: { path: Uint8Array[] }[] }).files;
  assert.deepEqual(
    files.map((f) => Buffer.from(f.path[0]!).toString()),
    [`${c.bridge}.jsonl`],
  );
  const back = decodeCatalog(a.data, c.bridge);
  assert.deepEqual(
    back.bundles,
    [...c.bundles].sort((x, y) => (x.ih < y.ih ? -1 : 1)),
  );
  const lines = a.data.toString().trimEnd().split('\n');
  assert.equal(lines.length, 8);
  assert.deepEqual(Object.keys(JSON.parse(lines[0]!)), ['v', 'bridge', 'bundles', 'authors', 'events', 'bytes']);
  // Another bridge's catalog with the same bundles is another torrent.
  assert.notEqual(catalogTorrent({ ...c, bridge: hex(32) }).infoHash, a.infoHash);
});

test('catalog decoder: refuses non-canonical, reordered, miscounted, foreign and oversized catalogs with a reason', () => {
  const c = sample(3, 5);
  const good = encodeCatalog(c);
  const lines = good.toString().trimEnd().split('\n');
  const bad = (ls: string[]) => Buffer.from(ls.join('\n') + '\n');
  const cases: [string, Buffer, RegExp, string?][] = [
    ['no newline at the end', good.subarray(0, good.length - 1), /newline/],
    ['another bridge', good, /catalog is for bridge/, hex(32)],
    ['a space in a line', bad([lines[0]!, lines[1]!.replace('":', '": '), ...lines.slice(2)]), /canonical/],
    ['bundles out of order', bad([lines[0]!, lines[2]!, lines[1]!, lines[3]!]), /ascending infohash/],
    ['a bundle left out', bad(lines.slice(0, 3)), /header does not match/],
    ['a line too many', bad([...lines, lines[3]!]), /more bundle lines/],
    ['not JSON', bad([lines[0]!, '{oops', ...lines.slice(2)]), /not JSON/],
    [
      'authors not ascending',
      bad([lines[0]!, lines[1]!.replace(/"authors":\["([0-9a-f]+)","([0-9a-f]+)"/, '"authors":["$2","$1"'), ...lines.slice(2)]),
      /ascending/,
    ],
    [
      'uppercase hex',
      bad([lines[0]!, lines[1]!.replace(/"ih":"([0-9a-f]+)"/, (_, h: string) => `"ih":"${h.toUpperCase()}"`), ...lines.slice(2)]),
      /lowercase hex/,
    ],
    ['version 2', bad([lines[0]!.replace('"v":1', '"v":2'), ...lines.slice(1)]), /unknown catalog version/],
  ];
  for (const [what, bytes, re, bridge] of cases) {
    assert.throws(
      () => decodeCatalog(bytes, bridge ?? c.bridge),
      (err: unknown) => err instanceof BadCatalog && re.test((err as Error).message),
      what,
    );
  }
  const many = sample(12, 2);
  assert.throws(
    () => decodeCatalog(encodeCatalog(many), many.bridge, { maxBundles: 10, maxAuthorEntries: 1e9 }),
    /12 bundles \(limit 10\)/,
  );
  assert.throws(
    () => decodeCatalog(encodeCatalog(many), many.bridge, { maxBundles: 100, maxAuthorEntries: 5 }),
    /more than 5 author entries/,
  );
});

test('catalog entries are checked against a real bundle: authors, bytes and events must match its metadata', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-catalog-'));
  try {
    const signers = await Promise.all([signer(), signer(), signer()]);
    signers.sort((a, b) => (a.pubkey < b.pubkey ? -1 : 1));
    const events = signers.map((s, i) => s.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `n${i}` }));
    const built = (await buildBundle(
      dir,
      signers.map((s, i) => ({ pubkey: s.pubkey, lines: [{ json: canonicalJson(events[i]!), createdAt: events[i]!.created_at }] })),
    ))!;
    const meta = { name: built.name, files: built.files.map((f) => ({ name: `${f.pubkey}.jsonl`, length: f.length })) };
    const entry: CatalogBundle = {
      ih: built.infoHash,
      level: 0,
      start: 1,
      end: 61,
      events: 3,
      bytes: built.bytes,
      authors: signers.map((s) => s.pubkey),
    };
    assert.equal(catalogMismatch(entry, meta), null);
    assert.match(catalogMismatch({ ...entry, authors: entry.authors.slice(1) }, meta)!, /3 files, the catalog lists 2/);
    assert.match(catalogMismatch({ ...entry, authors: [entry.authors[0]!, entry.authors[1]!, hex(32)].sort() }, meta)!, /the catalog says/);
    assert.match(catalogMismatch({ ...entry, bytes: entry.bytes + 1 }, meta)!, /bytes/);
    assert.match(catalogMismatch({ ...entry, events: 4 }, meta)!, /4 events/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bridge item: `c` names the catalog; older items without it still decode', () => {
  const ih = hex(20);
  const v = bridgeValue({ relayUrl: '', authors: 1, events: 2, bundles: 3, newest: null, catalog: ih });
  assert.equal(decodeBridgeValue(bencode.decode(bencode.encode(v))).catalog, ih);
  assert.equal(decodeBridgeValue(bridgeValue({ relayUrl: '', authors: 1, events: 2, bundles: 3, newest: null })).catalog, null);
  assert.throws(() => decodeBridgeValue({ ...v, c: Buffer.alloc(19) }), /c is not 20 bytes/);
});

/** Waits until the bridge item in the DHT names `catalog`. */
async function waitBridgeItem(node: Parameters<typeof dhtGet>[0], key: string, catalog: string, timeoutMs = 30_000): Promise<void> {
  const k = Buffer.from(key, 'hex');
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    const res = await dhtGet(node, targetOf(k, BRIDGE_SALT), BRIDGE_SALT).catch(() => null);
    if (res) {
      last = decodeBridgeValue(res.v);
      if ((last as { catalog: string | null }).catalog === catalog) return;
    }
    await sleep(200);
  }
  throw new Error(`bridge item never named catalog ${catalog}; last ${JSON.stringify(last)}`);
}

test('a bridge publishes its catalog; `nostr-bt catalog` in another process reads it and every bundle matches; a restart gives the same infohash', {
  timeout: 180_000,
}, async () => {
  const dht = await startLocalDht(16);
  let bridge: Bridge | null = null;
  try {
    bridge = await startBridge(dht.bootstrap, { catalog: { intervalSeconds: 1 } });
    const signers = await Promise.all(Array.from({ length: 6 }, () => signer()));
    const first = signers.map((s, i) => s.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `first ${i}` }));
    await bridge.feed(first);
    await bridge.waitPublished(
      first.length,
      signers.map((s) => s.pubkey),
    );
    // A second window, so the catalog lists several bundles.
    await sleep(1500);
    const second = signers.slice(0, 3).map((s, i) => s.sign({ kind: 1, created_at: 1_700_000_100 + i, content: `second ${i}` }));
    await bridge.feed(second);
    await bridge.waitPublished(
      first.length + second.length,
      signers.map((s) => s.pubkey),
    );
    const b = bridge;
    const st = await b.sidecar.waitFor(
      (s) => Boolean(s.catalog?.infoHash) && s.catalog!.pending === false && s.catalog!.bundles === s.bundles?.active,
      30_000,
    );
    const ih = st.catalog!.infoHash!;
    await waitBridgeItem(dht.nodes[dht.nodes.length - 1]!, b.key, ih);

    const r = await runCli(
      ['catalog', '--bridge', b.key, '--bootstrap', dht.bootstrap.join(','), '--bind', '127.0.0.1', '--format', 'json'],
      120_000,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      infoHash: string;
      header: { bundles: number; authors: number; events: number };
      bundles: CatalogBundle[];
      checks: { ok: boolean }[];
    };
    assert.equal(out.infoHash, ih);
    assert.equal(out.header.authors, signers.length);
    assert.equal(out.header.events, first.length + second.length);
    assert.ok(out.header.bundles >= 2, `${out.header.bundles} bundles`);
    assert.equal(out.checks.length, out.header.bundles);
    assert.ok(
      out.checks.every((c) => c.ok),
      JSON.stringify(out.checks),
    );
    assert.deepEqual(sorted([...new Set(out.bundles.flatMap((x) => x.authors))]), sorted(signers.map((s) => s.pubkey)));
    const text = await runCli(
      ['catalog', '--bridge', b.key, '--bootstrap', dht.bootstrap.join(','), '--bind', '127.0.0.1', '--no-verify'],
      120_000,
    );
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`catalog ${ih}: ${out.header.bundles} bundles, ${signers.length} authors`));
    assert.match(text.stdout, /unchecked/);

    // Same index → same catalog: the index, read by itself, gives the same bytes.
    const { catalogOf } = await import('../sidecar/bundles/catalog.js');
    await b.sidecar.stop();
    const store = Store.open(join(b.ws.dataDir, 'index'), { readOnly: true });
    try {
      const active = [...store.bundles.all()].filter((x) => x.state === 'active');
      assert.equal(catalogTorrent(catalogOf(store, b.key, active)).infoHash, ih);
    } finally {
      await store.close();
    }
    await b.sidecar.start();
    const again = await b.sidecar.waitFor((s) => Boolean(s.catalog?.infoHash), 30_000);
    assert.equal(again.catalog!.infoHash, ih, 'same catalog after a restart');
  } finally {
    await bridge?.stop();
    await dht.stop();
  }
});

test('`nostr-bt catalog`: bad input is refused with exit 2; a bridge nobody published finds nothing (exit 1)', {
  timeout: 60_000,
}, async () => {
  const dht = await startLocalDht(8);
  try {
    const bad = await runCli(['catalog', '--bridge', 'nope', '--bootstrap', dht.bootstrap.join(',')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a bridge key/);
    const none = await runCli([
      'catalog',
      '--bridge',
      hex(32),
      '--bootstrap',
      dht.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--item-timeout',
      '3',
    ]);
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /no-item/);
  } finally {
    await dht.stop();
  }
});
