// Pubkey-only discovery under a Sybil attack, end to end: two real bridges (sidecar processes)
// announce their beacons on a loopback DHT next to 1,000 fake announcers (closed ports, silent
// listeners, junk answers, and valid beacons with keys that have no pointers or pointers to junk).
// `nostr-bt resolve <author>` with no --bridge, a separate process sharing only the DHT, finds
// both bridges within its discovery budget and outputs exactly the author's archived events;
// the forged events a fake bridge points to are rejected as always. A second run starts from the
// bridge cache: the bridges that had the author's pointer come first, even with room for only two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, computeEventId, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { ResolveSummary } from '../scripts/reader/resolve.js';
import type { DiscoverySummary } from '../scripts/reader/discover-types.js';
import { createReader, NoBridgeFoundError } from '../scripts/reader/index.js';
import { startLocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, parseJsonl, lastJson, type Bridge } from './testkit/reader-rig.js';
import { HandmadeSeeder, makeBundle, putPointer } from './testkit/hostile-bridge.js';
import { startFakeAnnouncers, type FakeAnnouncers } from './testkit/fake-announcers.js';
import { signer } from './testkit/events.js';
import { startTestRelay } from './testkit/nostr-relay.js';

type Summary = ResolveSummary & { discovery: DiscoverySummary };

test('resolve with no --bridge: both real bridges found among 1,000 fake announcers, within budget; junk rejected; cache ranks them first', {
  timeout: 360_000,
}, async () => {
  const dht = await startLocalDht(40);
  const bridges: Bridge[] = [];
  let fakes: FakeAnnouncers | null = null;
  const seeder = new HandmadeSeeder(dht.nodes[2]!);
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-discovery-'));
  try {
    bridges.push(await startBridge(dht.bootstrap), await startBridge(dht.bootstrap));
    const alice = await signer();
    const bob = await signer();
    const onA = [1, 2, 3].map((i) => alice.sign({ kind: 1, created_at: 1_790_000_000 + i, content: `on A ${i}` }));
    const onB = [4, 5].map((i) => alice.sign({ kind: 1, created_at: 1_790_000_000 + i, content: `on B ${i}` }));
    const bobs = bob.sign({ kind: 1, created_at: 1_790_000_010, content: 'bob on B' });
    await bridges[0]!.feed(onA);
    await bridges[1]!.feed([...onB, bobs]);
    await bridges[0]!.waitPublished(3, [alice.pubkey]);
    await bridges[1]!.waitPublished(3, [alice.pubkey, bob.pubkey]);

    // 400 closed + 300 silent + 250 junk + 50 keyed = 1,000 fake announcers.
    fakes = await startFakeAnnouncers(dht.bootstrap, { closed: 400, silent: 300, junk: 250, keyed: 50 });
    assert.ok(fakes.announced >= 990, `announced ${fakes.announced}`);
    // Of the keyed ones, 3 point Alice to a bundle nobody seeds, 2 to a bundle of forged events.
    const forged = { ...onA[0]!, content: 'forged' };
    const forgedSig = { ...forged, id: computeEventId(forged) };
    const junkBundle = makeBundle([
      {
        path: [`${alice.pubkey}.jsonl`],
        data: Buffer.from(JSON.stringify(forgedSig) + '\n' + JSON.stringify({ ...onA[1]!, content: 'bad id' }) + '\n'),
      },
    ]);
    await seeder.seed(junkBundle);
    const neverSeeded = randomBytes(20).toString('hex');
    for (let i = 0; i < 5; i++) {
      const k = fakes.keys[i]!;
      await putPointer(dht.nodes[3 + i]!, { key: k, hex: k.publicKey.toString('hex') }, alice.pubkey, [
        i < 3 ? neverSeeded : junkBundle.infoHash,
      ]);
    }

    const cache = join(dir, 'cache', 'bridges.json');
    const common = [
      '--bootstrap',
      dht.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--bridge-cache',
      cache,
      '--summary',
      'json',
      '--bundle-timeout',
      '8',
      '--beacon-timeout',
      '2',
      '--discovery-timeout',
      '60',
      '--max-bridges',
      '64',
    ];
    const t0 = Date.now();
    const r = await runCli(['resolve', alice.pubkey, ...common], 180_000);
    const wall = Date.now() - t0;
    // Partial (4): the fake bridges' bundles could not be read.
    assert.equal(r.code, 4, r.stderr);
    const want = [...onA, ...onB].sort((a, b) => b.created_at - a.created_at).map((e) => canonicalJson(e));
    assert.deepEqual(
      parseJsonl(r.stdout).map((e: NostrEvent) => canonicalJson(e)),
      want,
    );
    const s = lastJson<Summary>(r.stderr);
    const d = s.discovery;
    const real = bridges.map((b) => b.key);
    for (const k of real) {
      assert.ok(
        d.chosen.some((c) => c.key === k),
        `real bridge ${k.slice(0, 8)} chosen`,
      );
      assert.equal(s.bridges.find((b) => b.bridge === k)?.status, 'found');
    }
    // Every announcer was considered once, within the peer budget and the deadline.
    assert.ok(d.peersSeen >= 990 && d.peersSeen <= 1002, `peers seen ${d.peersSeen}`);
    assert.equal(d.probed, d.peersSeen);
    assert.equal(d.answered, 52, `answered: the 2 bridges and the 50 keyed fakes; ${JSON.stringify(d.failures)}`);
    assert.ok((d.failures.refused ?? 0) >= 390, `closed ports refused: ${JSON.stringify(d.failures)}`);
    assert.equal(d.failures.timeout, 300, `silent listeners time out: ${JSON.stringify(d.failures)}`);
    // Closed ports and junk: 650 in all (a closed port another process took meanwhile may
    // answer otherwise than "refused": the machine is shared).
    const f = d.failures;
    assert.equal(
      (f.refused ?? 0) +
        (f.closed ?? 0) +
        (f.malformed ?? 0) +
        (f['wrong-infohash'] ?? 0) +
        (f['bad-signature'] ?? 0) +
        (f['no-beacon'] ?? 0) +
        (f['not-a-dict'] ?? 0),
      650,
      JSON.stringify(f),
    );
    assert.ok(
      (f.malformed ?? 0) >= 100 && (f['wrong-infohash'] ?? 0) >= 50 && (f['bad-signature'] ?? 0) >= 50 && (f.closed ?? 0) >= 50,
      JSON.stringify(f),
    );
    assert.equal(d.stoppedBy, null);
    assert.ok(d.durationMs < 60_000, `discovery took ${d.durationMs} ms`);
    // 300 silent peers × 2 s at 64 at once is ~10 s: the attack costs time, boundedly.
    assert.ok(wall < 150_000, `whole resolve ${wall} ms`);
    // Junk from the fake bridges is rejected as always, and their bundles reported.
    assert.equal(s.rejected['bad-sig'], 1);
    assert.equal(s.rejected['bad-id'], 1);
    assert.equal(s.bundles.find((b) => b.infoHash === neverSeeded)?.reason, 'no-peers');
    assert.equal(s.bridges.filter((b) => b.status === 'absent').length, 45);
    assert.ok(existsSync(cache));

    // Second run: the two bridges whose pointers led to Alice's events come first from the cache
    // (not the fakes whose pointers led to junk), so even room for two bridges asks exactly them.
    const r2 = await runCli(['resolve', alice.pubkey, ...common.slice(0, -1), '2'], 180_000);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(
      parseJsonl(r2.stdout).map((e: NostrEvent) => canonicalJson(e)),
      want,
    );
    const s2 = lastJson<Summary>(r2.stderr);
    assert.deepEqual(new Set(s2.discovery.chosen.map((c) => c.key)), new Set(real));
    assert.ok(
      s2.discovery.chosen.every((c) => c.from !== 'beacon'),
      JSON.stringify(s2.discovery.chosen),
    );

    // crawl takes the same path (depth 0: the root only).
    const c = await runCli(['crawl', alice.pubkey, '--depth', '0', ...common.slice(0, -1), '2'], 180_000);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(
      parseJsonl(c.stdout)
        .map((e: NostrEvent) => canonicalJson(e))
        .sort(),
      [...want].sort(),
    );
    assert.deepEqual(new Set(lastJson<{ discovery: DiscoverySummary }>(c.stderr).discovery.chosen.map((x) => x.key)), new Set(real));

    // The library: discoverBridges finds the same, and resolve({ discover }) works with no key.
    const reader = await createReader({ bootstrap: dht.bootstrap, bind: '127.0.0.1' });
    try {
      const found = await reader.discoverBridges({ limits: { connectTimeoutMs: 2000, maxBridges: 64 } });
      for (const k of real) assert.ok(found.bridges.some((b) => b.key === k));
      assert.equal(found.report.answered, 52);
      const res = await reader.resolve(bob.pubkey, {
        discover: { connectTimeoutMs: 2000, maxBridges: 64 },
        limits: { bundleTimeoutMs: 8000 },
      }).result;
      assert.deepEqual(
        res.events.map((e) => e.id),
        [bobs.id],
      );
      assert.ok(res.summary.discovery && res.summary.discovery.chosen.length === 52);
    } finally {
      await reader.close();
    }
    // Each bridge's status counts its announce and the readers it answered: at least the
    // discoveries that probed every peer (the first CLI run and the library's two; the runs with
    // room for two bridges stop once two beacons answered, maybe fakes).
    for (const b of bridges) {
      const st = (await b.sidecar.status()) as { discovery?: { announced: number; answered: number; port: number } };
      assert.ok((st.discovery?.announced ?? 0) >= 1, JSON.stringify(st.discovery));
      assert.ok((st.discovery?.answered ?? 0) >= 3, JSON.stringify(st.discovery));
    }
  } finally {
    await fakes?.stop();
    await seeder.stop();
    for (const b of bridges) await b.stop();
    await dht.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolve with no --bridge and nobody announcing: exit 1 with a clear message; the library throws NoBridgeFoundError', {
  timeout: 60_000,
}, async () => {
  const dht = await startLocalDht(8);
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-discovery-'));
  try {
    const author = randomBytes(32).toString('hex');
    const r = await runCli([
      'resolve',
      author,
      '--bootstrap',
      dht.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--bridge-cache',
      join(dir, 'c.json'),
      '--discovery-timeout',
      '10',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no bridge found through the DHT/);
    const reader = await createReader({ bootstrap: dht.bootstrap, bind: '127.0.0.1' });
    try {
      await assert.rejects(
        reader.resolve(author, { discover: true }).result,
        (err: unknown) => err instanceof NoBridgeFoundError && err.code === 'NO_BRIDGE_FOUND',
      );
      // With a relay to ask, no bridge is not an error: the relay's events are the answer.
      const relay = await startTestRelay();
      try {
        const carol = await signer();
        const notes = [1, 2].map((i) => carol.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `relay only ${i}` }));
        await relay.publish(notes);
        const r = reader.resolve(carol.pubkey, { discover: { timeoutMs: 5_000 }, relays: [relay.url] });
        const seen: string[] = [];
        for await (const v of r) seen.push(v.event.id);
        const out = await r.result;
        assert.deepEqual(seen.sort(), notes.map((e) => e.id).sort());
        assert.equal(out.summary.discovery?.chosen.length, 0);
      } finally {
        await relay.stop();
      }
      assert.throws(() => reader.resolve(author, { bridges: [] }), /discover: true/);
      assert.throws(() => reader.resolve(author, { discover: { maxPeers: 0 } }), /maxPeers/);
    } finally {
      await reader.close();
    }
  } finally {
    await dht.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
