// Ingest lag: how long the oldest line not yet committed has waited, in /status and /metrics (an
// alert-worthy figure while the sidecar is starved of CPU or its commits are held up).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Ingestor, type IngestSink } from '../sidecar/ingest/ingestor.js';
import { Quarantine } from '../sidecar/ingest/quarantine.js';
import { Store } from '../sidecar/index/store.js';
import { SidecarMetrics } from '../sidecar/ops/metrics.js';
import type { Status } from '../sidecar/ops/status.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { pluginLine, pubkeyN, unsignedEvent } from './testkit/events.js';

test('lagSeconds is the age of the oldest unacknowledged line while a commit is held up, and 0 once it commits', { timeout: 30_000 }, async () => {
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
    for (let i = 0; i < 5; i++) ingestor.submit(pluginLine(unsignedEvent(pubkeyN(i), { kind: 1, created_at: 1_700_000_000 + i, content: `n${i}` })), sink);
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
