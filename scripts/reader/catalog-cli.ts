// `nostr-bt catalog --bridge <key>`: a bridge's catalog (docs/protocol.md §11) read from the DHT and
// the swarm, every bundle it names checked against that bundle's metadata; and `nostr-bt restore`
// (restore.ts), which replays a whole bridge into strfry.
import type { Command } from 'commander';
import { catalogHeader } from '../../sidecar/formats/catalog.js';
import { parseBytes, parseCount, parseSeconds, parseTime } from './cli-options.js';
import { readCatalog, DEFAULT_CATALOG_LIMITS, type CatalogLimits } from './catalog-read.js';
import { InputError, parseBridgeKey } from './keys.js';
import { EXIT, openContext, run, writeOut, type CommonOpts } from './reader-cli.js';
import { restoreBridge, restoreText } from './restore.js';

interface ReadOpts {
  bridge?: string;
  bootstrap?: string;
  bind?: string;
  dhtNodeRate: string;
  dhtQueryTimeout: string;
  tmpDir?: string;
  utp?: boolean;
  itemTimeout?: string;
  catalogTimeout?: string;
  bundleTimeout?: string;
  maxCatalogBytes?: string;
  maxBundles?: string;
  concurrency?: string;
}

/** The options catalog and restore share: where the DHT is, and how much of a catalog to accept. */
export function addCatalogOptions(cmd: Command): Command {
  return cmd
    .option('-b, --bridge <key>', 'bridge public key (hex or z-base-32, from `nostr-bt key` on the bridge)')
    .option('--bootstrap <host:port,...>', 'DHT bootstrap nodes (default: dht.bootstrap from the config, the Mainline routers)')
    .option('--bind <address>', "address the reader's DHT node binds", '0.0.0.0')
    .option('--dht-node-rate <n>', 'DHT packets per second to any one node (libtorrent nodes ban more than 5)', '5')
    .option('--dht-query-timeout <s>', 'how long one DHT query waits for an answer', '2')
    .option('--tmp-dir <dir>', 'where downloaded pieces are kept while reading (removed at the end)')
    .option('--utp', 'connect to peers over uTP first (default TCP)')
    .option('--item-timeout <s>', `the bridge item's DHT get (default ${DEFAULT_CATALOG_LIMITS.itemTimeoutMs / 1000})`)
    .option('--catalog-timeout <s>', `fetching the catalog (default ${DEFAULT_CATALOG_LIMITS.catalogTimeoutMs / 1000})`)
    .option('--bundle-timeout <s>', `per bundle (default ${DEFAULT_CATALOG_LIMITS.bundleTimeoutMs / 1000})`)
    .option('--max-catalog-bytes <size>', `largest catalog accepted (default ${DEFAULT_CATALOG_LIMITS.maxCatalogBytes / 1024 ** 2}M)`)
    .option('--max-bundles <n>', `most bundles a catalog may list (default ${DEFAULT_CATALOG_LIMITS.maxBundles})`)
    .option('--concurrency <n>', `bundles read at once (default ${DEFAULT_CATALOG_LIMITS.concurrency})`);
}

export function parseCatalogOptions(o: ReadOpts): { bridge: Buffer; limits: Partial<CatalogLimits> } {
  if (!o.bridge) throw new InputError('give the bridge: --bridge <key>');
  const bridge = parseBridgeKey(o.bridge);
  const limits: Partial<CatalogLimits> = {};
  if (o.itemTimeout) limits.itemTimeoutMs = parseSeconds('--item-timeout', o.itemTimeout);
  if (o.catalogTimeout) limits.catalogTimeoutMs = parseSeconds('--catalog-timeout', o.catalogTimeout);
  if (o.bundleTimeout) limits.bundleTimeoutMs = parseSeconds('--bundle-timeout', o.bundleTimeout);
  if (o.maxCatalogBytes) limits.maxCatalogBytes = parseBytes('--max-catalog-bytes', o.maxCatalogBytes);
  if (o.maxBundles) limits.maxBundles = Math.max(1, parseCount('--max-bundles', o.maxBundles, 10_000_000));
  if (o.concurrency) limits.concurrency = Math.max(1, parseCount('--concurrency', o.concurrency, 64));
  return { bridge, limits };
}

/** The reader context as resolve opens it (the options are a subset of resolve's). */
export function contextOf(o: ReadOpts, defaultBootstrap: () => string[]) {
  return openContext({ ...(o as unknown as CommonOpts), bridge: [], relay: [], relayMode: 'fallback', summary: 'none' }, defaultBootstrap);
}

export function registerCatalogCommands(program: Command, defaultBootstrap: () => string[]): void {
  addCatalogOptions(
    program
      .command('catalog')
      .description(
        "a bridge's catalog: its active bundles and the authors each holds, from the DHT and the swarm, each bundle checked against its own metadata",
      )
      .option('--no-verify', 'do not check the bundles against their metadata (only the catalog itself)')
      .option('--format <format>', 'text (a summary and one line per bundle) or json (the catalog with the checks)', 'text'),
  )
    .addHelpText(
      'after',
      '\nExit status: 0 catalog read and every bundle matches; 1 no bridge item or no catalog; 2 bad input;\n3 failed (no DHT node, catalog unreachable or invalid); 4 some bundle could not be checked or does not match.',
    )
    .action((o: ReadOpts & { verify: boolean; format: string }) =>
      run('catalog', async () => {
        const { bridge, limits } = parseCatalogOptions(o);
        if (o.format !== 'text' && o.format !== 'json') throw new InputError(`--format: text or json, not ${JSON.stringify(o.format)}`);
        const ctx = await contextOf(o, defaultBootstrap);
        try {
          const r = await readCatalog(ctx, bridge, { verify: o.verify, limits });
          if (r.status !== 'found') {
            process.stderr.write(`nostr-bt catalog: ${r.status}: ${r.detail}\n`);
            return r.status === 'no-item' || r.status === 'no-catalog' ? EXIT.notFound : EXIT.failed;
          }
          const h = catalogHeader(r.catalog);
          const bad = (r.checks ?? []).filter((c) => !c.ok);
          if (o.format === 'json') {
            await writeOut(
              JSON.stringify({
                bridge: r.bridge,
                seq: r.item.seq,
                infoHash: r.infoHash,
                header: h,
                bundles: r.catalog.bundles,
                checks: r.checks ?? null,
              }) + '\n',
            );
          } else {
            let text = `bridge ${r.bridge} (item seq ${r.item.seq})\ncatalog ${r.infoHash}: ${h.bundles} bundles, ${h.authors} authors, ${h.events} events, ${h.bytes} bytes\n`;
            r.catalog.bundles.forEach((b, i) => {
              const c = r.checks?.[i];
              const mark = !c ? 'unchecked' : c.ok ? 'ok' : `${c.reason}: ${c.detail}`;
              text += `${b.ih}  level ${b.level}  ${new Date(b.start * 1000).toISOString()}  ${b.events} events  ${b.authors.length} authors  ${b.bytes} bytes  ${mark}\n`;
            });
            await writeOut(text);
          }
          if (r.checks) process.stderr.write(`${r.checks.length - bad.length} of ${r.checks.length} bundles match their metadata\n`);
          return bad.length > 0 ? EXIT.partial : EXIT.found;
        } finally {
          await ctx.close();
        }
      }),
    );
}

export function registerRestoreCommand(program: Command, defaultBootstrap: () => string[]): void {
  addCatalogOptions(
    program
      .command('restore')
      .description(
        "every verified event of every author in a bridge's catalog into `strfry import` (or a JSONL file): a relay's database rebuilt from the archive",
      )
      .option('--since <time>', 'only events created at or after (unix seconds or ISO date)')
      .option('--strfry <path>', 'strfry executable', 'strfry')
      .option('--strfry-config <file>', 'strfry.conf of the database to import into')
      .option('--out <file>', 'append the events to this JSONL file instead of running strfry')
      .option(
        '--state <file>',
        'where the files already delivered are listed (a rerun skips them; default: <out or strfry config>.restore-<bridge>.json)',
      )
      .option('--file-timeout <s>', 'per author file (default 60)')
      .option('--max-file-bytes <size>', 'largest author file downloaded (default 256M)')
      .option('--progress', 'show progress on stderr even when it is not a terminal')
      .option('--summary <format>', 'summary on stderr: text, json or none', 'text'),
  )
    .addHelpText(
      'after',
      '\nExit status: 0 every file delivered; 1 no bridge item or no catalog; 2 bad input; 3 failed (no DHT node,\ncatalog unreachable or invalid, strfry import failed); 4 some files could not be read (run it again to resume).',
    )
    .action(
      (
        o: Parameters<typeof parseCatalogOptions>[0] & {
          since?: string;
          strfry: string;
          strfryConfig?: string;
          out?: string;
          state?: string;
          fileTimeout?: string;
          maxFileBytes?: string;
          progress?: boolean;
          summary: string;
        },
      ) =>
        run('restore', async () => {
          const { bridge, limits } = parseCatalogOptions(o);
          if (!o.out && !o.strfryConfig)
            throw new InputError('give --strfry-config <file> (the strfry.conf of the database to import into) or --out <file>');
          if (o.out && o.strfryConfig) throw new InputError('--out and --strfry-config: give one of them');
          if (o.summary !== 'text' && o.summary !== 'json' && o.summary !== 'none')
            throw new InputError(`--summary: text, json or none, not ${JSON.stringify(o.summary)}`);
          const since = o.since !== undefined ? parseTime('--since', o.since) : undefined;
          const statePath = o.state ?? `${o.out ?? o.strfryConfig}.restore-${bridge.toString('hex').slice(0, 16)}.json`;
          const ctx = await contextOf(o, defaultBootstrap);
          try {
            const s = await restoreBridge(ctx, {
              bridge,
              since,
              sink: o.out ? { kind: 'file', path: o.out } : { kind: 'strfry', strfry: o.strfry, config: o.strfryConfig! },
              statePath,
              limits,
              fileTimeoutMs: o.fileTimeout ? parseSeconds('--file-timeout', o.fileTimeout) : 60_000,
              maxFileBytes: o.maxFileBytes ? parseBytes('--max-file-bytes', o.maxFileBytes) : 256 * 1024 ** 2,
              maxEventBytes: 1024 * 1024,
              concurrency: limits.concurrency ?? 4,
              progress: Boolean(o.progress) || process.stderr.isTTY === true,
            });
            if (o.summary === 'json') process.stderr.write(JSON.stringify(s) + '\n');
            else if (o.summary === 'text') process.stderr.write(restoreText(s));
            if (s.error) return /^(no-item|no-catalog)/.test(s.error) ? EXIT.notFound : EXIT.failed;
            if (!s.sink.ok) return EXIT.failed;
            return s.files.failed > 0 ? EXIT.partial : EXIT.found;
          } finally {
            await ctx.close();
          }
        }),
    );
}
