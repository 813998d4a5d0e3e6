// Blossom BUD-01 reads from the bridge's local media copy (docs/protocol.md §8 "Media"), so a
// Blossom client can list the bridge as a mirror server (kind 10063):
//   GET|HEAD /<sha256>[.<ext>]         the blob's bytes (Range, ETag, Content-Type from the media index)
//   GET|HEAD /media/<sha256>.torrent   its blob torrent (the infohash, and the origin URLs as web seeds)
// Only blobs stored and verified by the media archiver are served; anything else is a 404 with
// Blossom's X-Reason header. The path is matched as a name (64 hex, an optional extension of
// 1–16 letters or digits): nothing in it ever reaches the filesystem.
import { createHash } from 'node:crypto';
import bencode from 'bencode';
import { serveFileSpan } from './file-range.js';
import type { GatewayLinks } from './links.js';
import { sendText, type Route, type RouteRequest } from './routes.js';

/** A verified blob on disk, as the media archiver knows it. */
export interface LocalBlob {
  path: string;
  torrentPath: string;
  bytes: number;
  /** Content-Type recorded when it was fetched (served, or stated by the event), if any. */
  mime?: string;
  infoHash: string;
}

/** What the routes need of the media archive (sidecar/media/media-archiver.ts has it). */
export interface BlobSource {
  blobFile(sha256: string): LocalBlob | undefined;
  blobTorrentBytes(sha256: string): Promise<Buffer | undefined>;
}

const YEAR_SEC = 365 * 86_400;
/** A MIME type as a header may carry it (type/subtype, RFC 9110 tokens), else octet-stream. */
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/** The gateway's exposed headers plus Blossom's X-Reason and the blob's infohash. */
const EXPOSE = 'content-length, content-range, accept-ranges, etag, x-reason, x-infohash';
const reason = (why: string): Record<string, string> => ({
  'x-reason': why.replace(/[^\x20-\x7e]/g, '?').slice(0, 200),
  'access-control-expose-headers': EXPOSE,
});

/** `media` is null while media archiving is off or stopping: every blob is then unknown. */
export function blossomRoutes(media: () => BlobSource | null, links: GatewayLinks): Route[] {
  const lookup = (r: RouteRequest): { sha: string; blob: LocalBlob } | undefined => {
    const sha = r.params.sha!.toLowerCase();
    const blob = media()?.blobFile(sha);
    if (!blob) {
      const why = `no blob ${sha} is stored here`;
      sendText(r.res, 404, `${why}\n`, reason(why));
      return undefined;
    }
    return { sha, blob };
  };
  return [
    {
      name: 'blossom',
      methods: ['GET', 'HEAD'],
      pattern: /^\/(?<sha>[0-9a-fA-F]{64})(?:\.[A-Za-z0-9]{1,16})?$/,
      handler: async (r) => {
        const found = lookup(r);
        if (!found) return;
        const { sha, blob } = found;
        const mime = blob.mime !== undefined && MIME.test(blob.mime) ? blob.mime.toLowerCase() : 'application/octet-stream';
        await serveFileSpan(r, {
          path: blob.path,
          offset: 0,
          length: blob.bytes,
          etag: `"${sha}"`,
          headers: {
            'content-type': mime,
            // A blob's bytes are its name.
            'cache-control': `public, max-age=${YEAR_SEC}, immutable`,
            // Strangers chose these bytes and their type: never sniffed, never scripted on this origin.
            'x-content-type-options': 'nosniff',
            'content-security-policy': "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
            'x-infohash': blob.infoHash,
            'access-control-expose-headers': EXPOSE,
          },
          goneText: `no blob ${sha} is stored here`,
          errorHeaders: reason,
        });
      },
    },
    {
      name: 'media-torrent',
      methods: ['GET', 'HEAD'],
      pattern: /^\/media\/(?<sha>[0-9a-fA-F]{64})\.torrent$/,
      handler: async (r) => {
        const found = lookup(r);
        if (!found) return;
        const { sha, blob } = found;
        let torrent = await media()?.blobTorrentBytes(sha);
        if (!torrent) return sendText(r.res, 404, `no blob ${sha} is stored here\n`, reason(`no blob ${sha} is stored here`));
        if (links.isPublic) torrent = withWebSeedFirst(torrent, `${links.base}/${sha}`);
        r.res.writeHead(200, {
          etag: `"${blob.infoHash}${links.isPublic ? '-ws' : ''}"`,
          'cache-control': 'public, max-age=3600',
          'content-type': 'application/x-bittorrent',
          'content-length': torrent.length,
          'content-disposition': `attachment; filename="${sha}.torrent"`,
        });
        r.res.end(r.req.method === 'HEAD' ? undefined : torrent);
      },
    },
  ];
}

/** The torrent with `url` first in its url-list (the info dict, hence the infohash, unchanged). */
export function withWebSeedFirst(torrent: Buffer, url: string): Buffer {
  const t = bencode.decode(torrent) as { info: unknown; 'url-list'?: Uint8Array[] | Uint8Array };
  const before = createHash('sha1').update(bencode.encode(t.info)).digest('hex');
  const list = t['url-list'] === undefined ? [] : Array.isArray(t['url-list']) ? t['url-list'] : [t['url-list']];
  const seeds = [Buffer.from(url), ...list.filter((u) => Buffer.from(u).toString() !== url)];
  const out = Buffer.from(bencode.encode({ info: t.info, 'url-list': seeds }));
  const after = createHash('sha1')
    .update(bencode.encode((bencode.decode(out) as { info: unknown }).info))
    .digest('hex');
  if (before !== after) throw new Error('re-encoding the blob torrent changed its infohash');
  return out;
}
