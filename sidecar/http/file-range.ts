// Serving a span of a file on disk with HTTP byte ranges (RFC 9110 §14): one range per request
// (206 with Content-Range), 416 with `bytes */<length>` for what cannot be satisfied, If-Range
// and If-None-Match against the ETag. The file is opened only once the answer is decided, and a
// file that disappeared since the lookup (deleted between the index read and the open) is a 404.
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import parseRange from 'range-parser';
import { matchesEtag } from './conditional.js';
import { sendText, type RouteRequest } from './routes.js';

/** More parts than this in one Range header is refused before parsing. */
const MAX_RANGE_PARTS = 16;
const READ_CHUNK = 1024 * 1024;

export interface FileSpanAnswer {
  path: string;
  /** Where the span starts in the file, and its bytes. */
  offset: number;
  length: number;
  etag: string;
  /** Sent with 200, 206 and 304 (content-type, cache-control, …). */
  headers: Record<string, string>;
  /** The 404 text when the file is gone at open. */
  goneText: string;
  /** Extra headers of error answers (Blossom's X-Reason). */
  errorHeaders?: (reason: string) => Record<string, string>;
}

export async function serveFileSpan(r: RouteRequest, a: FileSpanAnswer): Promise<void> {
  const { req, res } = r;
  const headers: Record<string, string | number> = { ...a.headers, etag: a.etag, 'accept-ranges': 'bytes' };
  if (matchesEtag(req, a.etag)) return void res.writeHead(304, headers).end();
  let start = 0;
  let end = a.length - 1;
  let status = 200;
  const range = req.headers.range;
  // If-Range with another validator: the whole file (RFC 9110 §13.1.5).
  const ifRange = req.headers['if-range'];
  if (range !== undefined && (ifRange === undefined || ifRange === a.etag)) {
    const refuse = (why: string) =>
      sendText(res, 416, `${why}\n`, { 'content-range': `bytes */${a.length}`, ...(a.errorHeaders?.(why) ?? {}) });
    if (range.split(',').length > MAX_RANGE_PARTS) return refuse('at most one byte range per request');
    const parsed = parseRange(a.length, range, { combine: true });
    if (parsed === -2) return refuse('malformed Range header (expected bytes=start-end, bytes=start- or bytes=-suffix)');
    if (parsed === -1) return refuse(`range not satisfiable: the file has ${a.length} bytes`);
    if (parsed.type !== 'bytes') return refuse('only byte ranges are served');
    if (parsed.length !== 1) return refuse('at most one byte range per request');
    start = parsed[0]!.start;
    end = parsed[0]!.end;
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${a.length}`;
  }
  const length = a.length === 0 ? 0 : end - start + 1;
  headers['content-length'] = length;
  let fh: FileHandle;
  try {
    fh = await open(a.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return sendText(res, 404, `${a.goneText}\n`, a.errorHeaders?.(a.goneText) ?? {});
    throw err;
  }
  if (req.method === 'HEAD' || length === 0) {
    await fh.close();
    return void res.writeHead(status, headers).end();
  }
  res.writeHead(status, headers);
  const stream = fh.createReadStream({ start: a.offset + start, end: a.offset + end, highWaterMark: READ_CHUNK });
  await pipeline(stream, res).catch(() => {
    if (!res.destroyed) res.destroy();
  });
}
