// Ingest lag: how long the oldest line not yet committed has waited, in /status and /metrics (an
// alert-worthy figure while the sidecar is starved of CPU or its commits are held up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Ingestor, type IngestSink } from '../sidecar/ingest/ingestor.js';
import { receivedAtOf } from '../sidecar/ingest/accept-lag.js';
import { Quarantine } from '../sidecar/ingest/quarantine.js';
import { Store } from '../sidecar/index/store.js';
import { SidecarMetrics } from '../sidecar/ops/metrics.js';
import type { Status } from '../sidecar/ops/status.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { pluginLine, pubkeyN, unsignedEvent } from './testkit/events.js';

test('lagSeconds is the age of the oldest unacknowledged line while a commit is held up, and 0 once it commits', {
  timeout: 30_000,
}, async () => {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath, overrides: { ingest: { batchMaxEvents: 10, batchMaxDelayMs: 1 } } });
  const store = Store.open(config.indexDir);
  const log = createLogger('test', 'silent');
  const ingestor = new Ingestor(store, new Quarantine(config.quarantineDir, 1 << 20, log), config, log);
  try {
    const real = store.applyBatch.bind(store);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    store.applyBatch = async (items, extra) => {
      await held;
      return real(items, extra);
    };
    let acked = 0;
    const sink: IngestSink = { source: 'test', trusted: true, committed: (n) => (acked += n) };
    assert.equal(ingestor.lagSeconds, 0);
    for (let i = 0; i < 5; i++)
      ingestor.submit(pluginLine(unsignedEvent(pubkeyN(i), { kind: 1, created_at: 1_700_000_000 + i, content: `n${i}` })), sink);
    await new Promise((r) => setTimeout(r, 1100));
    assert.ok(ingestor.lagSeconds >= 1, `lag ${ingestor.lagSeconds}`);
    assert.equal(ingestor.unacknowledged, 5);
    release();
    await ingestor.idle();
    assert.equal(acked, 5);
    assert.equal(ingestor.lagSeconds, 0);
    assert.equal(ingestor.unacknowledged, 0);
  } finally {
    ingestor.stop();
    await store.close();
    ws.cleanup();
  }
});

test('metrics: nostr_bt_ingest_lag_seconds and nostr_bt_ingest_unacknowledged_lines come from the status', async () => {
  const status = {
    sidecar: 'up',
    events: { received: 0, indexed: 0, duplicates: 0, stored: 0 },
    skippedByPolicy: {},
    removed: {},
    invalid: {},
    spool: { files: 0, bytes: 0 },
    ingest: { backlog: 3, connections: 1, error: null, unacknowledged: 1234, lagSeconds: 42.5 },
  } as unknown as Status;
  const m = new SidecarMetrics(() => status);
  const text = await m.registry.metrics();
  assert.match(text, /^nostr_bt_ingest_lag_seconds 42\.5$/m);
  assert.match(text, /^nostr_bt_ingest_unacknowledged_lines 1234$/m);
});

test("receivedAtOf reads strfry's receivedAt from the first line (text or a run of bytes), and nothing from other lines", () => {
  const e = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1_700_000_000, content: 'a "receivedAt":5 in the content' });
  const line = pluginLine(e, { receivedAt: 1_795_462_693 });
  assert.equal(receivedAtOf(line), 1_795_462_693);
  const run = Buffer.from(`${line}\n${pluginLine(e, { receivedAt: 1_700_000_001 })}\n`);
  assert.equal(receivedAtOf(run), 1_795_462_693);
  assert.equal(receivedAtOf(run.subarray(line.length + 1)), 1_700_000_001);
  // A bare event (backfill, a tool): its content's key is escaped, so no receivedAt.
  assert.equal(receivedAtOf(JSON.stringify(e)), null);
  assert.equal(receivedAtOf(Buffer.from(JSON.stringify(e) + '\n' + line + '\n')), null);
  assert.equal(receivedAtOf('{"receivedAt":x}'), null);
  assert.equal(receivedAtOf(''), null);
});

test('acceptLagSeconds: strfry accept → commit of the oldest line of the last batch, in status and metrics', {
  timeout: 30_000,
}, async () => {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath, overrides: { ingest: { batchMaxEvents: 10, batchMaxDelayMs: 1 } } });
  const store = Store.open(config.indexDir);
  const log = createLogger('test', 'silent');
  const ingestor = new Ingestor(store, new Quarantine(config.quarantineDir, 1 << 20, log), config, log);
  try {
    const sink: IngestSink = { source: 'test', trusted: true, committed: () => {} };
    const now = Math.floor(Date.now() / 1000);
    assert.equal(ingestor.acceptLagSeconds, 0);
    // Lines strfry accepted 42 s ago (they waited in the plugin while the sidecar was starved), then newer ones.
    for (let i = 0; i < 3; i++)
      ingestor.submit(
        pluginLine(unsignedEvent(pubkeyN(i), { kind: 1, created_at: now - 50 + i, content: `old${i}` }), { receivedAt: now - 42 + i }),
        sink,
      );
    await ingestor.idle();
    assert.ok(ingestor.acceptLagSeconds >= 41.5 && ingestor.acceptLagSeconds < 50, `lag ${ingestor.acceptLagSeconds}`);
    const m = new SidecarMetrics(
      () =>
        ({
          ...statusWith(0),
          ingest: { backlog: 0, connections: 1, error: null, acceptLagSeconds: ingestor.acceptLagSeconds },
        }) as unknown as Status,
    );
    assert.match(await m.registry.metrics(), /^nostr_bt_ingest_accept_lag_seconds 4\d(\.\d+)?$/m);
    // Caught up: lines accepted now.
    ingestor.submit(pluginLine(unsignedEvent(pubkeyN(9), { kind: 1, created_at: now, content: 'new' }), { receivedAt: now }), sink);
    await ingestor.idle();
    assert.ok(ingestor.acceptLagSeconds < 5, `lag ${ingestor.acceptLagSeconds}`);
    // Lines without a receivedAt (backfill's bare events) leave it as it was.
    const before = ingestor.acceptLagSeconds;
    ingestor.submit(JSON.stringify(unsignedEvent(pubkeyN(10), { kind: 1, created_at: now, content: 'bare' })), sink);
    await ingestor.idle();
    assert.equal(ingestor.acceptLagSeconds, before);
  } finally {
    ingestor.stop();
    await store.close();
    ws.cleanup();
  }
});

function statusWith(events: number): object {
  return {
    sidecar: 'up',
    events: { received: events, indexed: events, duplicates: 0, stored: events },
    skippedByPolicy: {},
    removed: {},
    invalid: {},
    spool: { files: 0, bytes: 0 },
  };
}
