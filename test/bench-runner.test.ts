// `npm run bench` still runs: the runner runs a quick benchmark and writes its results table.
// (Timings are never asserted here; the table's figures are whatever this machine measured.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST } from './testkit/sidecar-process.js';
import { meetsGoal } from '../bench/run.js';

const run = promisify(execFile);

test('goals of the form ≥ N, <= N, == N and ≥ 0.8× are checked against the value or the ratio', () => {
  const f = (value: number, goal: string, ratio: number | null = null) => ({ name: 'x', value, unit: 'u', baseline: null, ratio, goal });
  assert.equal(meetsGoal(f(25_000, '>= 20,000 events/s')), true);
  assert.equal(meetsGoal(f(19_999, '≥ 20000 events/s')), false);
  assert.equal(meetsGoal(f(900, '<= 1000 µs')), true);
  assert.equal(meetsGoal(f(5, '== 5')), true);
  assert.equal(meetsGoal(f(100, '>= 0.8x bare plugin', 0.79)), false);
  assert.equal(meetsGoal(f(100, '≥ 0.5×', 1.2)), true);
  assert.equal(meetsGoal(f(1, 'within the bound')), null);
});

test('the runner runs a quick benchmark and writes RESULTS.md with its figures and the machine', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-bench-run-'));
  try {
    const results = join(dir, 'RESULTS.md');
    await run(process.execPath, [join(DIST, 'bench/run.js'), '--quick', '--only=ingest', `--results=${results}`], {
      timeout: 170_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const md = readFileSync(results, 'utf8');
    assert.match(md, /Node v\d+/);
    assert.match(md, /\| ingest \| .+ \| .+ \|/);
    assert.match(md, /\| ingest \| quick \| 0 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('benchmark readers in a worker pool each read on their own (relay readers over 2 threads)', { timeout: 60_000 }, async () => {
  const { startTestRelay } = await import('./testkit/nostr-relay.js');
  const { signer } = await import('./testkit/events.js');
  const { ReaderPool, notes } = await import('../bench/reader-support.js');
  const relay = await startTestRelay();
  const pool = new ReaderPool(2);
  try {
    const author = await signer();
    const events = notes(author, 120, 200);
    await relay.preload(events);
    const readers = Array.from({ length: 5 }, () => pool.start({ mode: 'relay', url: relay.url, author: author.pubkey }));
    const results = await Promise.all(readers.map((r) => r.result));
    for (const r of results) {
      assert.equal(r.ok, true);
      assert.equal(r.events, events.length);
    }
    // Each reader fetched the events itself: the relay sent them five times.
    assert.ok(relay.sentBytes() >= 5 * results[0]!.downloaded);
    assert.deepEqual(await Promise.all(readers.map((r) => r.release())), [0, 0, 0, 0, 0]);
    // A reader that fails reports its error without taking the pool down.
    const bad = pool.start({ mode: 'relay', url: 'ws://127.0.0.1:1', author: author.pubkey });
    const badResult = await bad.result.then(
      (r) => r,
      (err: Error) => ({ ok: false, error: err.message }),
    );
    assert.equal(badResult.ok, false);
    const again = await pool.start({ mode: 'relay', url: relay.url, author: author.pubkey }).result;
    assert.equal(again.events, events.length);
  } finally {
    await pool.close();
    await relay.stop();
  }
});

test('the relay benchmark runs end to end: strfry stand-in, bare and nostr-bt plugins, paced latency; every event archived', {
  timeout: 240_000,
}, async () => {
  const { stdout } = await run(process.execPath, [join(DIST, 'bench/relay-bench.js'), '--quick', '--n=300', '--only=bare,up,down,paced'], {
    timeout: 230_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, RELAY_BENCH_PACED_SECONDS: '1', RELAY_BENCH_RATE: '500' },
  });
  const line = stdout.split('\n').find((l) => l.startsWith('{"bench":"relay"'));
  assert.ok(line, stdout.slice(-3000));
  const figures = (JSON.parse(line) as { figures: { name: string; value: number; baseline: number | null }[] }).figures;
  const get = (prefix: string) => figures.find((f) => f.name.startsWith(prefix));
  for (const name of ['up: events indexed', 'down: lines in the spool', 'paced 500/s: events indexed']) {
    const f = get(name);
    assert.ok(f, `${name} missing: ${line}`);
    assert.equal(f.value, f.baseline, `${name}: ${f.value} of ${f.baseline}`);
  }
  for (const name of [
    'bare: events/s',
    'up: events/s',
    'up / bare events/s',
    'paced 500/s: sidecar CPU per event',
    'paced 500/s: accept → indexed p99',
  ]) {
    assert.ok(Number.isFinite(get(name)?.value), `${name}: ${line}`);
  }
});
