// Exiting while an lmdb write transaction is in flight: a plain process.exit never returns (node
// joins lmdb's write thread, which waits for the exiting thread); exitSafely lets the write settle
// first and exits with the code asked, the write committed; if writes never settle it ends the
// process with SIGKILL rather than hang. Real lmdb, real child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { DIST } from './testkit/sidecar-process.js';

const CHILD = join(DIST, 'test/testkit/exit-child.js');
const HUNG_AFTER_MS = 3000;

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child; null when it is still running after HUNG_AFTER_MS (then killed). */
async function runChild(mode: string, dir: string): Promise<Ended | null> {
  const child = spawn(process.execPath, [CHILD, mode, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const ended = new Promise<Ended>((r) => child.once('exit', (code, signal) => r({ code, signal, stderr })));
  const timer = setTimeout(() => child.kill('SIGKILL'), HUNG_AFTER_MS);
  const result = await ended;
  clearTimeout(timer);
  return result.signal === 'SIGKILL' && !/exiting with SIGKILL/.test(result.stderr) ? null : result;
}

function valuesIn(dir: string): Record<string, number | undefined> {
  const root = open({ path: dir, compression: false, readOnly: true });
  const db = root.openDB<number, string>({ name: 'x' });
  try {
    return { before: db.get('before'), during: db.get('during') };
  } finally {
    void root.close();
  }
}

test('process.exit from inside an lmdb write transaction hangs (the hazard exitSafely avoids)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-exit-'));
  try {
    const r = await runChild('plain', join(dir, 'db'));
    assert.equal(r, null, `expected a hang; if lmdb no longer hangs here, common/exit-safely.ts may be simplified (${JSON.stringify(r)})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exitSafely from inside an lmdb write transaction: exits with the code asked, the write committed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-exit-'));
  try {
    for (let i = 0; i < 5; i++) {
      const r = await runChild('safe', join(dir, `db${i}`));
      assert.ok(r, 'did not hang');
      assert.equal(r.code, 3, r.stderr);
      assert.deepEqual(valuesIn(join(dir, `db${i}`)), { before: 1, during: 2 });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exitSafely when the index writes never settle: SIGKILL after the grace period, said in the log; the index opens with the last commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-exit-'));
  try {
    const r = await runChild('stuck', join(dir, 'db'));
    assert.ok(r, 'did not hang');
    assert.equal(r.signal, 'SIGKILL');
    assert.match(r.stderr, /index writes still in flight after 300 ms.*exiting with SIGKILL/);
    assert.equal(valuesIn(join(dir, 'db')).before, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
