// Hybrid reading: the swarm first, then a real relay (@nostr-relay/core over WebSocket) for what
// the swarm did not give; the summary says which source served what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResolveSummary } from '../scripts/reader/resolve.js';
import { startLocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, parseJsonl, lastJson, type Bridge } from './testkit/reader-rig.js';
import { startTestRelay, type TestRelay } from './testkit/nostr-relay.js';
import { signer } from './testkit/events.js';

test('hybrid: an event the swarm lacks comes from a real relay, the rest from the swarm; an author no bridge has comes wholly from the relay', {
  timeout: 120_000,
}, async () => {
  const dht = await startLocalDht(16);
  let bridge: Bridge | null = null;
  let relay: TestRelay | null = null;
  try {
    bridge = await startBridge(dht.bootstrap);
    relay = await startTestRelay();
    const alice = await signer();
    const archived = Array.from({ length: 12 }, (_, i) => alice.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `archived ${i}` }));
    await bridge.feed(archived);
    await bridge.waitPublished(archived.length, [alice.pubkey]);
    // The relay has everything, plus a note posted after the last bundle was cut.
    const fresh = alice.sign({ kind: 1, created_at: 1_700_000_100, content: 'not archived yet' });
    await relay.publish([...archived, fresh]);
    const bob = await signer();
    const bobs = [
      bob.sign({ kind: 0, created_at: 1_700_000_000, content: '{"name":"bob"}' }),
      bob.sign({ kind: 1, created_at: 1_700_000_001, content: 'only on the relay' }),
    ];
    await relay.publish(bobs);

    const common = [
      '--bridge',
      bridge.key,
      '--relay',
      relay.url,
      '--bootstrap',
      dht.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--summary',
      'json',
    ];
    relay.resetCounters();
    const r = await runCli(['resolve', alice.pubkey, ...common]);
    assert.equal(r.code, 0, r.stderr);
    const got = parseJsonl(r.stdout);
    assert.deepEqual(
      got.map((e) => e.id),
      [fresh, ...archived.slice().reverse()].map((e) => e.id),
    );
    const s = lastJson<ResolveSummary>(r.stderr);
    assert.deepEqual(s.sources, { swarm: archived.length, [relay.url]: 1 });
    assert.equal(s.relays[0]!.asked, 'newer-than-archive');
    assert.equal(s.relays[0]!.since, archived[archived.length - 1]!.created_at);
    assert.equal(s.relays[0]!.newEvents, 1);
    // The relay was asked only for what is newer than the archive: far less than the archive itself.
    assert.ok(relay.sentBytes() < archived.reduce((n, e) => n + JSON.stringify(e).length, 0), `relay sent ${relay.sentBytes()} bytes`);

    // No bridge has Bob: everything from the relay (asked in full), exit 1 would be "not found".
    const rb = await runCli(['resolve', bob.pubkey, ...common, '--pointer-timeout', '5']);
    assert.equal(rb.code, 0, rb.stderr);
    assert.deepEqual(
      parseJsonl(rb.stdout).map((e) => e.id),
      [bobs[1]!.id, bobs[0]!.id],
    );
    const sb = lastJson<ResolveSummary>(rb.stderr);
    assert.equal(sb.bridges[0]!.status, 'absent');
    assert.equal(sb.relays[0]!.asked, 'full');
    assert.deepEqual(sb.sources, { [relay.url]: 2 });

    // --relay-mode full asks for everything: the archived events arrive twice, once kept.
    const rf = await runCli(['resolve', alice.pubkey, ...common, '--relay-mode', 'full']);
    assert.equal(rf.code, 0, rf.stderr);
    const sf = lastJson<ResolveSummary>(rf.stderr);
    assert.equal(sf.relays[0]!.asked, 'full');
    assert.equal(sf.relays[0]!.alreadyHad, archived.length);
    assert.deepEqual(sf.sources, { swarm: archived.length, [relay.url]: 1 });

    // A relay that is down: the swarm's events are still printed, exit 4 (partial).
    const down = await runCli([
      'resolve',
      alice.pubkey,
      ...common.slice(0, 2),
      '--relay',
      'ws://127.0.0.1:9',
      ...common.slice(4),
      '--relay-timeout',
      '3',
    ]);
    assert.equal(down.code, 4, down.stderr);
    assert.equal(parseJsonl(down.stdout).length, archived.length);
  } finally {
    await relay?.stop();
    await bridge?.stop();
    await dht.stop();
  }
});
