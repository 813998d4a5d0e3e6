// Acks are cumulative counts: a batch whose commit failed holds back the acks of later batches
// that committed, until its retry commits (else a kill would lose its lines).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Ingestor, type IngestSink } from '../sidecar/ingest/ingestor.js';
import { Quarantine } from '../sidecar/ingest/quarantine.js';
import { Store } from '../sidecar/index/store.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { pluginLine, pubkeyN, unsignedEvent } from './testkit/events.js';

test('a failed commit holds back later acks until its retry commits; every line acknowledged exactly once', {
  timeout: 30_000,
}, async () => {
  const ws = makeWorkspace();
  const config = loadConfig({ configPath: ws.configPath, overrides: { ingest: { batchMaxEvents: 10, batchMaxDelayMs: 1 } } });
  const store = Store.open(config.indexDir);
  const log = createLogger('test', 'silent');
  const ingestor = new Ingestor(store, new Quarantine(config.quarantineDir, 1 << 20, log), config, log);
  try {
    const real = store.applyBatch.bind(store);
    let calls = 0;
    let failFirst!: () => void;
    const firstMayFail = new Promise<void>((r) => (failFirst = r));
    let secondCommitted!: () => void;
    const second = new Promise<void>((r) => (secondCommitted = r));
    // The first transaction fails (as on a full disk), but only once the second has committed.
    store.applyBatch = async (items, extra) => {
      const n = ++calls;
      if (n === 1) {
        await firstMayFail;
        throw new Error('MDB_MAP_FULL: simulated');
      }
      const out = await real(items, extra);
      if (n === 2) secondCommitted();
      return out;
    };
    const acks: number[] = [];
    const sink: IngestSink = { source: 'test', trusted: true, committed: (n) => acks.push(n) };
    const lines = Array.from({ length: 20 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(i), { kind: 1, created_at: 1_700_000_000 + i, content: `n${i}` })),
    );
    for (const l of lines) ingestor.submit(l, sink);
    await second;
    await new Promise((r) => setImmediate(r)); // the ingestor has seen the second commit
    assert.equal(store.eventCount(), 10, 'the second batch committed');
    assert.deepEqual(acks, [], 'but nothing is acknowledged while the first batch is uncommitted');
    failFirst();
    await ingestor.idle();
    assert.equal(store.eventCount(), 20);
    assert.equal(
      acks.reduce((a, b) => a + b, 0),
      20,
      'every line acknowledged once',
    );
  } finally {
    ingestor.stop();
    await store.close();
    ws.cleanup();
  }
});
