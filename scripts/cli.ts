#!/usr/bin/env node
// nostr-bt: the operator CLI.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from '../sidecar/common/config.js';
import { NoDataError, statusFromDisk, type Status } from '../sidecar/ops/status.js';
import { loadIdentity, KeyFileError } from '../sidecar/publishing/identity.js';
import { zbase32 } from '../sidecar/formats/zbase32.js';
import { describeFsError } from '../sidecar/ops/data-dir-lock.js';
import { registerReaderCommands } from './reader/reader-cli.js';
import { registerAdvertise } from './advertise.js';
import { registerCatalogCommands, registerRestoreCommand } from './reader/catalog-cli.js';
import { applyCliConventions, EXIT_USAGE } from '../sidecar/common/command-line.js';

const program = new Command('nostr-bt')
  .description('nostr-bt operator CLI')
  .option('-c, --config <file>', 'config file (default: $NOSTR_BT_CONFIG, then /etc/nostr-bt/config.toml if present)')
  .option('-d, --data-dir <dir>', 'data directory (overrides dataDir in the config)')
  .addHelpText(
    'after',
    '\nExit status: 0 done; 1 failed (status: no sidecar and no readable index); 2 usage or config error.\nresolve and crawl have their own (see their --help).',
  );

function config(): Config {
  const o = program.opts<{ config?: string; dataDir?: string }>();
  try {
    return loadConfig({ configPath: o.config, dataDir: o.dataDir });
  } catch (err) {
    process.stderr.write(`nostr-bt: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(EXIT_USAGE);
  }
}

/**
 * Asks the running sidecar; if it does not answer, reads the lock, the index and the spool
 * directly (creating nothing: see statusFromDisk).
 */
async function fetchStatus(c: Config): Promise<Status> {
  let address: string | null = null;
  try {
    const runtime = JSON.parse(await readFile(join(c.dataDir, 'sidecar.json'), 'utf8')) as { status?: string };
    if (runtime.status) address = runtime.status;
  } catch {
    /* not running, or an older layout */
  }
  try {
    const res = await fetch(`http://${address ?? c.status.listen}/status`, { signal: AbortSignal.timeout(2000) });
    const s = res.ok ? ((await res.json()) as Status) : null;
    // At the configured address without a sidecar.json, another data directory's sidecar may answer.
    if (s && (address !== null || s.dataDir === c.dataDir)) return s;
  } catch {
    /* down: fall through */
  }
  return statusFromDisk(c);
}

function table(s: Status): string {
  type Row = [string, string | number];
  const undrained = s.spool.files > 0 && s.spool.draining === false;
  const rows: Row[] = [
    ['sidecar', s.process && s.sidecar !== 'up' ? `${s.sidecar} (pid ${s.process.pid}, started ${s.process.startedAt})` : s.sidecar],
    ['data dir', s.dataDir],
    ...(s.uptimeSec !== null ? [['uptime', duration(s.uptimeSec)] as Row] : []),
    ['events received', s.events.received],
    ['events indexed', s.events.indexed],
    ['duplicates', s.events.duplicates],
    ['events stored now', s.events.stored],
    ...Object.entries(s.skippedByPolicy).map(([k, v]) => [`skipped: ${k}`, v] as Row),
    ...Object.entries(s.removed).map(([k, v]) => [`removed: ${k}`, v] as Row),
    ...Object.entries(s.invalid).map(([k, v]) => [`invalid: ${k}`, v] as Row),
    ['spool files', undrained ? `${s.spool.files}  NOT DRAINED: no sidecar running, events are piling up` : s.spool.files],
    ['spool bytes', bytes(s.spool.bytes)],
  ];
  if (s.ingest) {
    rows.push(['ingest backlog', s.ingest.backlog]);
    if (s.ingest.unacknowledged !== undefined)
      rows.push(['ingest lag', `${s.ingest.lagSeconds ?? 0} s (oldest of ${s.ingest.unacknowledged} lines not yet committed)`]);
    if (s.ingest.latency?.count)
      rows.push([
        'ingest latency',
        `mean ${s.ingest.latency.mean} ms, max ${s.ingest.latency.max} ms over ${s.ingest.latency.count} lines`,
      ]);
    if (s.ingest.error) rows.push(['ingest STALLED', s.ingest.error]);
  }
  if (s.bundles) {
    const levels = Object.entries(s.bundles.byLevel)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    rows.push(['bundles active', `${s.bundles.active}${levels ? ` (${levels})` : ''}`]);
    rows.push(
      ['bundle bytes', bytes(s.bundles.bytes)],
      ['bundle events', s.bundles.events],
      ['bundles pending rewrite', s.bundles.pendingRewrites],
    );
    if (s.bundles.built !== undefined) rows.push(['bundles built / retired', `${s.bundles.built} / ${s.bundles.retired ?? 0} since start`]);
  }
  if (s.seeding) {
    rows.push(
      ['torrents seeded', s.seeding.torrents],
      ['peers', s.seeding.peers],
      ['uploaded', bytes(s.seeding.uploaded)],
      ['downloaded', bytes(s.seeding.downloaded)],
    );
  }
  if (s.dht) rows.push(['DHT nodes', `${s.dht.nodes}${s.dht.ready ? '' : ' (bootstrapping)'}`]);
  if (s.pointers) {
    const p = s.pointers;
    rows.push(
      ['pointer items', p.items],
      ['pointers published', p.published],
      ['pointers republished', p.republished],
      ['pointer puts failed', p.failed],
      ['pointers stale (> 2 h)', p.stale],
      ['authors waiting', p.dirtyAuthors],
    );
    if (p.republishLagSec !== undefined && p.republishLagSec !== null) rows.push(['republish lag', duration(p.republishLagSec)]);
    if (p.putNodes?.count)
      rows.push(['nodes storing a put', `mean ${p.putNodes.mean}, max ${p.putNodes.max} over ${p.putNodes.count} puts`]);
    if (p.lastError) rows.push(['last pointer error', p.lastError]);
  }
  if (s.reconcile) {
    const r = s.reconcile;
    const last = r.last
      ? `${r.last.sourceError ? `FAILED: ${r.last.sourceError}` : r.last.complete ? 'complete' : 'interrupted'}, ${r.last.read} read, ${r.last.new} new`
      : 'none yet';
    rows.push(['reconcile runs', `${r.runs} (${r.failures} failed)${r.running ? ', running now' : ''}`], ['reconcile last run', last]);
    if (r.nextAt) rows.push(['reconcile next run', r.nextAt]);
  }
  if (s.media) {
    const m = s.media;
    const refused = Object.entries(m.queue.failures)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    rows.push(
      ['media blobs', `${m.blobs} (${bytes(m.bytes)}), ${m.seeded} seeded, ${m.references} references, ${m.lists} author media lists`],
      [
        'media queue',
        `${m.queue.queued} waiting, ${m.queue.inFlight} fetching; ${m.queue.fetched} fetched, ${m.queue.droppedFull + m.queue.droppedAuthor} dropped since start`,
      ],
    );
    if (refused) rows.push(['media refused', refused]);
  }
  if (s.gateway) {
    const g = s.gateway;
    const total = (cls: string) => Object.values(g.requests).reduce((n, byClass) => n + (byClass[cls] ?? 0), 0);
    const l = g.dhtLookups;
    rows.push(
      [
        'gateway',
        `${g.address}, ${g.openConnections} connections open; ${total('2xx') + total('3xx')} answered, ${total('4xx')} 4xx, ${total('5xx')} 5xx since start`,
      ],
      [
        'gateway web seed',
        `${bytes(g.webSeedBytes)} sent; ${g.rateLimited} requests rate-limited, ${g.refusedConnections} connections refused`,
      ],
      ['gateway DHT lookups', `${l.hit} found, ${l.miss} missed, ${l.fail} invalid, ${l.cached} from cache, ${l.busy} refused busy`],
    );
  }
  if (s.memory)
    rows.push([
      'memory',
      `RSS ${s.memory.rss} MB; V8 heap ${s.memory.heapUsed} of ${s.memory.heapTotal} MB; external ${s.memory.external} MB`,
    ]);
  if (s.bridge) rows.push(['bridge key', s.bridge.publicKey]);
  for (const warning of s.warnings ?? []) rows.push(['WARNING', warning]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n} (${v.toFixed(1)} ${units[u]})`;
}

function duration(sec: number): string {
  if (sec < 120) return `${sec} s`;
  if (sec < 7200) return `${Math.round(sec / 60)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}

program
  .command('status')
  .description('print the sidecar status (JSON by default)')
  .addOption(new Option('--json', "print JSON (the default), like the other commands' --json").conflicts('table'))
  .option('--table', 'print a readable table instead of JSON')
  .action(async (o: { table?: boolean }) => {
    const c = config();
    let s: Status;
    try {
      s = await fetchStatus(c);
    } catch (err) {
      const why =
        err instanceof NoDataError
          ? err.message
          : `no running sidecar and no readable index at ${c.indexDir}: ${(err as NodeJS.ErrnoException).code ? describeFsError(err as NodeJS.ErrnoException) : (err as Error).message}`;
      process.stderr.write(`nostr-bt status: ${why}\n`);
      process.exit(1);
    }
    process.stdout.write(o.table ? table(s) : JSON.stringify(s, null, 2) + '\n');
  });

program
  .command('key')
  .description("print the bridge's public key (hex and z-base-32); never the secret")
  .action(() => {
    const c = config();
    try {
      // Read-only: a missing key is reported, never generated (it would not be the bridge's).
      const id = loadIdentity({
        nostrKeyFile: c.bridge.nostrKeyFile || undefined,
        generatedKeyFile: join(c.dataDir, 'bridge.key'),
        create: false,
      });
      process.stdout.write(
        JSON.stringify(
          {
            publicKey: id.publicKey.toString('hex'),
            z32: zbase32(id.publicKey),
            derivedFrom: id.source === 'nostr-key' ? 'nostr secret key' : 'generated secret',
            keyFile: id.path,
          },
          null,
          2,
        ) + '\n',
      );
    } catch (err) {
      const why =
        err instanceof KeyFileError
          ? err.message
          : (err as NodeJS.ErrnoException).code
            ? `cannot read the bridge key: ${describeFsError(err as NodeJS.ErrnoException)}`
            : String(err);
      process.stderr.write(`nostr-bt key: ${why}\n`);
      process.exit(1);
    }
  });

registerReaderCommands(program, () => config().dht.bootstrap);
registerAdvertise(program, config);
registerCatalogCommands(program, () => config().dht.bootstrap);
registerRestoreCommand(program, () => config().dht.bootstrap);
applyCliConventions(program);

await program.parseAsync();
