// Lines judged in worker threads give exactly judgeLine's results, in order, across batches,
// policy changes and worker crashes; the Ingestor commits every line through a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { JudgePool } from '../sidecar/judge/pool.js';
import { LinePacker, packLines, unpackReply } from '../sidecar/judge/wire.js';
import { eventCount, jsonAt } from '../sidecar/judge/event-batch.js';
import { judgeLine, type Judged } from '../sidecar/judge/line-judge.js';
import { canonicalJson, initSignatureCheck, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import { ArrayBufferPool } from '../sidecar/common/array-buffer-pool.js';
import type { PolicyConfig } from '../sidecar/policy/content-policy.js';
import { Ingestor, type IngestSink } from '../sidecar/ingest/ingestor.js';
import { Quarantine } from '../sidecar/ingest/quarantine.js';
import { Store } from '../sidecar/index/store.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { contentOf, pluginLine, prng, pubkeyN, signer, unsignedEvent } from './testkit/events.js';

const FIXTURES = new URL('../../test/fixtures/', import.meta.url).pathname;
const NOW = 1_800_000_000;
const log = createLogger('test', 'silent');
const basePolicy: PolicyConfig = {
  ...loadConfig({ env: {}, cwd: '/nonexistent' }).policy,
  maxEventBytes: 64 * 1024,
};

function fixtureLines(): string[] {
  return ['strfry-plugin-input.jsonl', 'strfry-export.jsonl'].flatMap((f) =>
    readFileSync(join(FIXTURES, f), 'utf8')
      .split('\n')
      .filter((l) => l.length > 0),
  );
}

async function hostileLines(): Promise<string[]> {
  const s = await signer();
  const a = pubkeyN(1);
  const ev = (kind: number, tags: string[][] = [], content = 'x') => unsignedEvent(a, { kind, created_at: NOW - 10, tags, content });
  const good = ev(1);
  const rnd = prng(7);
  const garbage = Array.from({ length: 300 }, () => String.fromCharCode(Math.floor(rnd() * 0x10000)))
    .join('')
    .replaceAll('\n', ' ');
  return [
    'not json',
    '',
    'null',
    '42',
    '[1,2,3]',
    '{"event":null}',
    '{"event":{"id":"zz"}}',
    pluginLine({ ...good, content: 'changed' }), // bad id
    pluginLine(good), // placeholder signature: bad-sig when verified
    pluginLine(s.sign({ kind: 1, created_at: NOW - 5, content: 'signed ✓ 🦀 emoji' })),
    JSON.stringify(s.sign({ kind: 7, created_at: NOW - 4, tags: [['e', pubkeyN(9)]], content: '+' })), // a bare event
    pluginLine(ev(20001)), // ephemeral
    pluginLine(ev(1, [['expiration', String(NOW - 1)]])), // expired
    pluginLine(ev(1, [['expiration', String(NOW + 100)]])), // expires later: cls.expiresAt
    pluginLine(ev(1, [['-']])), // protected
    pluginLine(ev(0, [], '{"name":"a"}')), // replaceable
    pluginLine(ev(30023, [['d', 'slug']], 'article')), // addressable
    pluginLine(
      ev(5, [
        ['e', pubkeyN(3)],
        ['a', `30023:${a}:slug`],
        ['a', `30023:${pubkeyN(2)}:x`],
      ]),
    ), // deletion
    pluginLine(ev(62, [['relay', 'ALL_RELAYS']])), // vanish
    pluginLine(ev(1, [], contentOf(100 * 1024, 3))), // too large
    pluginLine(ev(1, [], 'é\u0000\u2028 "quotes" \\ 𝄞')),
    garbage,
    '\ud800{"event":1}',
    '[['.repeat(50_000),
  ];
}

/** Judged lines with their JSON as text (a worker sends UTF-8 bytes, judgeLine a string). */
function asText(judged: Judged[]): Judged[] {
  return judged.map((j) => {
    if (j.kind !== 'event') return j;
    const { keyBytes, ...rest } = j;
    // The raw id and pubkey a worker adds must be the hex ones.
    if (keyBytes) assert.equal(Buffer.from(keyBytes).toString('hex'), j.event.id + j.event.pubkey);
    return typeof rest.json === 'string' ? rest : { ...rest, json: Buffer.from(rest.json).toString('utf8') };
  });
}

/** A pool whose answers read as judgeLine's (the reply unpacked, JSON as text). */
type TestPool = Omit<JudgePool, 'judge'> & { judge(...args: Parameters<JudgePool['judge']>): Promise<Judged[]> };

async function withPool<T>(threads: number, fn: (pool: TestPool) => Promise<T>): Promise<T> {
  const pool = new JudgePool(threads, log);
  // Results compared as text: the bytes a worker sends must decode to judgeLine's string.
  const judge = pool.judge.bind(pool);
  const judged = async (...args: Parameters<typeof judge>) => asText(unpackReply(await judge(...args)));
  const tested = pool as unknown as { judge: typeof judged };
  tested.judge = judged;
  try {
    await pool.warm();
    return await fn(pool as unknown as TestPool);
  } finally {
    await pool.close();
  }
}

function inline(lines: string[], verify: boolean | Uint8Array, policy: PolicyConfig): Judged[] {
  return lines.map((l, i) => judgeLine(l, typeof verify === 'boolean' ? verify : verify[i] === 1, policy, NOW));
}

test('pool results equal judgeLine for fixture and hostile lines (verify off, on, per line)', { timeout: 30_000 }, async () => {
  await initSignatureCheck();
  const lines = [...fixtureLines(), ...(await hostileLines())];
  const mixed = Uint8Array.from(lines, (_, i) => i % 2);
  await withPool(1, async (pool) => {
    for (const verify of [false, true, mixed]) {
      const got = await pool.judge(packLines(lines), verify, basePolicy, NOW);
      const want = inline(lines, verify, basePolicy);
      assert.deepEqual(got, want);
    }
    assert.equal(pool.workerBatches, 3, 'judged by a worker');
    const kinds = new Set(
      [...inline(lines, true, basePolicy), ...inline(lines, false, basePolicy)].map((j) =>
        j.kind === 'event' ? 'event' : `${j.kind}.${j.reason}`,
      ),
    );
    for (const k of [
      'event',
      'invalid.malformed',
      'invalid.bad-id',
      'invalid.bad-sig',
      'invalid.bad-field',
      'skipped.ephemeral',
      'skipped.expired',
      'skipped.protected',
      'skipped.too-large',
    ]) {
      assert.ok(kinds.has(k), `the lines cover ${k}`);
    }
  });
});

test('lines packed in runs (socket chunks) give the same batch as lines packed one by one', async () => {
  const lines = [...fixtureLines(), ...(await hostileLines())].filter((l) => !l.includes('\n') && l.length > 0);
  const rnd = prng(3);
  const packer = new LinePacker();
  for (let i = 0; i < lines.length; ) {
    const n = Math.min(lines.length - i, 1 + Math.floor(rnd() * 5));
    if (n === 1 && rnd() < 0.5) packer.add(Buffer.from(lines[i]!));
    else
      packer.addRun(
        Buffer.from(
          lines
            .slice(i, i + n)
            .map((l) => `${l}\n`)
            .join(''),
        ),
        n,
      );
    i += n;
  }
  assert.deepEqual(packer.done(), packLines(lines));
});

test('a line with a newline inside (valid JSON whitespace) is still judged like judgeLine', { timeout: 30_000 }, async () => {
  const e = unsignedEvent(pubkeyN(4), { kind: 1, created_at: NOW - 1, content: 'nl' });
  const lines = [pluginLine(e), `{"event":\n${JSON.stringify(e)}}`, 'not json'];
  await withPool(1, async (pool) =>
    assert.deepEqual(await pool.judge(packLines(lines), false, basePolicy, NOW), inline(lines, false, basePolicy)),
  );
});

test('many batches in flight on two workers come back in order; a new policy applies to later batches', { timeout: 30_000 }, async () => {
  const batches = Array.from({ length: 40 }, (_, b) =>
    Array.from({ length: 50 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(b), { kind: i % 3 === 0 ? 7 : 1, created_at: NOW - b * 100 - i, content: `b${b} i${i}` })),
    ),
  );
  const denyReactions: PolicyConfig = { ...basePolicy, denyKinds: [7] };
  await withPool(2, async (pool) => {
    const results = await Promise.all(
      batches.map((lines, b) => pool.judge(packLines(lines), false, b < 20 ? basePolicy : denyReactions, NOW)),
    );
    results.forEach((got, b) => void assert.deepEqual(got, inline(batches[b]!, false, b < 20 ? basePolicy : denyReactions), `batch ${b}`));
    assert.equal(pool.workerBatches, 40);
    assert.ok(results[25]!.some((j) => j.kind === 'skipped' && j.reason === 'kind-denied'));
    assert.ok(!results[5]!.some((j) => j.kind === 'skipped'));
  });
});

for (const how of ['terminate', 'throw'] as const) {
  test(`worker crash (${how}): the batches in flight are judged correctly, later batches work on a new worker`, {
    timeout: 30_000,
  }, async () => {
    const lines = Array.from({ length: 2000 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(i % 50), { kind: 1, created_at: NOW - i, content: contentOf(500, i) })),
    );
    await withPool(1, async (pool) => {
      assert.deepEqual(
        await pool.judge(packLines(lines.slice(0, 10)), false, basePolicy, NOW),
        inline(lines.slice(0, 10), false, basePolicy),
      );
      const inFlight = [
        pool.judge(packLines(lines), false, basePolicy, NOW),
        pool.judge(packLines(lines.slice(0, 100)), false, basePolicy, NOW),
      ];
      pool.crashForTest(how);
      const after = pool.judge(packLines(lines.slice(100, 200)), false, basePolicy, NOW);
      const got = await Promise.all([...inFlight, after]);
      assert.deepEqual(got[0], inline(lines, false, basePolicy));
      assert.deepEqual(got[1], inline(lines.slice(0, 100), false, basePolicy));
      assert.deepEqual(got[2], inline(lines.slice(100, 200), false, basePolicy));
      assert.equal(pool.restarts, 1);
      // After the restart delay a new worker takes the batches again.
      await new Promise((r) => setTimeout(r, 1100));
      await pool.warm();
      const before = pool.workerBatches;
      assert.deepEqual(
        await pool.judge(packLines(lines.slice(200, 300)), false, basePolicy, NOW),
        inline(lines.slice(200, 300), false, basePolicy),
      );
      assert.equal(pool.workerBatches, before + 1, 'judged by the new worker');
    });
  });
}

test('Ingestor: a judge worker crash mid-stream loses, duplicates and reorders nothing; stop() ends the worker', {
  timeout: 30_000,
}, async () => {
  const ws = makeWorkspace();
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: { ingest: { batchMaxEvents: 100, batchMaxDelayMs: 1, judgeThreads: 1, judgeInlineMaxLines: 0 } },
  });
  const store = Store.open(config.indexDir);
  try {
    const ingestor = new Ingestor(store, new Quarantine(config.quarantineDir, 1 << 20, log), config, log, () => NOW);
    await ingestor.judges!.warm();
    const acks: number[] = [];
    const counts: Record<string, number> = {};
    const sink: IngestSink = {
      source: 'test',
      trusted: true,
      committed: (n) => acks.push(n),
      outcomes: (c) => Object.entries(c).forEach(([k, v]) => void (counts[k] = (counts[k] ?? 0) + v)),
    };
    const a = pubkeyN(77);
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) {
      if (i % 100 === 50) lines.push('not json');
      else if (i % 100 === 60)
        lines.push(lines[i - 1]!); // duplicate
      else lines.push(pluginLine(unsignedEvent(a, { kind: 1, created_at: NOW - 10_000 + i, content: `n${i}` })));
    }
    // The replaceable event arrives after an older version and before a newer one.
    lines.push(pluginLine(unsignedEvent(a, { kind: 0, created_at: NOW - 20, content: 'old' })));
    lines.push(pluginLine(unsignedEvent(a, { kind: 0, created_at: NOW - 10, content: 'new' })));
    for (let i = 0; i < lines.length; i++) {
      ingestor.submit(lines[i]!, sink);
      if (i === 1500) {
        await new Promise((r) => setTimeout(r, 20));
        ingestor.judges!.crashForTest('terminate');
      }
      if (ingestor.saturated) await ingestor.waitForCapacity();
    }
    await ingestor.idle();
    assert.equal(ingestor.judges!.restarts, 1, 'the worker was replaced');
    assert.ok(ingestor.judges!.workerBatches > 0);
    assert.equal(
      acks.reduce((x, y) => x + y, 0),
      lines.length,
      'every line acknowledged once',
    );
    assert.equal(counts['invalid.malformed'], 30);
    assert.equal(counts['duplicate'], 30);
    assert.equal(counts['indexed'], 3000 - 60 + 2);
    assert.equal(store.eventCount(), 3000 - 60 + 1, 'the old profile was superseded');
    // Batch buffers went back and forth between the threads and were written into again: every
    // event is stored as it was sent.
    for (const l of lines.slice(0, -2)) {
      if (l === 'not json') continue;
      const e = (JSON.parse(l) as { event: NostrEvent }).event;
      assert.equal(store.getEvent(e.id)?.j, canonicalJson(e));
    }
    ingestor.stop();
  } finally {
    await store.close();
    ws.cleanup();
  }
});

/** The contents of each batch's events, comma-joined, as the ingestor hands batches to the store. */
function recordApplied(store: Store): string[] {
  const calls: string[] = [];
  const real = store.applyBatch.bind(store);
  store.applyBatch = (items, extra) => {
    calls.push(Array.from({ length: eventCount(items) }, (_, k) => JSON.parse(Buffer.from(jsonAt(items, k)).toString()).content).join(','));
    return real(items, extra);
  };
  return calls;
}

test('Ingestor with two judge workers hands batches to the store in submission order even when a later batch is judged first', {
  timeout: 30_000,
}, async () => {
  await initSignatureCheck();
  const ws = makeWorkspace();
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: {
      ingest: { batchMaxEvents: 100, batchMaxDelayMs: 1, judgeThreads: 2, judgeInlineMaxLines: 0, verifySignatures: 'untrusted' },
    },
  });
  const store = Store.open(config.indexDir);
  try {
    const calls = recordApplied(store);
    const ingestor = new Ingestor(store, new Quarantine(config.quarantineDir, 1 << 20, log), config, log, () => NOW);
    const sinkOf = (trusted: boolean): IngestSink => ({ source: 'test', trusted, committed: () => {} });
    const untrusted = sinkOf(false);
    const trusted = sinkOf(true);
    const s = await signer();
    await ingestor.judges!.warm();
    assert.equal(ingestor.judges!.running, 2);
    // Batch 1 (100 signature checks) goes to one worker, batch 2 (one line, no check) to the other.
    const first = Array.from({ length: 100 }, (_, i) => `s${i}`);
    for (const c of first) ingestor.submit(pluginLine(s.sign({ kind: 1, created_at: NOW - 200, content: c })), untrusted);
    ingestor.submit(pluginLine(s.sign({ kind: 1, created_at: NOW - 40, content: 'last' })), trusted);
    await ingestor.idle();
    assert.deepEqual(calls, [first.join(','), 'last']);
    assert.equal(store.eventCount(), 101);
    ingestor.stop();
  } finally {
    await store.close();
    ws.cleanup();
  }
});

test('Ingestor: a batch of at most judgeInlineMaxLines lines is judged on the ingest thread, and still applied after an earlier batch a worker judges', {
  timeout: 30_000,
}, async () => {
  await initSignatureCheck();
  const ws = makeWorkspace();
  const config = loadConfig({
    configPath: ws.configPath,
    overrides: {
      ingest: { batchMaxEvents: 100, batchMaxDelayMs: 1, judgeThreads: 1, judgeInlineMaxLines: 10, verifySignatures: 'untrusted' },
    },
  });
  const store = Store.open(config.indexDir);
  try {
    const calls = recordApplied(store);
    const ingestor = new Ingestor(store, new Quarantine(config.quarantineDir, 1 << 20, log), config, log, () => NOW);
    const sink: IngestSink = { source: 'test', trusted: false, committed: () => {} };
    const s = await signer();
    await ingestor.judges!.warm();
    // 100 signature checks: the worker; then one line: judged here at once, applied after them.
    const first = Array.from({ length: 100 }, (_, i) => `w${i}`);
    for (const c of first) ingestor.submit(pluginLine(s.sign({ kind: 1, created_at: NOW - 200, content: c })), sink);
    ingestor.submit(pluginLine(s.sign({ kind: 1, created_at: NOW - 40, content: 'small' })), sink);
    await ingestor.idle();
    assert.deepEqual(calls, [first.join(','), 'small']);
    assert.equal(ingestor.judges!.workerBatches, 1, 'only the large batch went to the worker');
    // Alone, a small batch never reaches the worker.
    for (let i = 0; i < 5; i++) ingestor.submit(pluginLine(s.sign({ kind: 1, created_at: NOW - 30, content: `s${i}` })), sink);
    await ingestor.idle();
    assert.equal(ingestor.judges!.workerBatches, 1);
    assert.equal(store.eventCount(), 106);
    ingestor.stop();
  } finally {
    await store.close();
    ws.cleanup();
  }
});

test('ArrayBufferPool: a kept buffer big enough is taken again; at most `max` are kept; transferred ones are not', () => {
  const pool = new ArrayBufferPool(2);
  const a = pool.take(1000);
  assert.ok(a.byteLength >= 1000);
  pool.give(a);
  pool.give(a);
  assert.equal(pool.size, 1, 'kept once');
  assert.equal(pool.take(900), a, 'reused');
  assert.notEqual(pool.take(10 * a.byteLength), a);
  pool.give(a);
  pool.give(new ArrayBuffer(10));
  pool.give(new ArrayBuffer(20));
  assert.equal(pool.size, 2);
  const gone = new ArrayBuffer(100);
  structuredClone(gone, { transfer: [gone] });
  pool.clear();
  pool.give(gone);
  assert.equal(pool.size, 0, 'a detached buffer is not kept');
});
