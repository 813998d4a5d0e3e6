// Pubkey-only resolve does not wait for discovery to end: a bridge is resolved as soon as its
// beacon answers. Discovery here cannot end early: one announced peer accepts the connection and
// never answers, so discovery lasts until that probe's timeout, and the reader closing that
// connection marks its end. The first verified event must come before that mark, in the library
// (its async iterable) and in the CLI (its summary: first event before discovery's duration,
// discovery having started before the resolve).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import DHT from 'bittorrent-dht';
import { DISCOVERY_INFOHASH } from '../sidecar/formats/bridge-beacon.js';
import { verifyEd25519 } from '../sidecar/formats/ed25519.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { ResolveSummary } from '../scripts/reader/resolve.js';
import type { DiscoverySummary } from '../scripts/reader/discover-types.js';
import { createReader } from '../scripts/reader/index.js';
import { startLocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, parseJsonl, lastJson, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';

/** Far above what resolving one author from a loopback bridge takes, even on a busy machine. */
const SILENT_PROBE_S = 25;

test('resolve with no bridge: events of the first bridge found arrive while discovery still runs (library and CLI)', {
  timeout: 240_000,
}, async () => {
  const dht = await startLocalDht(12);
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-discovery-stream-'));
  const marks: string[] = [];
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    marks.push('silent-probe');
    s.on('error', () => {});
    s.resume(); // reads and drops the handshake, so the reader's hang-up is seen
    s.once('close', () => {
      sockets.delete(s);
      marks.push('discovery-end');
    });
  });
  const announcer = new DHT({ bootstrap: dht.bootstrap, host: false, verify: verifyEd25519 } as ConstructorParameters<typeof DHT>[0]);
  announcer.on('error', () => {});
  announcer.on('warning', () => {});
  announcer.listen(0, '127.0.0.1'); // before its bootstrap binds it elsewhere
  const announcerReady = new Promise<void>((r) => announcer.once('ready', () => r()));
  let bridge: Bridge | null = null;
  try {
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    await announcerReady;
    const silentPort = (silent.address() as { port: number }).port;
    await new Promise<void>((resolve, reject) =>
      announcer.announce(DISCOVERY_INFOHASH, silentPort, (err) => (err ? reject(err) : resolve())),
    );

    bridge = await startBridge(dht.bootstrap);
    const alice = await signer();
    const notes = [1, 2, 3].map((i) => alice.sign({ kind: 1, created_at: 1_790_000_000 + i, content: `note ${i}` }));
    await bridge.feed(notes);
    await bridge.waitPublished(3, [alice.pubkey]);
    const discover = { connectTimeoutMs: SILENT_PROBE_S * 1000, timeoutMs: 120_000 };

    // The library: markers in the order things happened.
    const reader = await createReader({ bootstrap: dht.bootstrap, bind: '127.0.0.1' });
    try {
      const r = reader.resolve(alice.pubkey, { discover, limits: { bundleTimeoutMs: 60_000 } });
      const ids: string[] = [];
      for await (const { event } of r) {
        ids.push(event.id);
        marks.push('event');
      }
      const { summary } = await r.result;
      assert.deepEqual(ids.sort(), notes.map((e) => e.id).sort());
      assert.ok(marks.includes('silent-probe'), `discovery probed the silent peer: ${marks.join(' ')}`);
      // The reader destroyed that connection before discovery returned; its close reaches the
      // listener a moment later.
      for (let i = 0; i < 200 && !marks.includes('discovery-end'); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(marks.includes('discovery-end'), `the reader closed the silent probe: ${marks.join(' ')}`);
      assert.ok(marks.indexOf('event') < marks.indexOf('discovery-end'), `first event before discovery ended: ${marks.join(' ')}`);
      const d = summary.discovery!;
      assert.equal(d.failures.timeout, 1, JSON.stringify(d.failures));
      assert.deepEqual(
        d.chosen.map((c) => [c.key, c.from]),
        [[bridge.key, 'beacon']],
      );
      assert.equal(summary.bridges[0]?.status, 'found');
      assert.ok(
        summary.firstEventMs !== null && summary.firstEventMs < d.durationMs,
        `first event ${summary.firstEventMs} ms, discovery ${d.durationMs} ms`,
      );
    } finally {
      await reader.close();
    }

    // The CLI: discovery starts before the resolve does, so a first event sooner after the
    // resolve's start than discovery's whole duration came before discovery ended.
    const r = await runCli(
      [
        'resolve',
        alice.pubkey,
        '--bootstrap',
        dht.bootstrap.join(','),
        '--bind',
        '127.0.0.1',
        '--bridge-cache',
        join(dir, 'bridges.json'),
        '--summary',
        'json',
        '--beacon-timeout',
        String(SILENT_PROBE_S),
        '--discovery-timeout',
        '120',
      ],
      180_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      parseJsonl(r.stdout).map((e: NostrEvent) => e.id),
      [...notes].reverse().map((e) => e.id),
    );
    const s = lastJson<ResolveSummary & { discovery: DiscoverySummary }>(r.stderr);
    assert.equal(s.discovery.failures.timeout, 1, JSON.stringify(s.discovery.failures));
    assert.ok(
      s.firstEventMs !== null && s.firstEventMs < s.discovery.durationMs,
      `first event at ${s.firstEventMs} ms, discovery ${s.discovery.durationMs} ms`,
    );
    assert.match(r.stderr, /discovery: .* asked 1 bridges/);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    await new Promise<void>((r) => announcer.destroy(() => r()));
    await bridge?.stop();
    await dht.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
