// nostr-bt-backfill end to end: the real command (child process) into a real sidecar (LMDB index,
// ingest socket, bundler): fixture export, a generated history with bad input mixed in, re-runs,
// interruption (SIGINT, kill -9) and resume, dry run, stdin, and live plugin traffic meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { CheckpointStore } from '../sidecar/index/checkpoints.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { BACKFILL_BIN, runBackfill, spawnBackfill } from './testkit/backfill-cli.js';
import { withBackfillRig, type BackfillRig } from './testkit/backfill-rig.js';
import { exportLines } from './testkit/export-lines.js';
import { pluginLine, pubkeyN, signer, unsignedEvent, contentOf } from './testkit/events.js';
import { FIXTURES, PLUGIN_BIN, SidecarProcess, makeWorkspace, sleep } from './testkit/sidecar-process.js';
import { StrfryHarness } from './testkit/strfry-harness.js';

const FIXTURE_NOW = 1795464400; // after the fixture run, before its NIP-40 expiration
// The issue asks for 200k; the suite uses 20k to stay fast (the 200k and 1M runs are in
// bench/backfill-bench.ts). NOSTR_BT_BACKFILL_TEST_N=200000 runs these tests at full size.
const N = Number(process.env.NOSTR_BT_BACKFILL_TEST_N ?? 20_000);
const generated = (n: number, seed = 7) => [...exportLines({ n, authors: 2000, seed, startSec: 1_700_000_000, spanSec: 1_000_000 })];

test('fixture export: index and bundles are the export minus policy exclusions; re-runs add nothing', async () => {
  await withBackfillRig(
    async (rig) => {
      const file = join(FIXTURES, 'strfry-export.jsonl');
      const events = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as NostrEvent);
      const expected = events
        .filter((e) => !(e.kind >= 20000 && e.kind < 30000))
        .map((e) => e.id)
        .sort();

      // A file is untrusted by default: the fixture's real signatures are checked.
      const r1 = await runBackfill(rig.configPath, ['--file', file]);
      assert.equal(r1.code, 0, r1.stderr);
      const s1 = r1.summary!;
      assert.equal(s1.trusted, false);
      assert.deepEqual([s1.read, s1.new, s1.duplicates, s1.complete], [events.length, expected.length, 0, true]);
      assert.deepEqual(s1.skipped, { ephemeral: 1 });
      assert.deepEqual(s1.invalid, {});
      assert.deepEqual(rig.storedIds(), expected);
      assert.deepEqual(await rig.bundleAll(), expected);
      // Stored bytes are the export's bytes (docs/protocol.md §4).
      for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
        const rec = rig.sc.store.getEvent((JSON.parse(line) as NostrEvent).id);
        if (rec) assert.equal(rec.j, line);
      }

      // Again: the checkpoint says the file is done.
      const r2 = await runBackfill(rig.configPath, ['--file', file]);
      assert.equal(r2.code, 0);
      assert.match(r2.summary!.resumed ?? '', /^from byte \d+/);
      assert.deepEqual([r2.summary!.read, r2.summary!.sent, r2.summary!.new], [0, 0, 0]);

      // From scratch: everything is a duplicate, nothing changes.
      const indexed = rig.sc.store.counts().indexed;
      const r3 = await runBackfill(rig.configPath, ['--file', file, '--restart']);
      assert.equal(r3.code, 0);
      assert.deepEqual([r3.summary!.read, r3.summary!.new, r3.summary!.duplicates], [events.length, 0, expected.length]);
      assert.equal(rig.sc.store.counts().indexed, indexed);
      assert.deepEqual(rig.storedIds(), expected);
      assert.deepEqual(await rig.bundleAll(), expected);
    },
    { nowSec: () => FIXTURE_NOW },
  );
});

/** N valid events with bad input and policy exclusions mixed in; what the summary must say. */
function mixedHistory(n: number) {
  const valid = generated(n);
  const lines: string[] = [];
  const extraValid: string[] = [];
  const at = (i: number) => (i * 7919) % n; // spread the oddities through the file
  const odd: [number, string][] = [];
  const ev = (k: number, t: { kind: number; tags?: string[][]; content?: string }) =>
    unsignedEvent(pubkeyN(90_000 + k), { created_at: 1_700_500_000 + k, ...t });
  for (let k = 0; k < 5; k++) odd.push([at(k), JSON.stringify(ev(k, { kind: 20001, content: 'ephemeral' }))]);
  for (let k = 5; k < 8; k++) odd.push([at(k), JSON.stringify(ev(k, { kind: 1, tags: [['-']], content: 'protected' }))]);
  for (let k = 8; k < 10; k++) odd.push([at(k), JSON.stringify(ev(k, { kind: 1, content: contentOf(6000, k) }))]);
  for (let k = 10; k < 12; k++) odd.push([at(k), `{"content":"${'z'.repeat(40_000)}"}`]);
  odd.push([at(12), 'hello, not json'], [at(13), '{"kind":1'], [at(14), '[1,2,3]'], [at(15), '{"id":"zz"}']);
  for (let k = 16; k < 19; k++) {
    const e = ev(k, { kind: 1, content: 'original' });
    odd.push([at(k), JSON.stringify({ ...e, content: 'tampered' })]);
  }
  for (let k = 19; k < 22; k++) odd.push([at(k), '']);
  for (let k = 22; k < 24; k++) odd.push([at(k) + 1, valid[k]!.line]); // exact repeats, after the original
  for (let k = 24; k < 26; k++) {
    const e = ev(k, { kind: 1, content: `wrapped ${k}` });
    extraValid.push(e.id);
    odd.push([at(k), pluginLine(e)]);
  }
  odd.sort((a, b) => a[0] - b[0]);
  let j = 0;
  for (let i = 0; i < n; i++) {
    while (j < odd.length && odd[j]![0] === i) lines.push(odd[j++]![1]);
    lines.push(valid[i]!.line);
  }
  while (j < odd.length) lines.push(odd[j++]![1]);
  return {
    lines,
    expectedIds: [...valid.map((v) => v.id), ...extraValid].sort(),
    expect: {
      read: lines.length,
      new: n + 2,
      duplicates: 2,
      skipped: { ephemeral: 5, protected: 3, 'too-large': 2 },
      invalid: { 'line-too-long': 2, malformed: 3, 'bad-field': 1, 'bad-id': 3 },
      empty: 3,
    },
  };
}

const MIXED_CONFIG = { ingest: { maxEventBytes: 4096, maxLineBytes: 16_384 } };

test(`generated history (${N} events + bad input): summary, index and bundles match; re-run adds nothing`, {
  timeout: 300_000,
}, async () => {
  const h = mixedHistory(N);
  await withBackfillRig(
    async (rig) => {
      const file = rig.writeFile('history.jsonl', h.lines);
      const r = await runBackfill(rig.configPath, ['--file', file, '--trusted']);
      assert.equal(r.code, 0, r.stderr);
      const s = r.summary!;
      assert.deepEqual(
        { read: s.read, new: s.new, duplicates: s.duplicates, skipped: s.skipped, invalid: s.invalid, empty: s.empty },
        h.expect,
      );
      assert.equal(s.complete, true);
      assert.deepEqual(s.oversizedLines.length, 2);
      assert.match(r.stderr, /line longer than ingest.maxLineBytes skipped/);
      assert.deepEqual(rig.storedIds(), h.expectedIds);
      assert.deepEqual(await rig.bundleAll(), h.expectedIds);
      // The sidecar's own counters agree (the oversized lines were never sent).
      const c = rig.sc.store.counts();
      assert.equal(c.indexed, N + 2);
      assert.equal(c['invalid.bad-id'], 3);

      const again = await runBackfill(rig.configPath, ['--file', file, '--trusted', '--restart']);
      assert.equal(again.code, 0);
      assert.equal(again.summary!.new, 0);
      assert.equal(again.summary!.duplicates, N + 4);
      assert.equal(rig.sc.store.counts().indexed, N + 2);
      assert.deepEqual(rig.storedIds(), h.expectedIds);
      assert.deepEqual(await rig.bundleAll(), h.expectedIds);
    },
    { config: MIXED_CONFIG },
  );
});

/** Runs the backfill of `file` to completion; returns the final index and bundle contents. */
async function finalState(rig: BackfillRig): Promise<{ stored: string[]; bundled: string[]; indexed: number }> {
  const bundled = await rig.bundleAll();
  return { stored: rig.storedIds(), bundled, indexed: rig.sc.store.counts().indexed ?? 0 };
}

async function waitReceived(rig: BackfillRig, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((rig.sc.store.counts().received ?? 0) < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} lines received in ${timeoutMs} ms`);
    await sleep(5);
  }
}

test(`kill -9 in the middle, then resume: same final state as an uninterrupted run (${N} events)`, { timeout: 300_000 }, async () => {
  const lines = generated(N, 21).map((g) => g.line);
  let reference: Awaited<ReturnType<typeof finalState>> | null = null;
  await withBackfillRig(async (rig) => {
    const r = await runBackfill(rig.configPath, ['--file', rig.writeFile('h.jsonl', lines), '--trusted']);
    assert.equal(r.code, 0, r.stderr);
    reference = await finalState(rig);
  });
  await withBackfillRig(async (rig) => {
    const file = rig.writeFile('h.jsonl', lines);
    // Few lines in flight and frequent checkpoints; the kill lands once a partial checkpoint exists.
    const child = spawnBackfill(rig.configPath, ['--file', file, '--trusted', '--max-unacked', '500', '--checkpoint-ms', '50']);
    const cps = new CheckpointStore(rig.sc.store.root);
    const deadline = Date.now() + 60_000;
    while (!((cps.get(`file:${file}`)?.offset ?? 0) > 0) && Date.now() < deadline) await sleep(2);
    child.proc.kill('SIGKILL');
    const killed = await child.done;
    assert.equal(killed.signal, 'SIGKILL');
    await rig.sc.ingestor.idle();
    const before = rig.sc.store.counts().indexed ?? 0;
    assert.ok(before > 0 && before < N, `killed mid-run (${before} of ${N} indexed)`);
    const cp = cps.get(`file:${file}`);
    assert.ok(cp && cp.offset! > 0 && !cp.complete, 'a partial checkpoint was saved');

    const r = await runBackfill(rig.configPath, ['--file', file, '--trusted']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.summary!.resumed ?? '', /^from byte /);
    assert.ok(r.summary!.read < N, `resumed without re-reading everything (${r.summary!.read} lines read)`);
    // What the checkpoint did not cover (at most the last second of work) comes back as duplicates.
    assert.equal(r.summary!.new + before, N);
    const state = await finalState(rig);
    assert.deepEqual(state, reference);
  });
});

test('Ctrl-C (SIGINT): lines in flight are acknowledged, the checkpoint saved, exit 130; the next run finishes', {
  timeout: 120_000,
}, async () => {
  const lines = generated(N, 33).map((g) => g.line);
  await withBackfillRig(async (rig) => {
    const file = rig.writeFile('h.jsonl', lines);
    const child = spawnBackfill(rig.configPath, ['--file', file, '--trusted', '--max-unacked', '500']);
    await waitReceived(rig, Math.floor(N / 4));
    child.proc.kill('SIGINT');
    const r = await child.done;
    assert.equal(r.code, 130, r.stderr);
    const s = r.summary!;
    assert.equal(s.interrupted, true);
    assert.equal(s.complete, false);
    assert.equal(s.acked, s.sent, 'everything sent was acknowledged before exiting');
    assert.ok(s.checkpoint!.offset! > 0);
    await rig.sc.ingestor.idle();
    assert.equal(rig.sc.store.counts().indexed, s.new);

    const r2 = await runBackfill(rig.configPath, ['--file', file, '--trusted']);
    assert.equal(r2.code, 0);
    assert.equal(r2.summary!.duplicates, 0, 'the resume point is exact for files');
    assert.equal(s.new + r2.summary!.new, N);
    assert.equal(rig.storedIds().length, N);
  });
});

test('--dry-run counts what would be archived and writes nothing', async () => {
  const h = mixedHistory(500);
  await withBackfillRig(
    async (rig) => {
      const file = rig.writeFile('h.jsonl', h.lines);
      const dry = await runBackfill(rig.configPath, ['--file', file, '--trusted', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      const d = dry.summary!;
      assert.equal(d.dryRun, true);
      // Repeats inside the file are not seen by a dry run (it compares with the index only).
      assert.deepEqual(
        { read: d.read, new: d.new, duplicates: d.duplicates, skipped: d.skipped, invalid: d.invalid, empty: d.empty },
        { ...h.expect, new: h.expect.new + h.expect.duplicates, duplicates: 0 },
      );
      assert.equal(d.checkpoint, null);
      assert.deepEqual(rig.storedIds(), []);
      assert.deepEqual(rig.sc.store.counts(), {});

      const real = await runBackfill(rig.configPath, ['--file', file, '--trusted']);
      assert.equal(real.summary!.new, h.expect.new);
      const dry2 = await runBackfill(rig.configPath, ['--file', file, '--trusted', '--dry-run']);
      assert.equal(dry2.summary!.new, 0);
      assert.equal(dry2.summary!.duplicates, h.expect.new + h.expect.duplicates);
    },
    { config: MIXED_CONFIG },
  );
});

test('untrusted sources get signature checks; stdin works and has no checkpoint', async () => {
  await withBackfillRig(async (rig) => {
    const alice = await signer();
    const good = [1, 2, 3].map((i) => alice.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `signed ${i}` }));
    const forged = { ...alice.sign({ kind: 1, created_at: 1_700_000_009, content: 'forged' }) };
    forged.sig = good[0]!.sig; // a valid signature of another event
    const input = [...good, forged].map((e) => JSON.stringify(e)).join('\n') + '\n';
    const r = await runBackfill(rig.configPath, ['--file', '-'], { input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary!.new, 3);
    assert.deepEqual(r.summary!.invalid, { 'bad-sig': 1 });
    assert.equal(r.summary!.checkpointKey, null);
    assert.deepEqual(rig.storedIds(), good.map((e) => e.id).sort());
    // Trusted (as strfry's own export is): only ids are checked.
    const t = await runBackfill(rig.configPath, ['--file', '-', '--trusted'], { input });
    assert.equal(t.summary!.new, 1);
  });
});

test('errors: no sidecar, no source, a missing file', async () => {
  await withBackfillRig(async (rig) => {
    const missing = await runBackfill(rig.configPath, ['--file', join(rig.ws.dir, 'nope.jsonl')]);
    assert.equal(missing.code, 1);
    assert.match(missing.summary!.sourceError ?? '', /cannot read .*nope\.jsonl/);
    const none = await runBackfill(rig.configPath, []);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no source/);
    await rig.sc.server.close();
    const down = await runBackfill(rig.configPath, ['--file', join(FIXTURES, 'strfry-export.jsonl')]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot connect to the sidecar's ingest socket .*is the sidecar running\?/);
  });
});

test('backfill while the real plugin forwards live traffic: the index is the union, nothing twice', { timeout: 120_000 }, async () => {
  const history = generated(5000, 44);
  const live = Array.from({ length: 300 }, (_, i) =>
    unsignedEvent(pubkeyN(70_000 + i), { kind: 1, created_at: 1_800_000_000 + i, content: `live ${i}` }),
  );
  await withBackfillRig(async (rig) => {
    const file = rig.writeFile(
      'h.jsonl',
      history.map((g) => g.line),
    );
    const harness = new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: rig.configPath } });
    try {
      const child = spawnBackfill(rig.configPath, ['--file', file, '--trusted', '--max-unacked', '1000']);
      // Live events (and some history arriving live too) while the backfill runs.
      for (let i = 0; i < live.length; i++) {
        const reply = (await harness.send(pluginLine(live[i]!), live[i]!.id)).reply;
        assert.equal(reply.action, 'accept');
        if (i % 50 === 0) await harness.send(pluginLine(JSON.parse(history[i * 10]!.line) as NostrEvent), history[i * 10]!.id);
      }
      const r = await child.done;
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await harness.close();
    }
    const expected = [...history.map((g) => g.id), ...live.map((e) => e.id)].sort();
    const deadline = Date.now() + 20_000;
    while (rig.storedIds().length < expected.length && Date.now() < deadline) await sleep(50);
    assert.deepEqual(rig.storedIds(), expected);
    assert.equal(rig.sc.store.counts().indexed, expected.length);
    assert.deepEqual(await rig.bundleAll(), expected);
  });
});

test('the sidecar killed (-9) and restarted mid-run: the command reconnects, sends again what was not acknowledged, nothing lost or doubled', {
  timeout: 120_000,
}, async () => {
  const lines = generated(N, 55);
  const ws = makeWorkspace();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    const file = join(ws.dir, 'h.jsonl');
    writeFileSync(file, lines.map((g) => g.line + '\n').join(''));
    const child = spawnBackfill(ws.configPath, ['--file', file, '--trusted', '--max-unacked', '2000']);
    await sidecar.waitFor((s) => s.events.received >= N / 4, 60_000);
    await sidecar.kill9();
    await sleep(300);
    await sidecar.start();
    const r = await child.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sidecar connection closed; reconnecting/);
    assert.match(r.stderr, /reconnected to the sidecar/);
    assert.equal(r.summary!.complete, true);
    const st = await sidecar.waitFor((s) => s.events.stored === N, 30_000);
    assert.equal(st.events.indexed, N, 'every event indexed once');
  } finally {
    await sidecar.stop();
    ws.cleanup();
  }
});

test('progress: a bar with events/s and ETA on a terminal, JSON log lines otherwise', { timeout: 120_000 }, async (t) => {
  if (!existsSync('/usr/bin/script')) {
    t.skip('needs script(1) from util-linux for a pseudo-terminal');
    return;
  }
  const lines = generated(N, 66).map((g) => g.line);
  await withBackfillRig(async (rig) => {
    const file = rig.writeFile('h.jsonl', lines);
    const cmd = [
      process.execPath,
      BACKFILL_BIN,
      '--config',
      rig.configPath,
      '--file',
      file,
      '--trusted',
      '--checkpoint-ms',
      '20',
      '--max-unacked',
      '1000',
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    // script(1) runs the command on a pseudo-terminal: stderr.isTTY is true there.
    const tty = await promisify(execFile)('/usr/bin/script', ['-qfec', cmd, '/dev/null'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.match(tty.stdout, /\d+% \| [\d,]+ lines \| [\d,]+ ev\/s \| new \d+ dup \d+ skipped \d+ errors \d+ \| ETA /);
    assert.match(tty.stdout, /result +complete/);
    const piped = await runBackfill(rig.configPath, [
      '--file',
      file,
      '--trusted',
      '--restart',
      '--checkpoint-ms',
      '20',
      '--progress-interval',
      '1',
      '--max-unacked',
      '1000',
      '--log-level',
      'info',
    ]);
    const progressLines = piped.stderr.split('\n').filter((l) => l.includes('"backfill progress"'));
    assert.ok(progressLines.length >= 1, piped.stderr);
    const p = JSON.parse(progressLines[0]!) as { read: number; acked: number; eventsPerSec: number; percent: number };
    assert.ok(p.read > 0 && p.acked >= 0 && p.eventsPerSec >= 0 && p.percent >= 0 && p.percent <= 100);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the terminal escapes this looks for
    assert.doesNotMatch(piped.stderr, /\x1b\[/, 'no terminal escapes without a terminal');
  });
});
