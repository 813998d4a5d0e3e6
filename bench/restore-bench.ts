// Restore (issue 23 §5): `nostr-bt restore` of a bridge's whole archive (an origin sidecar child on
// a loopback DHT holding 100,000 signed events, 10,000 with --quick: bench/archive-origin.ts) into
// the strfry stand-in (test/testkit/strfry-standin.mjs: `strfry --config=F import`, JSONL on
// stdin), timed from the command's start to its exit: DHT bootstrap, bridge item, catalog, every
// bundle downloaded, every event verified and piped. Baseline in the same run: the same events
// read from a JSONL file into the same stand-in (`strfry import < archive.jsonl`). Every round
// checks that the stand-in got every event. Rounds alternate; median and range.
//
//   node dist/bench/restore-bench.js [--quick] [--n=ROUNDS]
import { spawn } from 'node:child_process';
import { createReadStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import type { RestoreSummary } from '../scripts/reader/restore.js';
import { lastJson, runCli } from '../test/testkit/reader-rig.js';
import { DIST_DIR, figure, fmt, log, makeTempDir, median, medianSpread, onCleanup, parseArgs, printFigures, runMain } from './common.js';
import { startOrigin, type Origin } from './archive-origin.js';

const STANDIN = resolve(DIST_DIR, '..', 'test/testkit/strfry-standin.mjs');

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Lines the stand-in recorded, checked against the archive: every event exactly once. */
function checkRecord(record: string, o: Origin, ids: Set<string>, what: string): void {
  const got = JSON.parse(readFileSync(record, 'utf8')) as { lines: string[] };
  rmSync(record);
  const seen = new Set<string>();
  for (const l of got.lines) seen.add((JSON.parse(l) as { id: string }).id);
  let missing = 0;
  for (const id of ids) if (!seen.has(id)) missing++;
  if (missing > 0 || got.lines.length !== o.events)
    throw new Error(`${what}: the stand-in got ${got.lines.length} lines, ${missing} of ${o.events} events missing`);
}

async function restoreRound(o: Origin, dir: string, conf: string, record: string, i: number): Promise<{ ms: number; s: RestoreSummary }> {
  process.env.STRFRY_STANDIN_OUT = record;
  const t0 = Date.now();
  const r = await runCli(
    [
      'restore',
      '--bridge',
      o.key,
      '--bootstrap',
      o.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--summary',
      'json',
      '--strfry',
      STANDIN,
      '--strfry-config',
      conf,
      '--state',
      join(dir, `state-${i}.json`),
    ],
    900_000,
  );
  const ms = Date.now() - t0;
  if (r.code !== 0) throw new Error(`restore exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return { ms, s: lastJson<RestoreSummary>(r.stderr) };
}

function fileRound(o: Origin, conf: string, record: string): Promise<number> {
  const t0 = Date.now();
  const c = spawn(process.execPath, [STANDIN, `--config=${conf}`, 'import'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, STRFRY_STANDIN_OUT: record },
  });
  onCleanup(async () => void (c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')));
  let err = '';
  c.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
  createReadStream(o.jsonlPath).pipe(c.stdin!);
  return new Promise((resolve, reject) => {
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve(Date.now() - t0) : reject(new Error(`stand-in exited ${code}: ${err}`))));
  });
}

const spread = (xs: number[], d = 0) => medianSpread(xs, d);

runMain(async () => {
  const args = parseArgs();
  const events = args.quick ? 10_000 : 100_000;
  const authors = args.quick ? 100 : 200;
  const rounds = args.n ?? 3;
  const loadStart = load();
  log(`restore bench: ${fmt(events)} events of ${authors} authors, ${rounds} rounds each; load average ${loadStart}`);
  const o = await startOrigin({ events, authors, contentBytes: 300, dhtNodes: 20 });
  const ids = new Set(
    readFileSync(o.jsonlPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string }).id),
  );
  const dir = makeTempDir('nostr-bt-restore-bench-');
  const conf = join(dir, 'strfry.conf');
  writeFileSync(conf, 'db = "./db"\n');
  const record = join(dir, 'standin.json');
  const restoreMs: number[] = [];
  const fileMs: number[] = [];
  const summaries: RestoreSummary[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const { ms, s } = await restoreRound(o, dir, conf, record, i);
      checkRecord(record, o, ids, `restore round ${i + 1}`);
      if (s.events.unique !== o.events || s.files.failed !== 0)
        throw new Error(`restore round ${i + 1}: ${JSON.stringify({ events: s.events, files: s.files, rejected: s.rejected })}`);
      restoreMs.push(ms);
      summaries.push(s);
      log(
        `  round ${i + 1} restore: ${fmt(s.events.sent)} events from ${s.bundles} bundles (${s.files.done} files) in ${fmt(ms)} ms ` +
          `(its own count ${fmt(s.ms)} ms): ${fmt(o.events / (ms / 1000))} events/s; load ${load()}`,
      );
      const f = await fileRound(o, conf, record);
      checkRecord(record, o, ids, `file round ${i + 1}`);
      fileMs.push(f);
      log(`  round ${i + 1} JSONL file: ${fmt(o.events)} events in ${fmt(f)} ms: ${fmt(o.events / (f / 1000))} events/s; load ${load()}`);
    }
  } finally {
    delete process.env.STRFRY_STANDIN_OUT;
  }
  const rEps = restoreMs.map((ms) => o.events / (ms / 1000));
  const fEps = fileMs.map((ms) => o.events / (ms / 1000));
  const ratio = median(rEps) / median(fEps);
  log(
    `→ ${fmt(o.events)} events into the strfry stand-in: restore ${spread(rEps)} events/s, from a JSONL file ${spread(fEps)} events/s; ` +
      `restore = ${fmt(ratio, 3)}× the file`,
  );
  log(
    `SUMMARY restore-bench: ${fmt(o.events)} events, ${o.bundles.length} bundles, ${fmt(o.jsonlBytes / 1e6, 1)} MB of JSONL; restore ` +
      `${fmt(median(restoreMs))} ms median of ${rounds} (${fmt(median(rEps))} events/s); JSONL file ${fmt(median(fileMs))} ms ` +
      `(${fmt(median(fEps))} events/s); ratio ${fmt(ratio, 3)}; load ${loadStart} → ${load()}`,
  );
  printFigures(
    'restore',
    [
      figure(
        `nostr-bt restore of ${fmt(o.events)} events into the strfry stand-in: median of ${rounds}`,
        median(rEps),
        'events/s',
        median(fEps),
      ),
      figure('the same events from a JSONL file into the stand-in: median', median(fEps), 'events/s'),
      figure('restore wall time, command start to exit: median', median(restoreMs), 'ms', median(fileMs)),
    ],
    { quick: args.quick, events: o.events, authors, bundles: o.bundles.length, rounds: { restoreMs, fileMs } },
  );
});
