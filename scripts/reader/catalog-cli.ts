// `nostr-bt catalog --bridge <key>`: a bridge's catalog (docs/protocol.md §9) read from the DHT and
// the swarm, every bundle it names checked against that bundle's metadata; and `nostr-bt restore`
// (restore.ts), which replays a whole bridge into strfry.
import type { Command } from 'commander';
import { catalogHeader } from '../../sidecar/formats/catalog.js';
import { parseBytes, parseCount, parseSeconds } from './cli-options.js';
import { readCatalog, DEFAULT_CATALOG_LIMITS, type CatalogLimits } from './catalog-read.js';
import { InputError, parseBridgeKey } from './keys.js';
import { EXIT, openContext, run, writeOut, type CommonOpts } from './reader-cli.js';

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
      .description("a bridge's catalog: its active bundles and the authors each holds, from the DHT and the swarm, each bundle checked against its own metadata")
      .option('--no-verify', 'do not check the bundles against their metadata (only the catalog itself)')
      .option('--format <format>', 'text (a summary and one line per bundle) or json (the catalog with the checks)', 'text'),
  )
    .addHelpText('after', '\nExit status: 0 catalog read and every bundle matches; 1 no bridge item or no catalog; 2 bad input;\n3 failed (no DHT node, catalog unreachable or invalid); 4 some bundle could not be checked or does not match.')
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
            await writeOut(JSON.stringify({ bridge: r.bridge, seq: r.item.seq, infoHash: r.infoHash, header: h, bundles: r.catalog.bundles, checks: r.checks ?? null }) + '\n');
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
