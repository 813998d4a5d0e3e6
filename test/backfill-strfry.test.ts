// The `strfry export` path of nostr-bt-backfill, through execa, with the stand-in strfry
// (test/testkit/strfry-standin.ts: a real executable honouring --config, export --since/--until,
// and told to fail when needed): full export, --since/--until, incremental runs from the
// checkpoint minus the margin, kill -9 and resume, strfry failing or missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore } from '../sidecar/index/checkpoints.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { runBackfill, spawnBackfill } from './testkit/backfill-cli.js';
import { withBackfillRig } from './testkit/backfill-rig.js';
import { exportLines } from './testkit/export-lines.js';
import { unsignedEvent, pubkeyN } from './testkit/events.js';
import { FIXTURES, sleep } from './testkit/sidecar-process.js';
import { makeStrfryDb, strfryStandin } from './testkit/strfry-db.js';

const FIXTURE_NOW = 1795464400;
const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-export.jsonl'), 'utf8').trim().split('\n');
const ev = (l: string) => JSON.parse(l) as NostrEvent;
const archivable = (lines: string[]) =>
  lines
    .map(ev)
    .filter((e) => !(e.kind >= 20000 && e.kind < 30000))
    .map((e) => e.id)
    .sort();

test('strfry export of the fixture: index = export minus policy exclusions; the stand-in saw the right argv', async () => {
  await withBackfillRig(
    async (rig) => {
      const db = makeStrfryDb(rig.ws.dir, fixtureLines());
      const r = await runBackfill(rig.configPath, ['--strfry', strfryStandin(), '--strfry-config', db.config]);
      assert.equal(r.code, 0, r.stderr);
      const s = r.summary!;
      assert.equal(s.trusted, true, 'strfry export is trusted by default');
      assert.deepEqual([s.read, s.new, s.complete], [13, 12, true]);
      assert.deepEqual(s.skipped, { ephemeral: 1 });
      assert.deepEqual(db.invocations(), [[`--config=${db.config}`, 'export']]);
      assert.deepEqual(rig.storedIds(), archivable(fixtureLines()));
      assert.deepEqual(await rig.bundleAll(), archivable(fixtureLines()));
      // The checkpoint covers everything up to the run's start.
      const cp = new CheckpointStore(rig.sc.store.root).get(`strfry:${db.config}`)!;
      assert.equal(cp.complete, true);
      assert.ok(Math.abs(cp.resumeCreatedAt! - Date.now() / 1000) < 120);
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('incremental: the next run asks strfry for --since=<checkpoint − margin> and picks up what is new', async () => {
  await withBackfillRig(
    async (rig) => {
      const db = makeStrfryDb(rig.ws.dir, fixtureLines());
      const strfry = strfryStandin();
      const first = await runBackfill(rig.configPath, ['--strfry', strfry, '--strfry-config', db.config]);
      const cp = first.summary!.checkpoint!.resumeCreatedAt!;
      // Stored after that run, with created_at a little in the past (an import, a sync).
      const late = [1, 2, 3].map((i) => unsignedEvent(pubkeyN(500 + i), { kind: 1, created_at: cp - 60 * i, content: `late ${i}` }));
      db.addEvents(late.map((e) => JSON.stringify(e)));
      const second = await runBackfill(rig.configPath, ['--strfry', strfry, '--strfry-config', db.config, '--margin', '600']);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(db.invocations()[1], [`--config=${db.config}`, 'export', `--since=${cp - 600}`]);
      assert.deepEqual([second.summary!.read, second.summary!.new], [3, 3], 'only the margin window was read again');
      assert.deepEqual(rig.storedIds(), [...archivable(fixtureLines()), ...late.map((e) => e.id)].sort());
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('--since/--until are passed to strfry (and enforced); the range has its own checkpoint', async () => {
  await withBackfillRig(
    async (rig) => {
      const lines = fixtureLines();
      const db = makeStrfryDb(rig.ws.dir, lines);
      const [since, until] = [1795464273, 1795464312];
      const r = await runBackfill(rig.configPath, [
        '--strfry',
        strfryStandin(),
        '--strfry-config',
        db.config,
        '--since',
        String(since),
        '--until',
        String(until),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(db.invocations(), [[`--config=${db.config}`, 'export', `--since=${since}`, `--until=${until}`]]);
      const inRange = lines.filter((l) => ev(l).created_at >= since && ev(l).created_at <= until);
      assert.ok(inRange.length > 2 && inRange.length < lines.length);
      assert.equal(r.summary!.read, inRange.length);
      assert.deepEqual(rig.storedIds(), archivable(inRange));
      assert.equal(r.summary!.checkpointKey, `strfry:${db.config}|since=${since}|until=${until}`);
      assert.equal(r.summary!.checkpoint!.resumeCreatedAt, until + 1);
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('strfry exiting non-zero: what it printed is archived, the error is reported, exit 1; the next run completes', async () => {
  await withBackfillRig(
    async (rig) => {
      const lines = fixtureLines();
      const db = makeStrfryDb(rig.ws.dir, lines);
      db.control({ failAfterLines: 5, exitCode: 4, stderr: 'Error: mdb_env_open failed: No such file or directory' });
      const r = await runBackfill(rig.configPath, ['--strfry', strfryStandin(), '--strfry-config', db.config]);
      assert.equal(r.code, 1);
      const s = r.summary!;
      assert.match(s.sourceError ?? '', /export exited with code 4: Error: mdb_env_open failed/);
      assert.equal(s.complete, false);
      assert.equal(s.read, 5);
      assert.deepEqual(rig.storedIds(), archivable(lines.slice(0, 5)));
      assert.equal(s.checkpoint!.resumeCreatedAt, ev(lines[4]!).created_at);
      assert.match(r.stderr, /the source failed/);

      db.control(null);
      const again = await runBackfill(rig.configPath, ['--strfry', strfryStandin(), '--strfry-config', db.config]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.summary!.complete, true);
      assert.deepEqual(rig.storedIds(), archivable(lines));
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

test('strfry missing or not executable: a clear error and exit 1', async () => {
  await withBackfillRig(async (rig) => {
    const db = makeStrfryDb(rig.ws.dir, fixtureLines());
    const missing = await runBackfill(rig.configPath, ['--strfry', join(rig.ws.dir, 'no-strfry'), '--strfry-config', db.config]);
    assert.equal(missing.code, 1);
    assert.match(missing.summary!.sourceError ?? '', /strfry not found: ".*no-strfry" does not exist/);
    const notExec = await runBackfill(rig.configPath, ['--strfry', db.config, '--strfry-config', db.config]);
    assert.equal(notExec.code, 1);
    assert.match(notExec.summary!.sourceError ?? '', /is not executable/);
    assert.deepEqual(rig.storedIds(), []);
  });
});

test('kill -9 during a strfry export, then resume: same final index, only the margin read again', { timeout: 180_000 }, async () => {
  const n = 20_000;
  const now = Math.floor(Date.now() / 1000);
  const [startSec, spanSec] = [now - 2_000_000, 1_900_000];
  const gen = [...exportLines({ n, authors: 2000, seed: 5, startSec, spanSec })];
  await withBackfillRig(async (rig) => {
    const db = makeStrfryDb(
      rig.ws.dir,
      gen.map((g) => g.line),
    );
    const strfry = strfryStandin();
    const key = `strfry:${db.config}`;
    const cps = new CheckpointStore(rig.sc.store.root);
    const child = spawnBackfill(rig.configPath, [
      '--strfry',
      strfry,
      '--strfry-config',
      db.config,
      '--max-unacked',
      '500',
      '--checkpoint-ms',
      '50',
    ]);
    const deadline = Date.now() + 60_000;
    // Kill once a fifth is delivered: well past the margin, far from the end.
    while ((cps.get(key)?.resumeCreatedAt ?? 0) < startSec + spanSec / 5 && Date.now() < deadline) await sleep(2);
    child.proc.kill('SIGKILL');
    await child.done;
    await rig.sc.ingestor.idle();
    const before = rig.sc.store.counts().indexed ?? 0;
    const cp = cps.get(key)!;
    assert.ok(before > 0 && before < n && !cp.complete, `killed mid-run (${before} of ${n})`);

    const r = await runBackfill(rig.configPath, ['--strfry', strfry, '--strfry-config', db.config, '--margin', '3600']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(db.invocations().at(-1), [`--config=${db.config}`, 'export', `--since=${cp.resumeCreatedAt! - 3600}`]);
    assert.ok(r.summary!.read < n, `resumed near the checkpoint (${r.summary!.read} lines read)`);
    assert.equal(r.summary!.new + before, n);
    assert.equal(r.summary!.new + r.summary!.duplicates, r.summary!.read);
    assert.deepEqual(rig.storedIds(), gen.map((g) => g.id).sort());
    assert.equal(rig.sc.store.counts().indexed, n);
  });
});
