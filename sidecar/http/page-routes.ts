// The browser reader at `/` (scripts/reader/browser/, bundled into dist/browser/ by
// scripts/build-browser.ts): its page, script and style, read once at start and served from
// memory with an ETag. A strict Content-Security-Policy keeps the page to this origin: event
// content is only ever text, and images come from the gateway's own blob endpoint.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { notModified } from './conditional.js';
import { sendText, type Route } from './routes.js';

/** dist/browser, next to dist/sidecar. */
export const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'browser');

const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/reader.js': 'reader.js',
  '/reader.css': 'reader.css',
  '/reader.js.LEGAL.txt': 'reader.js.LEGAL.txt',
};

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
};

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  etag: string;
  type: string;
}

function load(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const name of new Set(Object.values(FILES))) {
    let body: Buffer;
    try {
      body = readFileSync(join(dir, name));
    } catch {
      continue;
    }
    out.set(name, {
      body,
      etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 20)}"`,
      type: TYPES[name.split('.').pop()!]!,
    });
  }
  return out;
}

export function pageRoutes(dir = PAGE_DIR): Route[] {
  const assets = load(dir);
  return [
    {
      name: 'page',
      methods: ['GET', 'HEAD'],
      pattern: /^\/(?:index\.html|reader\.js|reader\.css|reader\.js\.LEGAL\.txt)?$/,
      handler: ({ req, res }) => {
        const path = (req.url ?? '/').split('?')[0]!;
        const a = assets.get(FILES[path]!);
        if (!a) return sendText(res, 503, 'the browser page is not built on this gateway (npm run build makes dist/browser)\n');
        // The page may change with an upgrade: revalidated each time; the ETag makes that a 304.
        const headers = {
          etag: a.etag,
          'cache-control': 'no-cache',
          'content-security-policy': CSP,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
        };
        if (notModified(req, res, headers)) return;
        res.writeHead(200, { ...headers, 'content-type': a.type, 'content-length': a.body.length });
        res.end(req.method === 'HEAD' ? undefined : a.body);
      },
    },
  ];
}
