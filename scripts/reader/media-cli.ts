// `nostr-bt media <sha256>`: one media blob, from the swarm first, then web seeds and origin
// URLs, written out only once its sha256 is verified (media-fetch.ts). Where the infohash comes
// from: a bridge's gateway (`--gateway`: its /media/<sha256>.torrent), the author's media list
// named by their pointer (`--author` with `--bridge`, media-list.ts), or a magnet / infohash.
import type { Command } from 'commander';
import { collect, parseBytes, parseSeconds } from './cli-options.js';
import { DhtUnreachable } from './errors.js';
import { InputError, parseAuthorKey, parseBridgeKey } from './keys.js';
import {
  fetchMedia,
  gatewayBlobTorrent,
  isHttpUrl,
  parseMagnet,
  readBlobTorrent,
  type MediaAttempt,
  type MediaFetchResult,
} from './media-fetch.js';
import { findInMediaLists } from './media-list.js';
import type { ReaderContext } from './reader-context.js';

export interface MediaCliOpts {
  out: string;
  gateway: string[];
  magnet?: string;
  infohash?: string;
  url: string[];
  author?: string;
  bridge: string[];
  bootstrap?: string;
  bind: string;
  dhtNodeRate: string;
  dhtQueryTimeout: string;
  utp?: boolean;
  maxBytes?: string;
  swarmTimeout?: string;
  stallTimeout?: string;
  httpTimeout?: string;
  summary: string;
}

export const MEDIA_EXIT_HELP = `
Exit status: 0 the blob was written (its sha256 verified), 1 no source had it, 2 bad input,
3 failed (nothing to ask: no infohash and no URL, or an unexpected error).`;

export function addMediaCommand(
  program: Command,
  run: (name: string, body: () => Promise<number>) => Promise<void>,
  openContext: (o: MediaCliOpts) => Promise<ReaderContext>,
): void {
  program
    .command('media <sha256>')
    .description(
      "one media blob by its sha256: from the swarm first (infohash from a gateway, the author's media list or a magnet), then web seeds and origin URLs; written only once its sha256 is verified",
    )
    .option('-o, --out <file>', 'where to write it (default stdout)', '-')
    .option(
      '-g, --gateway <url>',
      "a bridge's gateway (http(s)://…): its blob torrent gives the infohash and web seeds; repeatable",
      collect,
      [],
    )
    .option('--magnet <uri>', 'the blob torrent as a magnet link (xt=urn:btih:…, ws= web seeds)')
    .option('--infohash <hex>', "the blob torrent's infohash (40 hex)")
    .option('-u, --url <url>', 'an origin URL to try after the swarm; repeatable', collect, [])
    .option('-a, --author <key>', "look the blob up in this author's media list (needs --bridge)")
    .option('-b, --bridge <key>', 'bridge public key for --author; repeatable', collect, [])
    .option('--bootstrap <host:port,...>', 'DHT bootstrap nodes (default: dht.bootstrap from the config, the Mainline routers)')
    .option('--bind <address>', "address the reader's DHT node binds", '0.0.0.0')
    .option('--dht-node-rate <n>', 'DHT packets per second to any one node', '5')
    .option('--dht-query-timeout <s>', 'how long one DHT query waits for an answer', '2')
    .option('--utp', 'connect to peers over uTP first')
    .option('--max-bytes <size>', 'largest blob taken (default 1G)')
    .option('--swarm-timeout <s>', 'deadline of the swarm part (default 120)')
    .option('--stall-timeout <s>', 'leave the swarm for HTTP after this long without a new piece (default 20)')
    .option('--http-timeout <s>', 'deadline per URL (default 120)')
    .option('--summary <format>', 'summary on stderr: text, json or none', 'text')
    .addHelpText('after', MEDIA_EXIT_HELP)
    .action((shaArg: string, o: MediaCliOpts) =>
      run('media', async () => {
        const sha256 = shaArg.toLowerCase();
        if (!/^[0-9a-f]{64}$/.test(sha256))
          throw new InputError(`not a sha256: ${JSON.stringify(shaArg.slice(0, 100))} (expected 64 hex characters)`);
        if (o.summary !== 'text' && o.summary !== 'json' && o.summary !== 'none')
          throw new InputError(`--summary: text, json or none, not ${JSON.stringify(o.summary)}`);
        for (const u of [...o.url, ...o.gateway])
          if (!isHttpUrl(u)) throw new InputError(`not an http(s) URL: ${JSON.stringify(u.slice(0, 200))}`);
        if (o.infohash !== undefined && !/^[0-9a-fA-F]{40}$/.test(o.infohash)) throw new InputError('--infohash: 40 hex characters');
        if (o.author !== undefined && o.bridge.length === 0) throw new InputError('--author needs --bridge <key>');
        const author = o.author !== undefined ? parseAuthorKey(o.author) : undefined;
        const bridges = o.bridge.map(parseBridgeKey);
        const magnet = o.magnet !== undefined ? parseMagnet(o.magnet) : undefined;
        const limits = {
          ...(o.maxBytes ? { maxBytes: parseBytes('--max-bytes', o.maxBytes) } : {}),
          ...(o.swarmTimeout ? { swarmTimeoutMs: parseSeconds('--swarm-timeout', o.swarmTimeout) } : {}),
          ...(o.stallTimeout ? { stallTimeoutMs: parseSeconds('--stall-timeout', o.stallTimeout) } : {}),
          ...(o.httpTimeout ? { httpTimeoutMs: parseSeconds('--http-timeout', o.httpTimeout) } : {}),
        };
        const notes: MediaAttempt[] = [];
        let infoHash = o.infohash?.toLowerCase() ?? magnet?.infoHash;
        let torrent: Buffer | undefined;
        const urls: string[] = [];
        for (const gw of o.gateway) {
          try {
            const t = await gatewayBlobTorrent(gw, sha256);
            if (!t) {
              notes.push({ source: gw, ok: false, reason: 'not-found', detail: 'the gateway has no such blob', bytes: 0, ms: 0 });
              continue;
            }
            const parsed = readBlobTorrent(t, sha256);
            torrent ??= t;
            infoHash ??= parsed.infoHash;
            urls.push(...parsed.webSeeds);
          } catch (err) {
            notes.push({ source: gw, ok: false, reason: 'gateway', detail: (err as Error).message, bytes: 0, ms: 0 });
          }
        }
        urls.push(...(magnet?.webSeeds ?? []), ...o.url);
        let ctx: ReaderContext | null = null;
        try {
          if (author !== undefined || infoHash !== undefined) {
            try {
              ctx = await openContext(o);
            } catch (err) {
              if (!(err instanceof DhtUnreachable)) throw err;
              notes.push({ source: 'swarm', ok: false, reason: 'no-dht', detail: err.message, bytes: 0, ms: 0 });
            }
          }
          if (ctx && author !== undefined && infoHash === undefined) {
            const found = await findInMediaLists(ctx, bridges, author, sha256, {
              maxListBytes: 16 * 1024 * 1024,
              timeoutMs: limits.swarmTimeoutMs ?? 60_000,
            });
            notes.push(...found.attempts);
            if (found.entry) infoHash = found.entry.ih;
          }
          if (infoHash === undefined && urls.length === 0) {
            process.stderr.write('nostr-bt media: nothing to ask: give --gateway, --author with --bridge, --magnet, --infohash or --url\n');
            if (o.summary === 'json') process.stderr.write(JSON.stringify({ ok: false, sha256, attempts: notes }) + '\n');
            return notes.length > 0 ? 1 : 3;
          }
          const r = await fetchMedia(ctx?.fetcher.client ?? null, ctx?.dht ?? null, {
            sha256,
            out: o.out,
            ...(infoHash ? { infoHash } : {}),
            ...(torrent ? { torrent } : {}),
            urls,
            ...limits,
          });
          r.attempts.unshift(...notes);
          summarize(r, o.summary);
          return r.ok ? 0 : 1;
        } finally {
          await ctx?.close();
        }
      }),
    );
}

function summarize(r: MediaFetchResult, format: string): void {
  if (format === 'json') return void process.stderr.write(JSON.stringify(r) + '\n');
  if (format === 'none') return;
  let s = '';
  for (const a of r.attempts)
    s += `  ${a.source}: ${a.ok ? `ok, ${a.bytes} bytes in ${a.ms} ms` : `${a.reason}${a.detail ? ` (${a.detail})` : ''}`}\n`;
  process.stderr.write(
    r.ok
      ? `blob ${r.sha256}: ${r.bytes} bytes from ${r.source === 'swarm' ? 'the swarm' : r.url}, sha256 verified\n${s}`
      : `blob ${r.sha256}: no source had it\n${s}`,
  );
}
