// Reconciliation inside the sidecar: `strfry export` (the stand-in strfry, through execa) on start
// and on a schedule, so events the sidecar never got reach the index; incremental from the
// checkpoint minus the margin; strfry failing; stopping mid-run; shared checkpoint with the
// backfill command; off without a strfry path. Also the ingest socket's tally acknowledgements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { expirationOf } from '../sidecar/formats/event-kinds.js';
import { CheckpointStore } from '../sidecar/index/checkpoints.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { runBackfill } from './testkit/backfill-cli.js';
import { withBackfillRig, type BackfillRig } from './testkit/backfill-rig.js';
import { exportLines } from './testkit/export-lines.js';
import { unsignedEvent, pubkeyN, pluginLine } from './testkit/events.js';
import { CLI_BIN, FIXTURES, makeWorkspace, sleep } from './testkit/sidecar-process.js';
import { makeStrfryDb, strfryStandin, type StrfryDb } from './testkit/strfry-db.js';

const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-export.jsonl'), 'utf8').trim().split('\n');
const nowSec = () => Math.floor(Date.now() / 1000);
/** What the policy keeps at the current time: no ephemeral kinds, nothing already expired. */
const archivable = (lines: string[]) =>
  lines
    .map((l) => JSON.parse(l) as NostrEvent)
    .filter((e) => !(e.kind >= 20000 && e.kind < 30000) && !((expirationOf(e) ?? Infinity) <= nowSec()))
    .map((e) => e.id)
    .sort();

async function until(what: string, pred: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

/** A sidecar whose config points reconciliation at a stand-in strfry database under its workspace. */
async function withReconcilingSidecar(
  lines: string[],
  fn: (rig: BackfillRig, db: StrfryDb) => Promise<void>,
  reconcile: Record<string, unknown> = {},
  statusHttp = false,
): Promise<void> {
  // The database must exist before the sidecar starts (its first run is at start).
  const holder = makeWorkspace();
  const db = makeStrfryDb(holder.dir, lines);
  try {
    await withBackfillRig((rig) => fn(rig, db), {
      config: { reconcile: { strfry: strfryStandin(), strfryConfig: db.config, intervalSeconds: 1, marginSeconds: 600, ...reconcile } },
      statusHttp,
    });
  } finally {
    holder.cleanup();
  }
}

test('reconciliation picks up events the sidecar never got, on start and then on schedule', { timeout: 60_000 }, async () => {
  const gen = [...exportLines({ n: 1000, authors: 100, seed: 3, startSec: nowSec() - 86_400, spanSec: 80_000 })];
  const history = [...fixtureLines(), ...gen.map((g) => g.line)];
  await withReconcilingSidecar(history, async (rig, db) => {
    const sc = rig.sc;
    // Some of it also arrives live, as through the plugin.
    const sink = { source: 'plugin', trusted: true, committed: () => {} };
    for (const g of gen.slice(0, 100)) sc.ingestor.submit(pluginLine(JSON.parse(g.line) as NostrEvent), sink);
    const expected = archivable(history);
    await until('the first reconciliation', () => rig.storedIds().length === expected.length && (sc.reconciler?.runs ?? 0) >= 1);
    assert.deepEqual(rig.storedIds(), expected);
    assert.equal(sc.store.counts().indexed, expected.length, 'nothing indexed twice');
    assert.deepEqual(db.invocations()[0], [`--config=${db.config}`, 'export']);
    const st = sc.status().reconcile!;
    assert.equal(st.last!.complete, true);
    assert.equal(st.last!.sourceError, null);

    // Events strfry stores later (an import, a router outage) that never reach the plugin.
    const checkpoint = sc.reconciler!.last!.checkpoint!.resumeCreatedAt!;
    const late = [1, 2, 3, 4, 5].map((i) =>
      unsignedEvent(pubkeyN(800 + i), { kind: 1, created_at: nowSec() - 30 * i, content: `imported ${i}` }),
    );
    db.addEvents(late.map((e) => JSON.stringify(e)));
    await until('the scheduled run', () => late.every((e) => sc.store.hasEvent(e.id)) && (sc.reconciler?.runs ?? 0) >= 2);
    const later = db.invocations().slice(1);
    assert.ok(later.length >= 1);
    assert.match(later[0]![2] ?? '', /^--since=\d+$/);
    assert.ok(Number(later[0]![2]!.slice(8)) >= checkpoint - 600, `incremental: ${later[0]![2]} (checkpoint ${checkpoint}, margin 600)`);
    assert.deepEqual(rig.storedIds(), [...expected, ...late.map((e) => e.id)].sort());
  });
});

test('strfry failing: counted and logged, the sidecar keeps going, the next run recovers', { timeout: 60_000 }, async () => {
  const lines = fixtureLines();
  await withReconcilingSidecar(
    lines,
    async (rig, db) => {
      const sc = rig.sc;
      await until('first run', () => (sc.reconciler?.runs ?? 0) >= 1);
      db.control({ failAfterLines: 0, exitCode: 2, stderr: 'cannot open database' });
      const late = unsignedEvent(pubkeyN(901), { kind: 1, created_at: nowSec() - 5, content: 'after the failure' });
      db.addEvents([JSON.stringify(late)]);
      await until('a failed run', () => (sc.status().reconcile?.failures ?? 0) >= 1);
      assert.match(sc.status().reconcile!.last!.sourceError ?? '', /exited with code 2: cannot open database/);
      assert.equal(sc.store.hasEvent(late.id), false);
      // Async: the sidecar answering /status runs in this process.
      const { stdout: table } = await promisify(execFile)(process.execPath, [CLI_BIN, '--config', rig.configPath, 'status', '--table'], {
        encoding: 'utf8',
      });
      assert.match(table, /^reconcile last run +FAILED: .*exited with code 2: cannot open database/m);
      db.control(null);
      await until('recovery', () => sc.store.hasEvent(late.id));
      assert.deepEqual(rig.storedIds(), [...archivable(lines), late.id].sort());
    },
    {},
    true,
  );
});

test('stopped in the middle of a run: strfry is stopped; after a restart reconciliation resumes from the checkpoint, and so does the command', {
  timeout: 60_000,
}, async () => {
  const n = 400;
  const gen = [...exportLines({ n, authors: 50, seed: 9, startSec: nowSec() - 10_000, spanSec: 9000 })];
  const holder = makeWorkspace();
  const db = makeStrfryDb(
    holder.dir,
    gen.map((g) => g.line),
  );
  const ws = makeWorkspace({
    log: { level: 'warn' },
    reconcile: { strfry: strfryStandin(), strfryConfig: db.config, intervalSeconds: 3600, marginSeconds: 60 },
  });
  const key = `strfry:${db.config}`;
  try {
    let before = 0;
    let checkpoint = 0;
    db.control({ lineDelayMs: 20 });
    await withBackfillRig(
      async (rig) => {
        await until('some lines', () => (rig.sc.store.counts().indexed ?? 0) >= 100);
        await rig.sc.reconciler!.stop(); // what Sidecar.stop does first
        assert.equal(rig.sc.status().reconcile!.running, false);
        assert.equal(rig.sc.reconciler!.last!.interrupted, true);
        const cp = new CheckpointStore(rig.sc.store.root).get(key)!;
        assert.ok(cp.resumeCreatedAt !== undefined && !cp.complete, 'a partial checkpoint');
        checkpoint = cp.resumeCreatedAt!;
        await rig.sc.ingestor.idle();
        before = rig.sc.store.counts().indexed ?? 0;
        assert.ok(before < n, `interrupted mid-run (${before} of ${n})`);
      },
      { ws },
    );
    db.control(null);
    // Restart: the first run continues from the checkpoint minus the margin.
    await withBackfillRig(
      async (rig) => {
        await until('the resumed run', () => (rig.sc.reconciler?.runs ?? 0) >= 1);
        assert.deepEqual(db.invocations()[1], [`--config=${db.config}`, 'export', `--since=${checkpoint - 60}`]);
        const last = rig.sc.reconciler!.last!;
        assert.equal(last.complete, true);
        assert.ok(last.read < n, `read ${last.read} of ${n} again`);
        assert.deepEqual(rig.storedIds(), gen.map((g) => g.id).sort());
        assert.equal(rig.sc.store.counts().indexed, n, 'nothing indexed twice');
        // The command, given no source, uses reconcile.strfry and the same checkpoint.
        const r = await runBackfill(rig.configPath, []);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.summary!.resumed ?? '', /^since created_at \d+/);
        assert.equal(r.summary!.new, 0);
      },
      { ws },
    );
  } finally {
    ws.cleanup();
    holder.cleanup();
  }
});

test('reconciliation is off without reconcile.strfry', async () => {
  await withBackfillRig(async (rig) => {
    assert.equal(rig.sc.reconciler, null);
    assert.equal(rig.sc.status().reconcile, undefined);
  });
});

test('ingest socket: a hello with "tally" gets JSON acks with outcomes, plain clients decimal acks; checkpoints through the socket', async () => {
  await withBackfillRig(async (rig) => {
    const e1 = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1_700_000_000, content: 'one' });
    const e2 = unsignedEvent(pubkeyN(2), { kind: 20001, created_at: 1_700_000_001, content: 'ephemeral' });
    const talk = async (lines: string[], need: (acks: string[]) => boolean) => {
      const sock = createConnection(rig.sc.config.socket.path);
      const acks: string[] = [];
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          acks.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
      sock.write(lines.map((l) => l + '\n').join(''));
      await until('acks', () => need(acks), 10_000);
      sock.destroy();
      return acks;
    };
    const tallied = await talk(
      ['{"hello":"test","trusted":true,"tally":true}', JSON.stringify(e1), JSON.stringify(e1), JSON.stringify(e2), 'garbage'],
      (a) => a.length > 0 && (JSON.parse(a.at(-1)!) as { acked: number }).acked === 5,
    );
    assert.deepEqual(JSON.parse(tallied.at(-1)!), {
      acked: 5,
      tally: { indexed: 1, duplicate: 1, 'skipped.ephemeral': 1, 'invalid.malformed': 1 },
    });
    const plain = await talk([pluginLine(e1), pluginLine(e2)], (a) => a.at(-1) === '2');
    assert.ok(plain.every((a) => /^\d+$/.test(a)));

    // Checkpoints: the hello is answered with the stored value; checkpoint lines save one.
    const cp = { source: 'x.jsonl', complete: false, lines: 1, updatedAt: 1, offset: 10, head: 'ab', headBytes: 10 };
    const hello = '{"hello":"test","tally":true,"checkpoint":"file:/x.jsonl"}';
    const first = await talk(
      [hello, JSON.stringify(e1), JSON.stringify({ checkpoint: cp })],
      (a) => a.length > 0 && a.at(-1)!.includes('"acked":3'),
    );
    assert.equal(first[0], '{"checkpoint":null}');
    assert.deepEqual(JSON.parse(first.at(-1)!).tally, { duplicate: 1 }, 'the checkpoint line is no event');
    const second = await talk([hello, '{"checkpoint":{"bogus":1}}'], (a) => a.length > 0 && a.at(-1)!.includes('"acked":2'));
    assert.deepEqual(JSON.parse(second[0]!), { checkpoint: cp });
    const third = await talk([hello, '{"checkpoint":null}'], (a) => a.at(-1)?.includes('"acked":2') === true);
    assert.deepEqual(JSON.parse(third[0]!), { checkpoint: cp }, 'a malformed value was ignored');
    const fourth = await talk([hello], (a) => a.length > 0);
    assert.equal(fourth[0], '{"checkpoint":null}', 'null forgets it');
  });
});
