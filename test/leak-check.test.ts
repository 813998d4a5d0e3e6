// The leak check `npm test` loads into every test file (test/testkit/leak-check.ts): a test that
// leaves a process running or a file in its temp dir must fail, naming it; a clean one passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DIST } from './testkit/sidecar-process.js';
import { alive } from './testkit/proc-alive.js';

const HOOK = pathToFileURL(join(DIST, 'test/testkit/leak-check.js')).href;

interface Run {
  code: number | null;
  out: string;
}

/** Runs `body` as a test file under `node --test --import <leak check>`. */
function runWithCheck(dir: string, name: string, body: string): Promise<Run> {
  const file = join(dir, `${name}.test.mjs`);
  writeFileSync(
    file,
    `import { test } from 'node:test';\nimport { spawn } from 'node:child_process';\nimport { mkdtempSync, writeFileSync } from 'node:fs';\nimport { tmpdir } from 'node:os';\nimport { join } from 'node:path';\n${body}\n`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, PIDS: join(dir, `${name}.pids`) };
  delete env.NODE_TEST_CONTEXT; // this file's own runner context: the inner run is a runner of its own
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--test', '--test-reporter=tap', '--import', HOOK, file],
      { env, cwd: dir, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
      },
    );
  });
}

/** Kills whatever pids a fixture wrote down (in case the check under test did not). */
function killRecorded(dir: string, name: string): void {
  const f = join(dir, `${name}.pids`);
  if (!existsSync(f)) return;
  for (const pid of readFileSync(f, 'utf8').split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

test('leak check: an orphan left by a failing `bash -e` fails its test, by name, and is killed', {
  timeout: 90_000,
  skip: !existsSync('/proc/self/stat') && 'needs /proc',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-leak-'));
  try {
    // What ops-newcomer's by-hand block used to do: background a process, then a command fails.
    const run = await runWithCheck(
      dir,
      'orphan',
      `test('leaves a sleeper behind', async () => {
  const p = spawn('bash', ['-e', '-c', 'sleep 300 & echo $! >> "$PIDS"; sleep 1; false'], { stdio: 'ignore' });
  await new Promise((r) => p.once('exit', r));
});
test('clean', () => {});`,
    );
    const pids = readFileSync(join(dir, 'orphan.pids'), 'utf8').trim();
    assert.notEqual(run.code, 0, run.out);
    assert.match(run.out, /not ok 1 - leaves a sleeper behind/);
    assert.match(run.out, new RegExp(`outlived it \\(now SIGKILLed\\): pid ${pids}: sleep 300`));
    assert.match(run.out, /^ok 2 - clean/m);
    for (let i = 0; i < 100 && alive(Number(pids)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(Number(pids)), false, 'the orphan was killed');
  } finally {
    killRecorded(dir, 'orphan');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leak check: a detached child (its own session) that outlives its test is caught too', {
  timeout: 90_000,
  skip: !existsSync('/proc/self/stat') && 'needs /proc',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-leak-'));
  try {
    const run = await runWithCheck(
      dir,
      'detached',
      `test('detached grandchild', async () => {
  // sh leads a new session, starts sleep in it and exits: sleep's parent becomes init.
  const p = spawn('/bin/sh', ['-c', 'sleep 300 & echo $! >> "$PIDS"; sleep 1'], { detached: true, stdio: 'ignore' });
  await new Promise((r) => p.once('exit', r));
});`,
    );
    assert.notEqual(run.code, 0, run.out);
    assert.match(run.out, /not ok 1 - detached grandchild/);
    assert.match(run.out, /outlived it \(now SIGKILLed\): pid \d+: sleep 300/);
  } finally {
    killRecorded(dir, 'detached');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leak check: a file that leaves a temp dir fails, naming it; one that cleans up passes', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-leak-'));
  try {
    const dirty = await runWithCheck(
      dir,
      'dirty',
      `test('makes a temp dir and forgets it', () => { mkdtempSync(join(tmpdir(), 'nostr-bt-test-')); });`,
    );
    assert.notEqual(dirty.code, 0, dirty.out);
    assert.match(dirty.out, /leak check \(dirty\): left in its temp dir: nostr-bt-test-\w{6}/);

    const clean = await runWithCheck(
      dir,
      'clean',
      `import { rmSync } from 'node:fs';
test('makes a temp dir, a child, and cleans up', async () => {
  const d = mkdtempSync(join(tmpdir(), 'nostr-bt-test-'));
  writeFileSync(join(d, 'x'), 'y');
  const p = spawn('sleep', ['300'], { stdio: 'ignore' });
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
  rmSync(d, { recursive: true });
});`,
    );
    assert.equal(clean.code, 0, clean.out);
    assert.doesNotMatch(clean.out, /leak check/);

    // node:test runs afterEach hooks before a test's own t.after hooks: a child stopped in
    // t.after, even after longer than the check's grace, was not left behind.
    const after = await runWithCheck(
      dir,
      'after',
      `test('stops its child in t.after, late', async (t) => {
  const p = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.after(async () => {
    await new Promise((r) => setTimeout(r, 6000));
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
  });
});`,
    );
    assert.equal(after.code, 0, after.out);
    assert.doesNotMatch(after.out, /leak check/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
