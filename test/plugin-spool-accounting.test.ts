// The plugin's exit summary tells the truth about its spool: a line counts as "spooled" only once
// it is written to a spool file; every other line it could not keep counts as dropped (what
// reconciliation has to recover). The sidecar is down throughout, so every line goes to the spool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLUGIN_BIN, FIXTURES } from './testkit/sidecar-process.js';
import { pluginEnv, runPlugin, exitSummary, spoolLines } from './testkit/plugin-run.js';
import { mountSmallDisk, unmountSmallDisk } from './testkit/small-disk.js';
import { unsignedEvent, pluginLine, pubkeyN, contentOf } from './testkit/events.js';

function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-spool-count-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function config(dir: string, spoolDir: string, extra = ''): string {
  const path = join(dir, 'config.toml');
  writeFileSync(path, `dataDir = "${dir}/data"\n[spool]\ndir = "${spoolDir}"\nmaxBytes = 100000000\n${extra}`);
  return path;
}

test('an unwritable spool: lines lost at exit count as dropped, never as spooled', { timeout: 120_000 }, async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'a-file'), '');
    // Under a regular file: mkdir fails (ENOTDIR) for root too.
    const configPath = config(t.dir, join(t.dir, 'a-file', 'spool'));
    const lines = readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8').trim().split('\n').slice(0, 3);
    // A relay that sends three events and stops at once: stdin closes before the spool's first write.
    for (let round = 0; round < 3; round++) {
      const r = await runPlugin(PLUGIN_BIN, {
        cwd: t.dir,
        env: pluginEnv({ NOSTR_BT_CONFIG: configPath }),
        input: lines.join('\n') + '\n',
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split('\n').length, 3, 'all three answered');
      const s = exitSummary(r.stderr);
      assert.equal(s.answered, 3);
      assert.equal(s.spooled, 0, `nothing reached the disk, so nothing is spooled: ${JSON.stringify(s)}`);
      assert.equal(s.dropped, 3, 'all three dropped (reconciliation recovers them)');
      assert.ok(s.spoolWriteErrors >= 1);
      assert.match(r.stderr, /"msg":"plugin stopping; lines dropped/, 'the summary is a warning');
    }
  } finally {
    t.cleanup();
  }
});

test('a writable spool: the summary counts exactly the lines in the spool files', { timeout: 120_000 }, async () => {
  const t = tempDir();
  try {
    const spoolDir = join(t.dir, 'spool');
    const configPath = config(t.dir, spoolDir);
    const lines = Array.from({ length: 2000 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(i % 7), { kind: 1, created_at: 1_700_000_000 + i, content: contentOf(200, i) })),
    );
    const r = await runPlugin(PLUGIN_BIN, { cwd: t.dir, env: pluginEnv({ NOSTR_BT_CONFIG: configPath }), input: lines.join('\n') + '\n' });
    assert.equal(r.code, 0, r.stderr);
    const s = exitSummary(r.stderr);
    assert.equal(s.spooled, lines.length, JSON.stringify(s));
    assert.equal(s.dropped, 0);
    assert.deepEqual(spoolLines(spoolDir), lines);
    assert.ok(
      readdirSync(spoolDir).every((f) => f.endsWith('.ready')),
      'every file closed for the sidecar',
    );
  } finally {
    t.cleanup();
  }
});

test('a spool disk that fills up mid-write: spooled = the whole lines on disk, the rest dropped, no line continued by another', {
  timeout: 120_000,
}, async (ctx) => {
  const t = tempDir();
  const mnt = mountSmallDisk(t.dir, 1);
  if (mnt === null) {
    t.cleanup();
    ctx.skip('cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)');
    return;
  }
  try {
    const spoolDir = join(mnt, 'spool');
    const configPath = config(t.dir, spoolDir);
    // ~3.6 MB of lines for a 1 MB disk: writes fail part-way through a batch.
    const lines = Array.from({ length: 6000 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(i % 11), { kind: 1, created_at: 1_700_000_000 + i, content: contentOf(400, i) })),
    );
    const r = await runPlugin(PLUGIN_BIN, { cwd: t.dir, env: pluginEnv({ NOSTR_BT_CONFIG: configPath }), input: lines.join('\n') + '\n' });
    assert.equal(r.code, 0, r.stderr);
    const s = exitSummary(r.stderr);
    assert.equal(s.answered, lines.length);
    assert.ok(s.spooled > 0 && s.dropped > 0, `the disk took some and refused the rest: ${JSON.stringify(s)}`);
    assert.equal(s.spooled + s.dropped, lines.length, 'every line counted once');
    // A whole line is one that ends in a newline; a line cut by the full disk is not one.
    const files = readdirSync(spoolDir).map((f) => readFileSync(join(spoolDir, f), 'utf8'));
    const whole = files.flatMap((text) => text.split('\n').slice(0, -1));
    assert.equal(s.spooled, whole.length, 'spooled counts exactly the whole lines on disk');
    const sent = new Set(lines);
    assert.ok(
      whole.every((l) => sent.has(l)),
      'no line on disk is two lines run together',
    );
  } finally {
    unmountSmallDisk(mnt);
    t.cleanup();
  }
});
