// One HTTP listener serving a route table, with the bounds a public listener needs: connections
// in all and per client address, header and request timeouts (slowloris), an idle timeout for
// kept-alive connections, and a per-client request rate. Behind a reverse proxy, the client is the
// last X-Forwarded-For entry of a request from a trusted proxy address.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { TokenBuckets } from './rate-limit.js';
import { sendText, type RouteTable } from './routes.js';

export interface HttpLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Time to receive a request's headers / whole request, from its first byte (ms). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** A kept-alive connection with no request is closed after this (ms). */
  idleTimeoutMs: number;
  requestsPerSecondPerIp: number;
  burstPerIp: number;
  /** Proxy addresses whose X-Forwarded-For is believed, and which no per-address connection cap limits. */
  trustedProxies: readonly string[];
  /** A connection on which nothing is read or written for this long is closed (a client that stopped reading). */
  stallTimeoutMs: number;
}

export interface HttpServerOptions {
  listen: string;
  table: RouteTable;
  log: Logger;
  /** Without limits: node's defaults (the loopback status listener). */
  limits?: HttpLimits;
  /** Called when a request is refused by a limit (metrics). */
  onRefused?: (why: 'rate' | 'connections') => void;
  /** HTTP upgrades (the WebSocket tracker); returns false for one it does not take (then closed). */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** Called with every request before any limit applies (metrics). */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void;
}

export class HttpServer {
  private constructor(
    private readonly server: Server,
    readonly address: string,
    private readonly open: { count: number },
  ) {}

  /** Connections open now (refused ones are closed at once). */
  get openConnections(): number {
    return this.open.count;
  }

  static async start(opts: HttpServerOptions): Promise<HttpServer> {
    const [host, port] = splitHostPort(opts.listen);
    const limits = opts.limits;
    const buckets = limits ? new TokenBuckets(limits.requestsPerSecondPerIp, limits.burstPerIp) : null;
    const trusted = new Set(limits?.trustedProxies ?? []);
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      opts.onRequest?.(req, res);
      // While a response is sent, a socket on which nothing moves for stallTimeoutMs is closed
      // (the 'timeout' listener below); once it is sent, node sets idleTimeoutMs in its place,
      // and before a request headersTimeoutMs applies.
      if (limits) req.socket.setTimeout(limits.stallTimeoutMs);
      if (buckets && !buckets.take(clientOf(req, trusted))) {
        opts.onRefused?.('rate');
        sendText(res, 429, 'too many requests from this address; slow down\n', { 'retry-after': buckets.retryAfterSec() });
        return;
      }
      opts.table.dispatch(req, res);
    };
    const server = limits
      ? createServer(
          {
            headersTimeout: limits.headersTimeoutMs,
            requestTimeout: limits.requestTimeoutMs,
            keepAliveTimeout: limits.idleTimeoutMs,
            // How often node checks the two timeouts above: a fraction of the shorter one.
            connectionsCheckingInterval: Math.max(100, Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4),
            maxHeaderSize: 16 * 1024,
          },
          handle,
        )
      : createServer(handle);
    const open = { count: 0 };
    server.on('connection', (socket: Socket) => {
      open.count++;
      socket.once('close', () => open.count--);
    });
    if (limits) {
      server.maxConnections = limits.maxConnections;
      const perIp = new Map<string, number>();
      server.on('connection', (socket: Socket) => {
        // Node emits 'timeout' on a socket whose write is blocked, but does not close it itself.
        socket.on('timeout', () => socket.destroy());
        const ip = socket.remoteAddress ?? '';
        if (trusted.has(ip)) return;
        const n = (perIp.get(ip) ?? 0) + 1;
        if (n > limits.maxConnectionsPerIp) {
          opts.onRefused?.('connections');
          socket.destroy();
          return;
        }
        perIp.set(ip, n);
        socket.once('close', () => {
          const left = (perIp.get(ip) ?? 1) - 1;
          if (left > 0) perIp.set(ip, left);
          else perIp.delete(ip);
        });
      });

      server.on('drop', () => opts.onRefused?.('connections'));
    }
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!opts.onUpgrade?.(req, socket, head)) socket.destroy();
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? '408 Request Timeout'
            : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    opts.log.debug({ address: `${addr.address}:${addr.port}` }, 'HTTP listening');
    return new HttpServer(server, `${addr.address}:${addr.port}`, open);
  }

  /** Stops listening and closes every connection, idle or not (a stop does not wait for downloads). */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** The client's address: the socket's, or the proxy's last X-Forwarded-For entry. */
function clientOf(req: IncomingMessage, trusted: ReadonlySet<string>): string {
  const ip = req.socket.remoteAddress ?? '';
  if (!trusted.has(ip)) return ip;
  const xff = req.headers['x-forwarded-for'];
  const list = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',');
  const last = list[list.length - 1]!.trim();
  return last === '' ? ip : last.slice(0, 64);
}

export function splitHostPort(hp: string): [string, number] {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i), Number(hp.slice(i + 1))];
}
