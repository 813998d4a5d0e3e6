// `nostr-bt resolve` and `nostr-bt crawl`: the reading side on the command line. Events go to
// stdout as JSONL (the stored bytes of §4, ready for `strfry import`), everything else to stderr.
import type { Command } from 'commander';
import { canonicalJson, type NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { collect, parseBytes, parseCount, parseKinds, parseSeconds, parseTime } from './cli-options.js';
import { crawl, DEFAULT_CRAWL_BUDGET } from './crawl.js';
import { crawlProgress } from './crawl-progress.js';
import type { EventFilter } from './event-merge.js';
import { InputError, parseAuthorKey, parseBridgeKey } from './keys.js';
import { ReaderContext } from './reader-context.js';
import { DhtUnreachable, parseBootstrap } from './reader-dht.js';
import { isRelayUrl } from './relay-source.js';
import { DEFAULT_LIMITS, resolveAuthor, resolveExitCode, type RelayMode, type ResolveLimits } from './resolve.js';
import { StrfryImport } from './strfry-import.js';
import { crawlText, resolveText } from './summary-text.js';
import { PatchTargetError } from '../../sidecar/common/monkey-patch.js';
import { addMediaCommand } from './media-cli.js';
import {
  addDiscoveryOptions,
  discoverForCli,
  discoverStreamForCli,
  parseDiscoveryLimits,
  type CliDiscovery,
  type DiscoveryCliOpts,
} from './discover-cli.js';

export const EXIT = { found: 0, notFound: 1, badInput: 2, failed: 3, partial: 4 } as const;

const EXIT_HELP = `
Exit status: 0 events found (every source answered), 1 nothing found, 2 bad input,
3 failed (no DHT node reachable, or nothing could be read), 4 events found but some bridge,
bundle or relay failed (see the summary).`;

export interface CommonOpts extends DiscoveryCliOpts {
  bridge: string[];
  relay: string[];
  relayMode: string;
  since?: string;
  until?: string;
  kinds?: string;
  bootstrap?: string;
  bind?: string;
  dhtNodeRate: string;
  dhtQueryTimeout: string;
  tmpDir?: string;
  utp?: boolean;
  pointerTimeout?: string;
  bundleTimeout?: string;
  relayTimeout?: string;
  maxFileBytes?: string;
  maxMetadataBytes?: string;
  summary: string;
}

export function addCommonOptions(cmd: Command): Command {
  return addDiscoveryOptions(cmd)
    .option(
      '-b, --bridge <key>',
      'bridge public key (hex or z-base-32, from `nostr-bt key` on the bridge); repeatable; none: find bridges through the DHT',
      collect,
      [],
    )
    .option('-r, --relay <url>', 'relay to ask after the swarm (wss://…); repeatable', collect, [])
    .option(
      '--relay-mode <mode>',
      'fallback: ask relays for what is newer than the archive, or everything if the swarm fell short; full: always everything',
      'fallback',
    )
    .option('--since <time>', 'only events created at or after (unix seconds or ISO date)')
    .option('--until <time>', 'only events created at or before (unix seconds or ISO date)')
    .option('--kinds <list>', 'only these kinds, e.g. 1,6,30023 or 30000-30010')
    .option('--bootstrap <host:port,...>', 'DHT bootstrap nodes (default: dht.bootstrap from the config, the Mainline routers)')
    .option('--bind <address>', "address the reader's DHT node binds", '0.0.0.0')
    .option('--dht-node-rate <n>', 'DHT packets per second to any one node (libtorrent nodes ban more than 5)', '5')
    .option('--dht-query-timeout <s>', 'how long one DHT query waits for an answer', '2')
    .option('--tmp-dir <dir>', 'where downloaded pieces are kept while reading (removed at the end)')
    .option(
      '--utp',
      'connect to peers over uTP first (WebTorrent falls back to TCP only after ~20 s; the default is TCP, which every bridge accepts)',
    )
    .option('--pointer-timeout <s>', `per DHT pointer get (default ${DEFAULT_LIMITS.pointerTimeoutMs / 1000})`)
    .option('--bundle-timeout <s>', `per bundle (default ${DEFAULT_LIMITS.bundleTimeoutMs / 1000})`)
    .option('--relay-timeout <s>', `per relay (default ${DEFAULT_LIMITS.relayTimeoutMs / 1000})`)
    .option('--max-file-bytes <size>', `largest author file downloaded from a bundle (default ${DEFAULT_LIMITS.maxFileBytes / 1024 ** 2}M)`)
    .option('--max-metadata-bytes <size>', `largest bundle metadata accepted (default ${DEFAULT_LIMITS.maxMetadataBytes / 1024 ** 2}M)`)
    .option('--summary <format>', 'summary on stderr: text, json or none', 'text');
}

interface Common {
  bridges: Buffer[];
  relays: string[];
  relayMode: RelayMode;
  filter: EventFilter;
  limits: Partial<ResolveLimits>;
  summary: 'text' | 'json' | 'none';
}

export function parseCommon(o: CommonOpts): Common {
  const bridges = o.bridge.map(parseBridgeKey);
  if (bridges.length === 0) parseDiscoveryLimits(o); // bad discovery options are bad input before any network
  for (const r of o.relay) if (!isRelayUrl(r)) throw new InputError(`--relay: not a ws:// or wss:// URL: ${JSON.stringify(r)}`);
  if (o.relayMode !== 'fallback' && o.relayMode !== 'full')
    throw new InputError(`--relay-mode: fallback or full, not ${JSON.stringify(o.relayMode)}`);
  if (o.summary !== 'text' && o.summary !== 'json' && o.summary !== 'none')
    throw new InputError(`--summary: text, json or none, not ${JSON.stringify(o.summary)}`);
  const filter: EventFilter = {};
  if (o.since !== undefined) filter.since = parseTime('--since', o.since);
  if (o.until !== undefined) filter.until = parseTime('--until', o.until);
  if (o.kinds !== undefined) filter.kinds = parseKinds(o.kinds);
  const limits: Partial<ResolveLimits> = {};
  if (o.pointerTimeout) limits.pointerTimeoutMs = parseSeconds('--pointer-timeout', o.pointerTimeout);
  if (o.bundleTimeout) limits.bundleTimeoutMs = parseSeconds('--bundle-timeout', o.bundleTimeout);
  if (o.relayTimeout) limits.relayTimeoutMs = parseSeconds('--relay-timeout', o.relayTimeout);
  if (o.maxFileBytes) limits.maxFileBytes = parseBytes('--max-file-bytes', o.maxFileBytes);
  if (o.maxMetadataBytes) limits.maxMetadataBytes = parseBytes('--max-metadata-bytes', o.maxMetadataBytes);
  return { bridges, relays: o.relay, relayMode: o.relayMode, filter, limits, summary: o.summary };
}

/** Writes to stdout, waiting when the pipe is full; a closed pipe (`| head`) ends quietly. */
export async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((r) => process.stdout.once('drain', () => r()));
}

function jsonl(events: NostrEvent[]): string {
  let s = '';
  for (const e of events) s += canonicalJson(e) + '\n';
  return s;
}

export async function openContext(o: CommonOpts, defaultBootstrap: () => string[]): Promise<ReaderContext> {
  const bootstrap = o.bootstrap !== undefined ? parseBootstrap(o.bootstrap) : defaultBootstrap();
  const rate = parseCount('--dht-node-rate', o.dhtNodeRate, 10_000);
  if (rate < 1) throw new InputError('--dht-node-rate: at least 1');
  return ReaderContext.open({
    bootstrap,
    bindHost: o.bind,
    tmpDir: o.tmpDir,
    utp: o.utp === true,
    maxPacketsPerSecondPerNode: rate,
    dhtQueryTimeoutMs: parseSeconds('--dht-query-timeout', o.dhtQueryTimeout),
  });
}

/** No --bridge: find bridges through the DHT (null when bridges were given). */
async function maybeDiscover(ctx: ReaderContext, c: Common, o: CommonOpts): Promise<CliDiscovery | null> {
  if (c.bridges.length > 0) return null;
  const d = await discoverForCli(ctx.dht, o, (line) => c.summary !== 'none' && process.stderr.write(line + '\n'));
  c.bridges = d.bridges;
  return d;
}

/** Runs a command body: bad input → 2, unreachable DHT, a dependency lacking a patched member or any other failure → 3. */
export async function run(name: string, body: () => Promise<number>): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  let code: number;
  try {
    code = await body();
  } catch (err) {
    if (err instanceof InputError) {
      process.stderr.write(`nostr-bt ${name}: ${err.message}\n`);
      code = EXIT.badInput;
    } else if (err instanceof DhtUnreachable || err instanceof PatchTargetError) {
      process.stderr.write(`nostr-bt ${name}: ${err.message}\n`);
      code = EXIT.failed;
    } else {
      process.stderr.write(`nostr-bt ${name}: ${(err as Error)?.stack ?? String(err)}\n`);
      code = EXIT.failed;
    }
  }
  // Sockets of the torrent client may linger a moment after destroy: do not wait for them.
  process.exitCode = code;
  setTimeout(() => process.exit(code), 100).unref();
}

export function registerReaderCommands(program: Command, defaultBootstrap: () => string[]): void {
  addCommonOptions(
    program
      .command('resolve <author>')
      .description(
        "an author's archived events from bridges, through the DHT and BitTorrent (no relay needed): verified JSONL on stdout, newest first",
      )
      .option('--timeout <s>', `deadline for the swarm part (default ${DEFAULT_LIMITS.swarmTimeoutMs / 1000})`)
      .option('--max-bytes <size>', `bytes downloaded for this author at most (default ${DEFAULT_LIMITS.maxBytes / 1024 ** 3}G)`)
      .option('--concurrency <n>', `bundles fetched at once (default ${DEFAULT_LIMITS.concurrency})`),
  )
    .addHelpText('after', EXIT_HELP)
    .action((authorArg: string, o: CommonOpts & { timeout?: string; maxBytes?: string; concurrency?: string }) =>
      run('resolve', async () => {
        const author = parseAuthorKey(authorArg);
        const c = parseCommon(o);
        if (o.timeout) c.limits.swarmTimeoutMs = parseSeconds('--timeout', o.timeout);
        if (o.maxBytes) c.limits.maxBytes = parseBytes('--max-bytes', o.maxBytes);
        if (o.concurrency) c.limits.concurrency = Math.max(1, parseCount('--concurrency', o.concurrency, 64));
        const ctx = await openContext(o, defaultBootstrap);
        try {
          // No --bridge: each bridge is resolved as soon as discovery finds it.
          const feed =
            c.bridges.length > 0
              ? null
              : discoverStreamForCli(ctx.dht, o, (line) => c.summary !== 'none' && process.stderr.write(line + '\n'));
          const { events, summary } = await resolveAuthor(ctx, {
            author,
            bridges: feed ? feed.bridges : c.bridges,
            relays: c.relays,
            relayMode: c.relayMode,
            filter: c.filter,
            limits: c.limits,
          });
          const discovered = feed ? await feed.ended : null;
          if (discovered && discovered.bridges.length === 0 && c.relays.length === 0) {
            if (c.summary === 'json') process.stderr.write(JSON.stringify({ found: false, discovery: discovered.summary }) + '\n');
            else if (c.summary === 'text')
              process.stderr.write('no bridge found through the DHT (and none in the bridge cache): give --bridge <key>\n');
            return EXIT.notFound;
          }
          discovered?.finish(summary);
          await writeOut(jsonl(events));
          if (c.summary === 'json')
            process.stderr.write(JSON.stringify(discovered ? { ...summary, discovery: discovered.summary } : summary) + '\n');
          else if (c.summary === 'text') process.stderr.write(resolveText(summary));
          return resolveExitCode(summary, c.relays.length > 0);
        } finally {
          await ctx.close();
        }
      }),
    );

  addCommonOptions(
    program
      .command('crawl <root>')
      .description(
        "web-of-trust crawl: the root's newest contact list from the archive, its follows breadth-first to --depth, every author's verified events as JSONL",
      )
      .option('--depth <n>', 'hops from the root along contact lists', '2')
      .option('--max-authors <n>', `authors resolved at most (default ${DEFAULT_CRAWL_BUDGET.maxAuthors})`)
      .option('--max-bytes <size>', `bytes downloaded at most, all authors (default ${DEFAULT_CRAWL_BUDGET.maxBytes / 1024 ** 3}G)`)
      .option('--timeout <s>', `deadline for the whole crawl (default ${DEFAULT_CRAWL_BUDGET.timeoutMs / 1000})`)
      .option('--concurrency <n>', `authors resolved at once (default ${DEFAULT_CRAWL_BUDGET.concurrency})`)
      .option('--progress', 'show progress on stderr even when it is not a terminal')
      .option('--import', 'pipe the events into `strfry import` instead of stdout')
      .option('--strfry <path>', 'strfry executable for --import', 'strfry')
      .option('--strfry-config <file>', 'strfry.conf for --import'),
  )
    .addHelpText(
      'after',
      EXIT_HELP.replace('0 events found (every source answered)', '0 events found').replace(
        'bridge,\nbundle or relay failed',
        'author\ncould not be read, or the crawl stopped at a budget',
      ),
    )
    .action(
      (
        rootArg: string,
        o: CommonOpts & {
          depth: string;
          maxAuthors?: string;
          maxBytes?: string;
          timeout?: string;
          concurrency?: string;
          progress?: boolean;
          import?: boolean;
          strfry: string;
          strfryConfig?: string;
        },
      ) =>
        run('crawl', async () => {
          const root = parseAuthorKey(rootArg);
          const c = parseCommon(o);
          const depth = parseCount('--depth', o.depth, 16);
          const budget: Partial<typeof DEFAULT_CRAWL_BUDGET> = {};
          if (o.maxAuthors) budget.maxAuthors = Math.max(1, parseCount('--max-authors', o.maxAuthors, 10_000_000));
          if (o.maxBytes) budget.maxBytes = parseBytes('--max-bytes', o.maxBytes);
          if (o.timeout) budget.timeoutMs = parseSeconds('--timeout', o.timeout);
          if (o.concurrency) budget.concurrency = Math.max(1, parseCount('--concurrency', o.concurrency, 64));
          if (o.import && !o.strfryConfig)
            throw new InputError('--import needs --strfry-config <file> (the strfry.conf of the database to import into)');
          c.limits.concurrency ??= 2;
          const ctx = await openContext(o, defaultBootstrap);
          const importer = o.import ? new StrfryImport(o.strfry, o.strfryConfig!) : null;
          const progress = crawlProgress(Boolean(o.progress) || process.stderr.isTTY === true);
          try {
            const discovered = await maybeDiscover(ctx, c, o);
            if (discovered && c.bridges.length === 0 && c.relays.length === 0) {
              if (c.summary !== 'none')
                process.stderr.write('no bridge found through the DHT (and none in the bridge cache): give --bridge <key>\n');
              return EXIT.notFound;
            }
            const summary = await crawl(ctx, {
              root,
              depth,
              bridges: c.bridges,
              relays: c.relays,
              relayMode: c.relayMode,
              filter: c.filter,
              limits: c.limits,
              budget,
              onProgress: (p) => progress.update(p),
              onAuthor: async ({ events, summary: s }) => {
                discovered?.learn(s);
                if (importer) for (const e of events) await importer.write(canonicalJson(e));
                else await writeOut(jsonl(events));
              },
            });
            progress.stop();
            discovered?.save();
            let importFailed = false;
            if (importer) {
              const r = await importer.finish();
              importFailed = r.failed;
              process.stderr.write(
                `strfry import: ${r.lines} events sent, ${r.failed ? `failed: ${r.error}` : 'done'}\n${r.output ? r.output.trimEnd() + '\n' : ''}`,
              );
            }
            if (c.summary === 'json')
              process.stderr.write(JSON.stringify(discovered ? { ...summary, discovery: discovered.summary } : summary) + '\n');
            else if (c.summary === 'text') process.stderr.write(crawlText(summary));
            if (importFailed) return EXIT.failed;
            if (summary.events === 0) return summary.authors.failed > 0 ? EXIT.failed : EXIT.notFound;
            return summary.authors.failed > 0 || summary.stoppedBy ? EXIT.partial : EXIT.found;
          } finally {
            progress.stop();
            await ctx.close();
          }
        }),
    );

  addMediaCommand(program, run, (o) => openContext({ ...o, relay: [], relayMode: 'fallback' }, defaultBootstrap));
}
