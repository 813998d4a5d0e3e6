#!/usr/bin/env node
// nostr-bt-backfill: replays a relay's history (strfry export, a JSONL file or stdin) into the
// archive through the running sidecar's ingest socket — same policy, dedupe, bundling and
// pointers as live events — resumable from a checkpoint in the sidecar's LMDB index.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, ConfigError, type Config } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { initSignatureCheck } from '../sidecar/formats/nostr-event.js';
import { Store } from '../sidecar/index/store.js';
import type { IngestChannel } from '../sidecar/backfill/channel.js';
import type { CheckpointIO } from '../sidecar/index/checkpoints.js';
import { DryRunChannel } from '../sidecar/backfill/dry-run-channel.js';
import type { SourceSpec } from '../sidecar/backfill/event-source.js';
import { progressReporter } from '../sidecar/backfill/progress.js';
import { checkpointKey, runBackfill } from '../sidecar/backfill/runner.js';
import { SidecarUnreachable, SocketChannel } from '../sidecar/backfill/socket-channel.js';
import { summaryText } from '../sidecar/backfill/summary.js';
import { applyCliConventions, EXIT_USAGE } from '../sidecar/common/command-line.js';

const intArg =
  (what: string, min = 0) =>
  (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v)))
      throw new InvalidArgumentError(`${what}: expected an integer ≥ ${min}`);
    return Number(v);
  };

/** Exit status when the source was read and not one line of it was an event. */
const EXIT_NOT_EVENTS = 3;

interface Flags {
  config?: string;
  dataDir?: string;
  strfry?: string | boolean;
  strfryConfig?: string;
  file?: string;
  since?: number;
  until?: number;
  margin?: number;
  restart?: boolean;
  dryRun?: boolean;
  trusted?: boolean;
  verify?: boolean;
  maxUnacked: number;
  progressInterval: number;
  reconnectSeconds: number;
  checkpointMs: number;
  json?: boolean;
  logLevel?: string;
}

const program = new Command('nostr-bt-backfill')
  .description(
    "Replay a relay's history into the nostr-bt archive through the running sidecar.\n" +
      'Resumable (checkpoint in the sidecar index) and idempotent (the sidecar dedupes by id).',
  )
  .option('-c, --config <file>', 'config file (default: $NOSTR_BT_CONFIG, then /etc/nostr-bt/config.toml if present)')
  .option('-d, --data-dir <dir>', 'data directory (overrides dataDir in the config)')
  .option('--strfry [binary]', 'read the relay database with `<binary> export` (default binary: reconcile.strfry, else strfry in $PATH)')
  .option('--strfry-config <file>', "strfry's config, passed as --config=<file> (default: reconcile.strfryConfig)")
  .option('--file <path>', 'read a JSONL file of events or strfry plugin lines; "-" reads stdin')
  .option('--since <unix>', 'only events with created_at >= this', intArg('--since'))
  .option('--until <unix>', 'only events with created_at <= this', intArg('--until'))
  .option('--margin <seconds>', 'strfry: start this long before the checkpoint (default: reconcile.marginSeconds)', intArg('--margin'))
  .option('--restart', 'ignore and reset the checkpoint: read everything again (nothing is added twice)')
  .option('--dry-run', 'apply the checks and count what would be archived; write nothing')
  .option('--trusted', 'skip signature checks (default for --strfry: strfry verified every event it stored)')
  .option('--verify', 'check signatures (default for --file and stdin)')
  .option('--max-unacked <lines>', 'lines in flight to the sidecar', intArg('--max-unacked', 1), 40_000)
  .option('--progress-interval <seconds>', 'without a terminal: seconds between progress log lines', intArg('--progress-interval', 1), 10)
  .option('--reconnect-seconds <seconds>', 'keep trying this long when the sidecar connection drops', intArg('--reconnect-seconds'), 60)
  .option(
    '--checkpoint-ms <ms>',
    'how often the checkpoint is saved (work since the last save is re-sent after a crash)',
    intArg('--checkpoint-ms', 10),
    1000,
  )
  .option('--json', 'print the summary as JSON')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
  .addHelpText(
    'after',
    '\nExit status: 0 done (bad lines are counted, not fatal); 1 the source or the sidecar failed;\n' +
      '2 usage or config error; 3 the source is not events (no line was one: nothing archived);\n' +
      '130 interrupted (run the same command again to resume).',
  );
applyCliConventions(program).parse();

const flags = program.opts<Flags>();

function usage(msg: string): never {
  process.stderr.write(`nostr-bt-backfill: ${msg}\n`);
  process.exit(EXIT_USAGE);
}

let config: Config;
try {
  config = loadConfig({
    configPath: flags.config,
    dataDir: flags.dataDir,
    overrides: flags.logLevel ? { log: { level: flags.logLevel } } : undefined,
  });
} catch (err) {
  usage(err instanceof ConfigError ? err.message : String(err));
}

function sourceSpec(): SourceSpec {
  if (flags.file !== undefined && flags.strfry !== undefined) usage('give one source: --strfry or --file');
  if (flags.file === '-') return { kind: 'stdin' };
  if (flags.file !== undefined) return { kind: 'file', path: resolve(flags.file) };
  if (flags.strfry === undefined && !config.reconcile.strfry)
    usage('no source: give --strfry [binary] or --file <path> (or set reconcile.strfry in the config)');
  const bin = typeof flags.strfry === 'string' ? flags.strfry : config.reconcile.strfry || 'strfry';
  const strfryConfig = flags.strfryConfig !== undefined ? resolve(flags.strfryConfig) : config.reconcile.strfryConfig || undefined;
  return { kind: 'strfry', bin, config: strfryConfig };
}

const spec = sourceSpec();
if (flags.trusted && flags.verify) usage('--trusted and --verify contradict each other');
if (flags.since !== undefined && flags.until !== undefined && flags.since > flags.until) usage('--since is after --until');
const trusted = flags.verify ? false : flags.trusted ? true : spec.kind === 'strfry';
const log = createLogger('nostr-bt-backfill', config.log.level);

const range = { since: flags.since, until: flags.until };
let channel: IngestChannel;
let checkpoint: CheckpointIO | null = null;
let store: Store | null = null;
if (flags.dryRun) {
  await initSignatureCheck();
  if (existsSync(join(config.indexDir, 'data.mdb'))) store = Store.open(config.indexDir, { readOnly: true });
  channel = new DryRunChannel(store, config, trusted);
} else {
  // The checkpoint is read and saved through the sidecar: this process never writes its index.
  const key = checkpointKey(spec, range) ?? undefined;
  let socket: SocketChannel;
  try {
    socket = await SocketChannel.connect({
      path: config.socket.path,
      source: 'backfill',
      trusted,
      maxUnacked: flags.maxUnacked,
      maxUnackedBytes: 64 * 1024 * 1024,
      reconnectMs: flags.reconnectSeconds * 1000,
      checkpointKey: key,
      log,
    });
  } catch (err) {
    process.stderr.write(`nostr-bt-backfill: ${err instanceof SidecarUnreachable ? err.message : String(err)}\n`);
    process.exit(1);
  }
  channel = socket;
  if (key !== undefined) checkpoint = socket.checkpointIO();
}

const ac = new AbortController();
let signals = 0;
const onSignal = (sig: string) => {
  if (++signals > 1) process.exit(130);
  log.warn(
    { signal: sig },
    'stopping: waiting for the lines in flight to be acknowledged, then saving the checkpoint (again to quit at once)',
  );
  ac.abort();
};
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

const reporter = progressReporter({ tty: process.stderr.isTTY === true, log, intervalMs: flags.progressInterval * 1000 });
const summary = await runBackfill({
  spec,
  range,
  marginSec: flags.margin ?? config.reconcile.marginSeconds,
  checkpoint,
  restart: flags.restart,
  channel,
  maxLineBytes: config.ingest.maxLineBytes,
  log,
  signal: ac.signal,
  onProgress: (p) => reporter.update(p),
  checkpointIntervalMs: flags.checkpointMs,
});
reporter.stop();
await channel.close();
await store?.close();

process.stdout.write(
  flags.json
    ? JSON.stringify({ dryRun: flags.dryRun === true, trusted, ...summary }) + '\n'
    : summaryText(summary, { dryRun: flags.dryRun, quarantineDir: config.quarantineDir }),
);
if (summary.sourceError) log.error({ error: summary.sourceError }, 'the source failed');
if (summary.channelError) log.error({ error: summary.channelError }, 'the sidecar connection failed');
if (summary.notEvents)
  log.warn(
    { source: summary.source, read: summary.read, invalid: summary.invalid },
    'the source is not events: no line of it was a Nostr event',
  );
process.exit(summary.sourceError || summary.channelError ? 1 : summary.interrupted ? 130 : summary.notEvents ? EXIT_NOT_EVENTS : 0);
