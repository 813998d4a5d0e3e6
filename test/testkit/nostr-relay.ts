// A real Nostr relay for tests and benchmarks: @nostr-relay/core (the relay engine behind
// nostr-relay-tray and nostr-relay-nestjs) with its SQLite event repository and message
// validator, served over `ws` on 127.0.0.1 exactly as its README wires it. It verifies
// signatures on EVENT, stores, and answers REQ with its own filter matching and limits.
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { AbstractRelay } from 'nostr-tools/abstract-relay';
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';

// CommonJS packages; loaded through require so their typings stay out of the project's build.
const require = createRequire(import.meta.url);
// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).
const { NostrRelay } = require('@nostr-relay/core') as { NostrRelay: new (repo: unknown, opts?: unknown) => any };
const { EventRepositorySqlite } = require('@nostr-relay/event-repository-sqlite') as {
  EventRepositorySqlite: new (file?: string, opts?: unknown) => any;
};
const { Validator } = require('@nostr-relay/validator') as {
  Validator: new () => { validateIncomingMessage(data: unknown): Promise<unknown> };
};
const { createOutgoingNoticeMessage } = require('@nostr-relay/common') as { createOutgoingNoticeMessage(msg: string): unknown };

export interface TestRelay {
  url: string;
  /** Publishes events over the WebSocket as any client would (EVENT, waits for OK). */
  publish(events: NostrEvent[]): Promise<void>;
  /** Stores events straight into the relay's repository (benchmark setup: fast, no signature check). */
  preload(events: NostrEvent[]): Promise<void>;
  /** Bytes the relay sent to clients (WebSocket payloads), since start or the last reset. */
  sentBytes(): number;
  resetCounters(): void;
  stop(): Promise<void>;
}

export async function startTestRelay(opts: { defaultLimit?: number } = {}): Promise<TestRelay> {
  const repo = new EventRepositorySqlite(':memory:', opts.defaultLimit ? { defaultLimit: opts.defaultLimit } : undefined);
  await repo.init();
  // logLevel 3 = WARN: the relay logs every connection at INFO.
  const relay = new NostrRelay(repo, { logLevel: 3 });
  const validator = new Validator();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  let sent = 0;
  wss.on('connection', (ws: WebSocket) => {
    const send = ws.send.bind(ws);
    ws.send = ((data: unknown, ...rest: unknown[]) => {
      sent += typeof data === 'string' ? Buffer.byteLength(data) : ((data as Buffer).length ?? 0);
      return (send as (...a: unknown[]) => void)(data, ...rest);
    }) as typeof ws.send;
    relay.handleConnection(ws);
    ws.on('message', async (data) => {
      try {
        const message = await validator.validateIncomingMessage(data);
        await relay.handleMessage(ws, message);
      } catch (err) {
        ws.send(JSON.stringify(createOutgoingNoticeMessage((err as Error).message)));
      }
    });
    ws.on('close', () => relay.handleDisconnect(ws));
    ws.on('error', () => {});
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  const url = `ws://127.0.0.1:${port}`;
  return {
    url,
    publish: async (events) => {
      const client = await AbstractRelay.connect(url, { verifyEvent: () => true, websocketImplementation: WebSocket as never });
      try {
        for (const e of events) await client.publish(e);
      } finally {
        client.close();
      }
    },
    preload: async (events) => {
      for (const e of events) await repo.upsert(e);
    },
    sentBytes: () => sent,
    resetCounters: () => {
      sent = 0;
    },
    stop: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await relay.destroy();
      await repo.destroy?.();
    },
  };
}
