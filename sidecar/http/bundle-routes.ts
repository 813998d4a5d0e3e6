// GET /torrent/<infohash>.torrent and the BEP-19 web seed of every seeded bundle:
//   /webseed/<infohash>/                         the data file (a single-file torrent's URL)
//   /webseed/<infohash>/<torrent name>/<pubkey>.jsonl   one author's file (multi-file torrents)
//   /webseed/<infohash>/<torrent name>           a one-file bundle's data, as libtorrent asks for it
// WebTorrent joins the url-list entry and "/<name>/<path>" with a slash of its own, so runs of
// slashes count as one. Paths are matched as names, never joined onto the filesystem.
import type { ServerResponse } from 'node:http';
import parseRange from 'range-parser';
import type { BundleLookup, FileSpan, SeededBundle } from './bundle-lookup.js';
import { notModified, matchesEtag } from './conditional.js';
import { readFully, type DataFiles } from './data-files.js';
import type { GatewayStats } from './gateway-stats.js';
import { infoHash } from './keys.js';
import { withUrlList, type GatewayLinks } from './links.js';
import { sendText, type Route, type RouteRequest } from './routes.js';

/** More parts than this in one Range header is refused before parsing. */
const MAX_RANGE_PARTS = 16;
/** Largest read from a data file (fewer, larger reads: the web seed's throughput); smaller spans are one read. */
const READ_CHUNK = 1024 * 1024;
const YEAR_SEC = 365 * 86_400;

export function bundleRoutes(bundles: BundleLookup, links: GatewayLinks, io: { files: DataFiles; stats: GatewayStats }): Route[] {
  const seededOr404 = (r: RouteRequest): SeededBundle | undefined => {
    const ih = infoHash(r.params.ih!);
    if (!ih) {
      sendText(r.res, 400, 'not an infohash: expected 40 hex characters\n');
      return undefined;
    }
    const b = bundles.seeded(ih);
    if (!b) sendText(r.res, 404, `no bundle ${ih} is seeded here\n`);
    return b;
  };

  return [
    {
      name: 'torrent',
      methods: ['GET', 'HEAD'],
      pattern: /^\/torrent\/(?<ih>[^/]+)\.torrent$/,
      handler: async (r) => {
        const b = seededOr404(r);
        if (!b) return;
        const headers = { etag: `"${b.ih}${links.isPublic ? '-ws' : ''}"`, 'cache-control': 'public, max-age=3600' };
        if (notModified(r.req, r.res, headers)) return;
        let torrent: Buffer;
        try {
          torrent = await bundles.torrent(b.ih);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return sendText(r.res, 404, `no bundle ${b.ih} is seeded here\n`);
          throw err;
        }
        if (links.isPublic) torrent = withUrlList(torrent, links.webSeed(b.ih));
        r.res.writeHead(200, {
          ...headers,
          'content-type': 'application/x-bittorrent',
          'content-length': torrent.length,
          'content-disposition': `attachment; filename="${b.name}.torrent"`,
        });
        r.res.end(r.req.method === 'HEAD' ? undefined : torrent);
      },
    },
    {
      name: 'webseed',
      methods: ['GET', 'HEAD'],
      pattern: /^\/webseed\/(?<ih>[^/]+)(?<rest>\/.*)?$/,
      handler: async (r) => {
        const b = seededOr404(r);
        if (!b) return;
        const rest = (r.params.rest ?? '').replace(/\/{2,}/g, '/').replace(/^\//, '');
        let span: FileSpan | undefined;
        let tag: string;
        if (rest === '') {
          span = { offset: 0, length: b.bytes };
          tag = b.ih;
        } else {
          let parts: string[];
          try {
            parts = rest.split('/').map(decodeURIComponent);
          } catch {
            return sendText(r.res, 400, 'malformed percent-encoding in the path\n');
          }
          const m = parts.length === 2 && parts[0] === b.name ? /^([0-9a-f]{64})\.jsonl$/.exec(parts[1]!) : null;
          if (m) {
            span = bundles.authorFile(b.ih, m[1]!);
            tag = `${b.ih}-${m[1]}`;
          } else if (parts.length === 1 && parts[0] === b.name && b.authors === 1) {
            // libtorrent takes a one-file list for a single-file torrent and asks for <base>/<name>.
            span = { offset: 0, length: b.bytes };
            tag = b.ih;
          } else tag = '';
          if (!span) return sendText(r.res, 404, `bundle ${b.ih} has no file ${rest.slice(0, 200)} (files are ${b.name}/<pubkey>.jsonl)\n`);
        }
        await serveSpan(r, b, span, `"${tag}"`, io);
      },
    },
  ];
}

async function serveSpan(
  r: RouteRequest,
  b: SeededBundle,
  span: FileSpan,
  etag: string,
  io: { files: DataFiles; stats: GatewayStats },
): Promise<void> {
  const { req, res } = r;
  const headers: Record<string, string | number> = {
    etag,
    'accept-ranges': 'bytes',
    // A bundle's bytes never change: a rewrite is another infohash.
    'cache-control': `public, max-age=${YEAR_SEC}, immutable`,
    'content-type': 'application/octet-stream',
  };
  if (matchesEtag(req, etag)) return void res.writeHead(304, headers).end();
  let start = 0;
  let end = span.length - 1;
  let status = 200;
  const range = req.headers.range;
  // If-Range with another validator: the whole file (RFC 9110 §13.1.5).
  const ifRange = req.headers['if-range'];
  if (range !== undefined && (ifRange === undefined || ifRange === etag)) {
    const refuse = (why: string) => sendText(res, 416, `${why}\n`, { 'content-range': `bytes */${span.length}` });
    if (range.split(',').length > MAX_RANGE_PARTS) return refuse(`at most one byte range per request`);
    const parsed = parseRange(span.length, range, { combine: true });
    if (parsed === -2) return refuse('malformed Range header (expected bytes=start-end, bytes=start- or bytes=-suffix)');
    if (parsed === -1) return refuse(`range not satisfiable: the file has ${span.length} bytes`);
    if (parsed.type !== 'bytes') return refuse('only byte ranges are served');
    if (parsed.length !== 1) return refuse('at most one byte range per request');
    start = parsed[0]!.start;
    end = parsed[0]!.end;
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${span.length}`;
  }
  const length = span.length === 0 ? 0 : end - start + 1;
  headers['content-length'] = length;
  if (req.method === 'HEAD' || length === 0) return void res.writeHead(status, headers).end();
  try {
    await io.files.with(b.dataPath, async (fh) => {
      // Straight from the file into the response, one buffer per read, no stream in between; the
      // first read comes before the headers, so a broken file is still a 500.
      const from = span.offset + start;
      let sent = 0;
      while (sent < length && !res.destroyed) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, length - sent));
        await readFully(fh, buf, from + sent);
        if (sent === 0) res.writeHead(status, headers);
        sent += buf.length;
        io.stats.webSeedSent(buf.length);
        if (sent === length) res.end(buf);
        else if (!res.write(buf)) await drained(res);
      }
    });
  } catch (err) {
    // Retired (and deleted) between the index read and the open.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !res.headersSent)
      return sendText(res, 404, `no bundle ${b.ih} is seeded here\n`);
    throw err;
  }
}

/** Until the response can take more, or the client is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
