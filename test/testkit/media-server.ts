// A real HTTP media server on loopback standing in for a Blossom server (BUD-01: GET/HEAD
// /<sha256>[.ext], single-range Range requests), plus hand-written routes for hostile behaviour.
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface MediaServer {
  port: number;
  host: string;
  /** `http://<host>:<port><path>` (path starts with '/'), or the blob URL for a sha256. */
  url(pathOrSha: string, ext?: string): string;
  /** Adds a blob; returns its sha256. */
  add(bytes: Uint8Array, mime?: string): string;
  /** A custom handler for one path (tried before blobs). */
  route(path: string, handler: http.RequestListener): void;
  /** Requests seen per path. */
  hits: Map<string, number>;
  /** Body bytes written for blobs. */
  blobBytesSent: number;
  close(): Promise<void>;
}

export async function mediaServer(host = '127.0.0.1'): Promise<MediaServer> {
  const blobs = new Map<string, { bytes: Uint8Array; mime: string }>();
  const routes = new Map<string, http.RequestListener>();
  const hits = new Map<string, number>();
  const state = { blobBytesSent: 0 };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const custom = routes.get(path);
    if (custom) return custom(req, res);
    const m = /^\/([0-9a-f]{64})(?:\.[a-z0-9]+)?$/.exec(path);
    const blob = m ? blobs.get(m[1]!) : undefined;
    if (!blob || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const size = blob.bytes.length;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && (range[1] !== '' || range[2] !== '')) {
      if (range[1] === '') start = Math.max(0, size - Number(range[2]));
      else {
        start = Number(range[1]);
        if (range[2] !== '') end = Math.min(end, Number(range[2]));
      }
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    const headers: http.OutgoingHttpHeaders = {
      'content-type': blob.mime,
      'content-length': end - start + 1,
      'accept-ranges': 'bytes',
      'access-control-allow-origin': '*',
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    const body = blob.bytes.subarray(start, end + 1);
    state.blobBytesSent += body.length;
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host,
    url: (p, ext) => `http://${host}:${port}${/^[0-9a-f]{64}$/.test(p) ? `/${p}${ext ?? ''}` : p}`,
    add(bytes, mime = 'application/octet-stream') {
      const sha = createHash('sha256').update(bytes).digest('hex');
      blobs.set(sha, { bytes, mime });
      return sha;
    },
    route: (p, h) => void routes.set(p, h),
    hits,
    get blobBytesSent() {
      return state.blobBytesSent;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
