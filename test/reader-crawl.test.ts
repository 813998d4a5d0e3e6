// Two bridges archiving overlapping authors, and a third, hostile one. `resolve` merges and
// dedupes across bridges; `crawl` walks a follow graph of 57 authors to depth 2 over both bridges
// (the authors at depth 3 exist but are not read) and never follows a forged contact list; with
// --import it pipes the same events into `strfry import` (a stand-in that records what it got).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { nip19 } from 'nostr-tools';
import { canonicalJson, computeEventId, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { ResolveSummary } from '../scripts/reader/resolve.js';
import type { CrawlSummary } from '../scripts/reader/crawl.js';
import { DIST } from './testkit/sidecar-process.js';
import { startLocalDht, type LocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, parseJsonl, lastJson, type Bridge } from './testkit/reader-rig.js';
import { HandmadeSeeder, makeBundle, putPointer, testBridgeKey } from './testkit/hostile-bridge.js';
import { signer } from './testkit/events.js';

type Signer = Awaited<ReturnType<typeof signer>>;

const STANDIN = resolve(DIST, '..', 'test/testkit/strfry-standin.mjs');

let dht: LocalDht;
let bridgeA: Bridge;
let bridgeB: Bridge;
let seeder: HandmadeSeeder;
let hostileKey: string;
/** Every author of the follow graph, by depth (0: root … 3: not to be read at depth 2). */
const byDepth: Signer[][] = [[], [], [], []];
const evil: Signer[] = [];
const eventsOf = new Map<string, NostrEvent[]>();
let genuineRootList: NostrEvent;
let split: { author: Signer; onA: NostrEvent[]; onB: NostrEvent[]; onBoth: NostrEvent[] };

const T = 1_700_000_000;

before(async () => {
  dht = await startLocalDht(20);
  [bridgeA, bridgeB] = await Promise.all([startBridge(dht.bootstrap), startBridge(dht.bootstrap)]);
  seeder = new HandmadeSeeder(dht.nodes[0]!);

  // The graph: root → 7 authors → 7 each (49) → 1 each (49 at depth 3).
  byDepth[0]!.push(await signer());
  for (let i = 0; i < 7; i++) byDepth[1]!.push(await signer());
  for (let i = 0; i < 49; i++) byDepth[2]!.push(await signer());
  for (let i = 0; i < 49; i++) byDepth[3]!.push(await signer());
  for (let i = 0; i < 3; i++) evil.push(await signer());
  const follows = (s: Signer): string[] => {
    const d = byDepth.findIndex((l) => l.includes(s));
    if (d < 0) return [];
    const i = byDepth[d]!.indexOf(s);
    if (d === 0) return byDepth[1]!.map((x) => x.pubkey);
    // Depth 1 also follows a sibling and the root (already seen: not read twice).
    if (d === 1)
      return [...byDepth[2]!.slice(i * 7, i * 7 + 7).map((x) => x.pubkey), byDepth[1]![(i + 1) % 7]!.pubkey, byDepth[0]![0]!.pubkey];
    if (d === 2) return [byDepth[3]![i]!.pubkey];
    return [];
  };
  const feedA: NostrEvent[] = [];
  const feedB: NostrEvent[] = [];
  let n = 0;
  for (const s of [...byDepth.flat(), ...evil]) {
    const evs: NostrEvent[] = [
      s.sign({ kind: 0, created_at: T, content: `{"name":"${s.pubkey.slice(0, 8)}"}` }),
      s.sign({ kind: 1, created_at: T + 1, content: 'hello' }),
    ];
    const f = follows(s);
    if (f.length > 0) {
      // An older contact list too: only the newest is followed.
      evs.push(s.sign({ kind: 3, created_at: T + 2, tags: [['p', evil[0]!.pubkey]] }));
      evs.push(s.sign({ kind: 3, created_at: T + 3, tags: f.map((p) => ['p', p]) }));
    }
    eventsOf.set(s.pubkey, evs);
    // Spread over the two bridges; every fifth author on both.
    if (n % 5 === 0) {
      feedA.push(...evs);
      feedB.push(...evs);
    } else (n % 2 === 0 ? feedA : feedB).push(...evs);
    n++;
  }
  // The evil authors' events are in bridge A: following a forged list would bring them out.
  genuineRootList = eventsOf.get(byDepth[0]![0]!.pubkey)!.find((e) => e.kind === 3 && e.created_at === T + 3)!;

  // An author split over the bridges: some events on each, some on both.
  const sp = await signer();
  const ev = (i: number) => sp.sign({ kind: 1, created_at: T + 10 + i, content: `split ${i}` });
  split = { author: sp, onA: [ev(0), ev(1)], onB: [ev(2)], onBoth: [ev(3), ev(4)] };
  feedA.push(...split.onA, ...split.onBoth);
  feedB.push(...split.onB, ...split.onBoth);

  await Promise.all([bridgeA.feed(feedA), bridgeB.feed(feedB)]);
  const authorsIn = (evs: NostrEvent[]) => [...new Set(evs.map((e) => e.pubkey))];
  // The older contact lists are replaced in the index (and so in the bundles) by the newer ones.
  const kept = (evs: NostrEvent[]) => evs.filter((e) => !(e.kind === 3 && e.created_at === T + 2)).length;
  await Promise.all([
    bridgeA.waitPublished(kept(feedA), authorsIn(feedA), 60_000),
    bridgeB.waitPublished(kept(feedB), authorsIn(feedB), 60_000),
  ]);

  // The hostile bridge lists, for the root, a bundle with two forged contact lists pointing at
  // the evil authors: one claiming to be the root (its signature is another key's), one by
  // Mallory put in the root's file.
  const root = byDepth[0]![0]!;
  const mallory = await signer();
  const evilTags = evil.map((e) => ['p', e.pubkey]);
  const malloryList = mallory.sign({ kind: 3, created_at: T + 100, tags: evilTags });
  const claimed = { ...malloryList, pubkey: root.pubkey };
  const forged = { ...claimed, id: computeEventId(claimed) };
  const bundle = makeBundle([
    { path: [`${root.pubkey}.jsonl`], data: Buffer.from(canonicalJson(forged) + '\n' + canonicalJson(malloryList) + '\n') },
  ]);
  await seeder.seed(bundle);
  const h = testBridgeKey();
  hostileKey = h.hex;
  await putPointer(dht.nodes[1]!, h, root.pubkey, [bundle.infoHash]);
});

after(async () => {
  await seeder?.stop();
  await Promise.all([bridgeA?.stop(), bridgeB?.stop()]);
  await dht?.stop();
});

// All local nodes are bittorrent-dht nodes on loopback: no need for Mainline's 5 packets/s per
// node, and an answer comes within milliseconds (earlier reader processes left dead nodes behind).
const net = () => [
  '--bootstrap',
  dht.bootstrap.join(','),
  '--bind',
  '127.0.0.1',
  '--dht-node-rate',
  '200',
  '--dht-query-timeout',
  '0.5',
  '--summary',
  'json',
];

test('two bridges with overlapping authors: resolve merges both and keeps one copy of each event', { timeout: 60_000 }, async () => {
  const all = [...split.onA, ...split.onB, ...split.onBoth].sort((a, b) => b.created_at - a.created_at);
  const r = await runCli(['resolve', split.author.pubkey, '--bridge', bridgeA.key, '--bridge', bridgeB.key, ...net()]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    parseJsonl(r.stdout).map((e) => e.id),
    all.map((e) => e.id),
  );
  const s = lastJson<ResolveSummary>(r.stderr);
  assert.deepEqual(
    s.bridges.map((b) => b.status),
    ['found', 'found'],
  );
  assert.equal(s.events.duplicates, split.onBoth.length);
  assert.deepEqual(s.sources, { swarm: all.length });
  const onlyA = await runCli(['resolve', split.author.pubkey, '--bridge', bridgeA.key, ...net()]);
  assert.deepEqual(
    parseJsonl(onlyA.stdout)
      .map((e) => e.id)
      .sort(),
    [...split.onA, ...split.onBoth].map((e) => e.id).sort(),
  );
});

test('crawl to depth 2 over two bridges: every author within two hops, none beyond, forged contact lists ignored', {
  timeout: 120_000,
}, async () => {
  const root = byDepth[0]![0]!;
  const r = await runCli(
    [
      'crawl',
      nip19.npubEncode(root.pubkey),
      '--depth',
      '2',
      '--concurrency',
      '12',
      '--bridge',
      bridgeA.key,
      '--bridge',
      bridgeB.key,
      '--bridge',
      hostileKey,
      ...net(),
    ],
    110_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const got = parseJsonl(r.stdout);
  const want = byDepth
    .slice(0, 3)
    .flat()
    .flatMap((s) => eventsOf.get(s.pubkey)!);
  // Superseded contact lists are history: only the newest kind 3 of each author is output.
  const wantIds = want
    .filter((e) => !(e.kind === 3 && e.created_at === T + 2))
    .map((e) => e.id)
    .sort();
  assert.deepEqual(got.map((e) => e.id).sort(), wantIds);
  const authors = new Set(got.map((e) => e.pubkey));
  assert.equal(authors.size, 57);
  for (const s of [...byDepth[3]!, ...evil]) assert.ok(!authors.has(s.pubkey), 'nobody beyond depth 2, no evil author');
  const s = lastJson<CrawlSummary>(r.stderr);
  assert.deepEqual(s.authorsByDepth, [1, 7, 49]);
  assert.equal(s.rootContactList?.id, genuineRootList.id);
  assert.equal(s.contactListsFollowed, 8);
  assert.ok((s.rejected['bad-sig'] ?? 0) >= 1 && (s.rejected['wrong-author'] ?? 0) >= 1, JSON.stringify(s.rejected));
  assert.deepEqual(s.authors, { resolved: 57, found: 57, notFound: 0, failed: 0, leftInQueue: 0 });
  assert.equal(s.stoppedBy, null);
  assert.ok(!r.stderr.includes('crawl ['), 'no progress bar when stderr is not a terminal');
});

test('crawl --import pipes the verified events into strfry import; budgets stop a crawl early', { timeout: 120_000 }, async () => {
  const root = byDepth[0]![0]!;
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-import-'));
  try {
    const conf = join(dir, 'strfry.conf');
    writeFileSync(conf, 'db = "./strfry-db/"\n');
    const out = join(dir, 'got.json');
    process.env.STRFRY_STANDIN_OUT = out;
    const r = await runCli([
      'crawl',
      root.pubkey,
      '--depth',
      '1',
      '--bridge',
      bridgeA.key,
      '--bridge',
      bridgeB.key,
      '--import',
      '--strfry',
      STANDIN,
      '--strfry-config',
      conf,
      ...net(),
    ]);
    delete process.env.STRFRY_STANDIN_OUT;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'events go to strfry, not stdout');
    assert.match(r.stderr, /standin strfry: imported 24 events/);
    const got = JSON.parse(readFileSync(out, 'utf8')) as { args: string[]; config: string; lines: string[] };
    assert.deepEqual(got.args, [`--config=${conf}`, 'import']);
    const want = byDepth
      .slice(0, 2)
      .flat()
      .flatMap((s) => eventsOf.get(s.pubkey)!)
      .filter((e) => !(e.kind === 3 && e.created_at === T + 2));
    assert.equal(want.length, 24);
    assert.deepEqual(got.lines.slice().sort(), want.map((e) => canonicalJson(e)).sort());

    // strfry refusing (no such config): the crawl reports it and fails.
    const bad = await runCli([
      'crawl',
      root.pubkey,
      '--depth',
      '0',
      '--bridge',
      bridgeA.key,
      '--bridge',
      bridgeB.key,
      '--import',
      '--strfry',
      STANDIN,
      '--strfry-config',
      join(dir, 'missing.conf'),
      ...net(),
    ]);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /strfry import: .*failed/);

    // A budget of 5 authors: stopped early, said so, exit 4.
    const capped = await runCli([
      'crawl',
      root.pubkey,
      '--depth',
      '2',
      '--max-authors',
      '5',
      '--progress',
      '--bridge',
      bridgeA.key,
      '--bridge',
      bridgeB.key,
      ...net(),
    ]);
    assert.equal(capped.code, 4, capped.stderr);
    assert.match(capped.stderr, /crawl \[.*\] \d+\/\d+ authors \| queued \d+ \| \d+ events/, 'progress on stderr when asked');
    const cs = lastJson<CrawlSummary>(capped.stderr);
    assert.equal(cs.authors.resolved, 5);
    assert.equal(cs.stoppedBy, 'max-authors');
    assert.equal(new Set(parseJsonl(capped.stdout).map((e) => e.pubkey)).size, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
