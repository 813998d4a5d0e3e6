// `npm run bench` still runs: the runner runs a quick benchmark and writes its results table.
// (Timings are never asserted here; the table's figures are whatever this machine measured.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST } from './support/sidecar-process.js';
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
    await run(process.execPath, [join(DIST, 'bench/run.js'), '--quick', '--only=ingest', `--results=${results}`], { timeout: 170_000, maxBuffer: 64 * 1024 * 1024 });
    const md = readFileSync(results, 'utf8');
    assert.match(md, /Node v\d+/);
    assert.match(md, /\| ingest \| .+ \| .+ \|/);
    assert.match(md, /\| ingest \| quick \| 0 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
