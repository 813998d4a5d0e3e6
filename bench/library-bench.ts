// Library benchmark: an application that imports nostr-bt (createReader → reader.resolve) against
// the `nostr-bt resolve` command, on a local DHT, same archive, same run.
//
//   One bridge (an in-process Sidecar) archives an author's notes (1,000; --quick 200) with 99
//   other authors (3 notes each) in one bundle. Then, alternately, in fresh processes:
//     - a library consumer (bench/library-child.ts): time from its resolve() call to the first
//       verified event out of the async iterator, and to the merged result; its createReader
//       (DHT bootstrap) apart; and from its process spawn to the first event;
//     - `nostr-bt resolve` as a child process: from spawn to its first event line on stdout (the
//       command prints the merged, newest-first list at the end) and to its exit;
//     - the library consumer with no bridge key (resolve with discover: true): time to its first
//       event, printed next to how long discovery ran (the resolve need not wait for its end).
//   All use the same DHT pacing (500 packets/s per node, 0.5 s query timeout: local nodes).
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/library-bench.js [--quick] [--n=EVENTS]
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, fmt, log, median, onCleanup, parseArgs, printFigures, runMain, withTimeout, type Figure } from './common.js';
import { archivedAuthor, resolveCommand } from './reader-support.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'library-child.js');
const RUN_TIMEOUT_MS = 180_000;

interface LibraryRun {
  ok: boolean;
  readyMs: number;
  firstEventMs: number | null;
  allMs: number;
  events: number;
  streamed: number;
  fromSpawnToFirstMs: number;
  /** With discovery (no bridge key given): how long discovery ran, from before the resolve began. */
  discoveryMs: number | null;
}

interface CliRun {
  firstLineMs: number | null;
  exitMs: number;
  events: number;
  code: number | null;
}

/** Runs a child to its end (killed past RUN_TIMEOUT_MS); `onData` sees stdout as it comes. */
function runChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  onData: (chunk: string) => void,
): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  proc.stdout!.setEncoding('utf8').on('data', onData);
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

async function libraryRun(bootstrap: string[], bridge: string | undefined, author: string): Promise<LibraryRun> {
  let out = '';
  const { code, stderr } = await runChild(
    [CHILD, JSON.stringify({ bootstrap, bridge, author })],
    { ...process.env, LIBRARY_BENCH_SPAWNED_AT: String(Date.now()) },
    (d) => (out += d),
  );
  const line = out.trim().split('\n').pop();
  if (code !== 0 || !line) throw new Error(`library child failed (${code}): ${stderr}`);
  return JSON.parse(line) as LibraryRun;
}

async function cliRun(bootstrap: string[], bridge: string, author: string): Promise<CliRun> {
  const t0 = Date.now();
  let firstLineMs: number | null = null;
  let newlines = 0;
  const args = resolveCommand(bootstrap, bridge, author);
  const { code, stderr } = await runChild(args, process.env, (d) => {
    if (firstLineMs === null && d.includes('\n')) firstLineMs = Date.now() - t0;
    for (let i = d.indexOf('\n'); i >= 0; i = d.indexOf('\n', i + 1)) newlines++;
  });
  if (code !== 0) throw new Error(`nostr-bt resolve exited ${code}: ${stderr}`);
  return { firstLineMs, exitMs: Date.now() - t0, events: newlines, code };
}

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.n ?? (args.quick ? 200 : 1_000);
  const runs = args.quick ? 2 : 3;
  log(
    `library bench: resolve of an author with ${fmt(n)} events (one bundle, 100 authors), library consumer vs nostr-bt resolve, ${runs} run(s) each, alternating`,
  );
  const { dht, bridge, author, made } = await archivedAuthor({ dhtNodes: 10, events: n, others: 99, perOther: 3 });
  log(`archived ${fmt(n + 99 * 3)} events in ${made.bundles} bundle(s), ${fmt(made.bytes / 1024, 1)} KiB`);

  const lib: LibraryRun[] = [];
  const cli: CliRun[] = [];
  const found: LibraryRun[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternate which goes first, so neither always meets a bridge that just served the other.
    const order = r % 2 === 0 ? ['lib', 'cli'] : ['cli', 'lib'];
    for (const which of order) {
      if (which === 'lib') {
        const l = await withTimeout(libraryRun(dht.bootstrap, bridge.key, author.pubkey), RUN_TIMEOUT_MS + 5_000, null);
        if (!l || !l.ok || l.events !== n) throw new Error(`library read incomplete: ${JSON.stringify(l)}`);
        lib.push(l);
      } else {
        const c = await cliRun(dht.bootstrap, bridge.key, author.pubkey);
        if (c.events !== n) throw new Error(`nostr-bt resolve printed ${c.events} events, expected ${n}`);
        cli.push(c);
      }
    }
    // No bridge key: the library discovers the bridge and resolves on it as soon as it answers.
    const f = await withTimeout(libraryRun(dht.bootstrap, undefined, author.pubkey), RUN_TIMEOUT_MS + 5_000, null);
    if (!f || !f.ok || f.events !== n) throw new Error(`library read with discovery incomplete: ${JSON.stringify(f)}`);
    found.push(f);
    log(
      `run ${r + 1}: with discovery, first event ${f.firstEventMs} ms after resolve() (all ${f.allMs} ms); discovery ran ${f.discoveryMs} ms`,
    );
    const l = lib[lib.length - 1]!;
    const c = cli[cli.length - 1]!;
    log(
      `run ${r + 1}: library first event ${l.firstEventMs} ms after resolve() (all ${l.allMs} ms; createReader ${l.readyMs} ms; spawn → first event ${l.fromSpawnToFirstMs} ms); ` +
        `nostr-bt resolve first line ${c.firstLineMs} ms after spawn, exit ${c.exitMs} ms`,
    );
  }
  const med = (xs: (number | null)[]) => median(xs.map((x) => x ?? NaN));
  const cliFirst = med(cli.map((c) => c.firstLineMs));
  const figures: Figure[] = [
    figure('library: resolve() call to first verified event', med(lib.map((l) => l.firstEventMs)), 'ms', cliFirst),
    figure('library: resolve() call to merged result', med(lib.map((l) => l.allMs)), 'ms', cliFirst),
    figure('library: createReader (DHT bootstrap)', med(lib.map((l) => l.readyMs)), 'ms'),
    figure('library process: spawn to first verified event', med(lib.map((l) => l.fromSpawnToFirstMs)), 'ms', cliFirst),
    figure(
      'library, no bridge key (discovery): resolve() call to first verified event',
      med(found.map((f) => f.firstEventMs)),
      'ms',
      med(lib.map((l) => l.firstEventMs)),
    ),
    figure('library, no bridge key: whole discovery (its baseline: the first event above)', med(found.map((f) => f.discoveryMs)), 'ms'),
    figure('nostr-bt resolve: spawn to first event line', cliFirst, 'ms'),
    figure('nostr-bt resolve: whole command', med(cli.map((c) => c.exitMs)), 'ms'),
  ];
  log('');
  log('baseline: `nostr-bt resolve` of the same author in the same run, from its spawn to its first event line on stdout');
  printFigures('library', figures, { events: n, authors: 100, bundles: made.bundles, runs, quick: args.quick });
}

runMain(main);
