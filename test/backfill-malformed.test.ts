// nostr-bt-backfill on a source that is not events (random bytes): it says so (result, warning,
// exit 3), the sidecar quarantines a bounded sample of the run, not a copy of the source, and the
// progress bar ends at the final count. Plus the quarantine's per-replay bound on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../sidecar/common/log.js';
import { Quarantine, REPLAY_QUARANTINE_LIMIT } from '../sidecar/ingest/quarantine.js';
import { BACKFILL_BIN, runBackfill } from './testkit/backfill-cli.js';
import { withBackfillRig } from './testkit/backfill-rig.js';
import { exportLines } from './testkit/export-lines.js';

function quarantined(dir: string): { lines: number; bytes: number } {
  if (!existsSync(dir)) return { lines: 0, bytes: 0 };
  let lines = 0;
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    bytes += statSync(p).size;
    lines += readFileSync(p, 'utf8').split('\n').filter(Boolean).length;
  }
  return { lines, bytes };
}

/** Runs `argv` under a pseudo-terminal (util-linux `script`), so stderr is a TTY: returns what the terminal showed. */
function underTty(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return new Promise((resolve, reject) => {
    execFile(
      'script',
      ['-qec', argv.map(quote).join(' '), '/dev/null'],
      { env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
        if (err && code === null) reject(new Error(`script failed (util-linux's script is needed for this test): ${err.message}`));
        else resolve({ code, out: stdout });
      },
    );
  });
}

test('a source of random bytes: exit 3, notEvents, a warning; the quarantine keeps a bounded sample; the bar reaches 100 %', {
  timeout: 240_000,
}, async () => {
  await withBackfillRig(async (rig) => {
    // ~4 MB of random bytes: about 16,000 "lines", none of them an event, more than the replay bound.
    const file = join(rig.ws.dir, 'random.bin');
    writeFileSync(file, randomBytes(4 * 1024 * 1024));
    const r = await runBackfill(rig.configPath, ['--file', file]);
    assert.equal(r.code, 3, `exit 3 (not events): ${r.stderr.slice(-2000)}`);
    const s = r.summary!;
    assert.ok(s.read > REPLAY_QUARANTINE_LIMIT.lines + 1000, `enough lines to pass the bound (${s.read})`);
    assert.equal(s.notEvents, true);
    assert.equal(s.complete, true, 'the source was still read to its end');
    assert.equal(s.new + s.duplicates, 0);
    const invalid = Object.values(s.invalid).reduce((a, b) => a + b, 0);
    assert.equal(invalid, s.read - s.empty, 'every non-empty line is counted as invalid');
    assert.match(r.stderr, /the source is not events/);

    await rig.sc.ingestor.idle();
    await rig.sc.quarantine.flush();
    const q = quarantined(rig.sc.config.quarantineDir);
    const sent = invalid - (s.invalid['line-too-long'] ?? 0);
    assert.equal(q.lines, REPLAY_QUARANTINE_LIMIT.lines, 'the first lines of the run are kept, up to the bound');
    assert.ok(q.bytes <= REPLAY_QUARANTINE_LIMIT.bytes * 3, `quarantine bounded (${q.bytes} bytes)`);
    assert.equal(rig.sc.quarantine.capped, sent - REPLAY_QUARANTINE_LIMIT.lines, 'the rest are counted, not stored');

    // The same run as an operator sees it on a terminal: the bar ends at 100 % and the final count,
    // the summary says what happened. (A new file: the first run's checkpoint covers the old one.)
    const file2 = join(rig.ws.dir, 'random2.bin');
    writeFileSync(file2, randomBytes(256 * 1024));
    const env = { ...process.env };
    delete env.NOSTR_BT_CONFIG;
    delete env.NOSTR_BT_DATA_DIR;
    const tty = await underTty([process.execPath, BACKFILL_BIN, '--config', rig.configPath, '--file', file2], env);
    assert.equal(tty.code, 3, tty.out);
    const bars = [...tty.out.matchAll(/(\d+)% \| ([\d,]+) lines/g)];
    assert.ok(bars.length > 0, `a progress bar was shown: ${JSON.stringify(tty.out.slice(-1500))}`);
    const last = bars[bars.length - 1]!;
    const readLine = /read\s+([\d,]+) lines/.exec(tty.out);
    assert.ok(readLine, tty.out);
    assert.equal(last[1], '100', `the bar's last state is 100 %: ${JSON.stringify(tty.out.slice(-1500))}`);
    assert.equal(last[2], readLine[1], 'the bar shows the final line count');
    assert.match(tty.out, /WARNING\s+not one of the [\d,]+ lines is a valid Nostr event/);
    assert.match(tty.out, /result\s+not events: nothing archived/);
  });
});

test('a file of events with some bad lines is not "not events": exit 0, every rejected line kept', { timeout: 120_000 }, async () => {
  await withBackfillRig(async (rig) => {
    const lines = [...exportLines({ n: 200, authors: 20, seed: 3, startSec: 1_700_000_000, spanSec: 10_000 })].map((l) => l.line);
    const file = rig.writeFile('mixed.jsonl', [...lines.slice(0, 100), 'not json', '{"kind":1}', ...lines.slice(100)]);
    const r = await runBackfill(rig.configPath, ['--file', file, '--trusted']); // placeholder signatures
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.summary!.notEvents, false);
    assert.equal(r.summary!.new, 200);
    await rig.sc.ingestor.idle();
    await rig.sc.quarantine.flush();
    assert.equal(quarantined(rig.sc.config.quarantineDir).lines, 2);
  });
});

test('quarantine: a replay (backfill connection, reconcile run) keeps at most its bound; relay lines and each new replay are not affected', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-quarantine-'));
  try {
    const q = new Quarantine(dir, 1024 ** 3, createLogger('test', 'silent'));
    const plugin = { source: 'plugin' };
    const run1 = { source: 'backfill' };
    const run2 = { source: 'reconcile' };
    const extra = 25;
    for (let i = 0; i < REPLAY_QUARANTINE_LIMIT.lines + extra; i++) {
      q.add('malformed', plugin, `p${i}`);
      q.add('malformed', run1, `b${i}`);
    }
    q.add('malformed', run2, 'r0');
    // A line too big for what is left of a replay's bytes: counted, not kept.
    const run3 = { source: 'backfill' };
    q.add('malformed', run3, 'x'.repeat(REPLAY_QUARANTINE_LIMIT.bytes + 1));
    await q.flush();
    const entries = readdirSync(dir).flatMap((n) =>
      readFileSync(join(dir, n), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { source: string; line: string }),
    );
    const bySource = (s: string) => entries.filter((e) => e.source === s).length;
    assert.equal(bySource('plugin'), REPLAY_QUARANTINE_LIMIT.lines + extra, 'lines from the relay have no other copy: all kept');
    assert.equal(bySource('backfill'), REPLAY_QUARANTINE_LIMIT.lines, 'a replay keeps its first lines up to the bound');
    assert.equal(entries.filter((e) => e.source === 'backfill').at(-1)!.line, `b${REPLAY_QUARANTINE_LIMIT.lines - 1}`);
    assert.equal(bySource('reconcile'), 1, 'another replay has its own bound');
    assert.equal(q.capped, extra + 1);
    assert.equal(q.kept, entries.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
