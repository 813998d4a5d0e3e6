// The HTTP route table: method + path pattern → handler, matched in order on the request's raw
// path (percent-escapes undecoded, so an escaped "/" or ".." never reaches a handler as a path
// separator). A path that matches with another method gets 405 and an Allow header; no match, 404.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** Named groups of the route's pattern. */
  params: Record<string, string>;
  /** The query string, parsed. */
  query: URLSearchParams;
}

export type Handler = (r: RouteRequest) => void | Promise<void>;

export interface Route {
  /** The route's name in the gateway's counters (unnamed routes count as `other`). */
  name?: string;
  methods: readonly string[];
  /** Matched against the whole path (anchor it with ^ and $). */
  pattern: RegExp;
  handler: Handler;
}

export class RouteTable {
  constructor(
    private readonly routes: readonly Route[],
    private readonly log: Logger,
    private readonly opts: {
      /** Set on every response (CORS headers of the gateway). */
      headers?: Readonly<Record<string, string>>;
      /** Answers OPTIONS on any path (CORS preflight); without it OPTIONS is a method like others. */
      preflight?: Handler;
    } = {},
  ) {}

  dispatch(req: IncomingMessage, res: ServerResponse): void {
    for (const [k, v] of Object.entries(this.opts.headers ?? {})) res.setHeader(k, v);
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    if (req.method === 'OPTIONS' && this.opts.preflight) {
      this.run(this.opts.preflight, { req, res, params: {}, query });
      return;
    }
    const allowed = new Set<string>();
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      if (!route.methods.includes(req.method ?? '')) {
        for (const method of route.methods) allowed.add(method);
        continue;
      }
      this.run(route.handler, { req, res, params: { ...m.groups }, query });
      return;
    }
    if (allowed.size > 0) sendText(res, 405, 'method not allowed\n', { allow: [...allowed].join(', ') });
    else sendText(res, 404, 'not found\n');
  }

  /** The name `dispatch` counts `req` under: its route's, `preflight`, or `unmatched` (404 or 405). */
  routeName(req: IncomingMessage): string {
    if (req.method === 'OPTIONS' && this.opts.preflight) return 'preflight';
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    for (const route of this.routes) {
      if (route.methods.includes(req.method ?? '') && route.pattern.test(path)) return route.name ?? 'other';
    }
    return 'unmatched';
  }

  private run(handler: Handler, r: RouteRequest): void {
    const fail = (err: unknown) => {
      this.log.error({ err, url: r.req.url?.slice(0, 200) }, 'HTTP handler failed');
      if (!r.res.headersSent) sendText(r.res, 500, 'internal error\n');
      else r.res.destroy();
    };
    try {
      const p = handler(r);
      if (p) p.catch(fail);
    } catch (err) {
      fail(err);
    }
  }
}

/** A short plain-text answer (errors say what was wrong, in one line). */
export function sendText(res: ServerResponse, status: number, body: string, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
