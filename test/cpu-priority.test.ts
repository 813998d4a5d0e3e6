// service.nice: the sidecar lowers its CPU priority on every thread, and threads started later
// inherit it (run in a child process, so the test runner keeps its own priority).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { DIST } from './testkit/sidecar-process.js';

const run = promisify(execFile);

/** Field 19 of /proc/<pid>/task/<tid>/stat is the nice value. */
const CHILD = `
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { applyNice } from ${JSON.stringify(join(DIST, 'sidecar/ops/cpu-priority.js'))};
const niceOf = () => readdirSync('/proc/self/task').map((t) => {
  const s = readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]);
});
const before = niceOf();
const first = applyNice(Number(process.argv[1]));
const again = applyNice(Number(process.argv[1]) - 1);
const w = new Worker('setTimeout(() => {}, 300)', { eval: true });
await new Promise((r) => w.once('online', r));
const after = niceOf();
await new Promise((r) => w.once('exit', r));
process.stdout.write(JSON.stringify({ before, first, again, after }));
`;

test('applyNice raises the nice value of every thread, new threads inherit it, a lower value is never asked for', {
  timeout: 30_000,
}, async () => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD, '7'], { timeout: 25_000 });
  const r = JSON.parse(stdout) as {
    before: number[];
    first: { nice: number; threads: number; error: string | null };
    again: { nice: number; threads: number; error: string | null };
    after: number[];
  };
  assert.ok(r.before.length > 1 && r.before.every((n) => n < 7), `started below 7: ${r.before}`);
  assert.equal(r.first.error, null);
  assert.equal(r.first.nice, 7);
  assert.equal(r.first.threads, r.before.length, 'every thread there at the time');
  assert.deepEqual(r.again, { nice: 7, threads: 0, error: null }, 'a lower value is left alone (it would need privilege)');
  assert.ok(r.after.length > r.before.length, 'the worker added threads');
  assert.ok(
    r.after.every((n) => n === 7),
    `every thread at 7: ${r.after}`,
  );
});
