// The operator's endpoints on status.listen (loopback): /status, /metrics, /healthz.
import type { Logger } from 'pino';
import type { Route } from './routes.js';

export interface StatusSources {
  status(): unknown;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** null while ingest works; else why it is stalled. */
  ingestError(): string | null;
}

export function statusRoutes(src: StatusSources, log: Logger): Route[] {
  return [
    {
      methods: ['GET'],
      pattern: /^\/status$/,
      handler: ({ res }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(src.status()));
      },
    },
    {
      methods: ['GET'],
      pattern: /^\/metrics$/,
      handler: ({ res }) =>
        src.metrics().then(
          (m) => void res.writeHead(200, { 'content-type': m.contentType }).end(m.body),
          (err: Error) => {
            log.error({ err }, 'metrics failed');
            res.writeHead(500).end();
          },
        ),
    },
    {
      methods: ['GET'],
      pattern: /^\/healthz$/,
      handler: ({ res }) => {
        const err = src.ingestError();
        res.writeHead(err === null ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(err === null ? 'ok\n' : `ingest stalled: ${err}\n`);
      },
    },
  ];
}
