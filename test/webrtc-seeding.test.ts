// Bundles reach WebRTC peers (what browsers are) through the bridge's own WebSocket tracker: a
// real WebTorrent seeder (the sidecar's), real WebTorrent readers with WebRTC (node-datachannel)
// and no other way to connect (no DHT, no TCP peers, no LSD), all on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import WebTorrent, { type Torrent } from 'webtorrent';
import { pino } from 'pino';
import { buildBundle, type BuiltBundle } from '../sidecar/bundles/builder.js';
import { WebTorrentSeeder } from '../sidecar/seeding/seeder.js';
import { WebRtcTracker, WEBRTC_TRACKER_DEFAULTS } from '../sidecar/seeding/webrtc-tracker.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { contentOf, pubkeyN, unsignedEvent } from './testkit/events.js';

const log = pino({ level: 'silent' });
const DEADLINE_MS = 90_000;

/** A WebTorrent client that can reach peers only through a WebSocket tracker (WebRTC). */
function webrtcOnlyClient(): WebTorrent {
  return new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    webSeeds: false,
    utp: false,
    torrentPort: 0,
  });
}

async function bundle(root: string): Promise<BuiltBundle> {
  const authors = [0, 1, 2].map((a) => ({
    pubkey: pubkeyN(a),
    lines: Array.from({ length: 200 }, (_, i) => {
      const e = unsignedEvent(pubkeyN(a), { kind: 1, created_at: 1000 + i, content: contentOf(2000, a * 1000 + i) });
      return { json: canonicalJson(e), createdAt: e.created_at };
    }),
  }));
  authors.sort((x, y) => (x.pubkey < y.pubkey ? -1 : 1));
  const b = await buildBundle(root, authors);
  assert.ok(b);
  return b;
}

/** Resolves when the torrent is complete, or fails past the deadline (the loop is bounded). */
function done(t: Torrent, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (t.done) return resolve();
    const timer = setTimeout(
      () => reject(new Error(`${what}: not complete after ${DEADLINE_MS} ms (${Math.round(t.progress * 100)}%)`)),
      DEADLINE_MS,
    );
    t.once('done', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The tracker first: the HTTP server's close waits for its upgraded connections to end. */
async function stop(http: Server, tracker: WebRtcTracker): Promise<void> {
  await tracker.close();
  http.closeAllConnections();
  await new Promise<void>((resolve) => http.close(() => resolve()));
}

/** Cleanups run last-registered first (clients before the tracker they talk to), each awaited. */
function deferrer(t: { after: (fn: () => Promise<void>) => void }): (fn: () => unknown) => void {
  const fns: (() => unknown)[] = [];
  t.after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return (fn) => fns.push(fn);
}

function destroy(c: WebTorrent): Promise<void> {
  return new Promise((resolve) => c.destroy(() => resolve()));
}

async function trackerOn(
  seeded: Set<string>,
  over: Partial<typeof WEBRTC_TRACKER_DEFAULTS> = {},
): Promise<{ http: Server; tracker: WebRtcTracker; url: string }> {
  const tracker = new WebRtcTracker({ ...WEBRTC_TRACKER_DEFAULTS, ...over, isSeeded: (ih) => seeded.has(ih) }, log);
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => {
    if (!tracker.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { http, tracker, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}${tracker.path}` };
}

test('a bundle reaches a WebRTC-only reader through the tracker, and a second reader gets it from the first once the bridge is gone', async (t) => {
  const defer = deferrer(t);
  const root = mkdtempSync(join(tmpdir(), 'nostr-bt-webrtc-'));
  defer(() => rmSync(root, { recursive: true, force: true }));
  const b = await bundle(root);
  const seeded = new Set([b.infoHash]);
  const { http, tracker, url } = await trackerOn(seeded);
  defer(() => stop(http, tracker));
  const seeder = await WebTorrentSeeder.start({ port: 0, utp: false, maxConns: 50, webrtc: { announce: [url], maxPeers: 8 } }, null, log);
  defer(() => seeder.stop());
  await seeder.seed({ infoHash: b.infoHash, torrent: b.torrent, dataPath: b.dataPath });

  const a = webrtcOnlyClient();
  defer(() => destroy(a));
  const ta = a.add(b.torrent, { announce: [url], path: join(root, 'a') });
  await done(ta, 'first reader');
  const want = readFileSync(b.dataPath);
  const got = Buffer.concat(ta.files.map((f) => readFileSync(join(root, 'a', f.path))));
  assert.equal(
    createHash('sha256').update(got).digest('hex'),
    createHash('sha256').update(want).digest('hex'),
    'the first reader has the bundle byte for byte',
  );
  assert.ok(ta.wires.length > 0 && ta.wires.every((w) => w.type === 'webrtc'), `peers: ${ta.wires.map((w) => w.type).join(',')}`);
  assert.ok(seeder.stats().webrtcPeers >= 1, 'the seeder counts its WebRTC peer');

  // The bridge stops seeding; the tracker still knows the bundle, and the second reader can get
  // it only from the first one.
  await seeder.unseed(b.infoHash);
  const c = webrtcOnlyClient();
  defer(() => destroy(c));
  const tc = c.add(b.torrent, { announce: [url], path: join(root, 'c') });
  await done(tc, 'second reader');
  const gotC = Buffer.concat(tc.files.map((f) => readFileSync(join(root, 'c', f.path))));
  assert.ok(gotC.equals(want), 'the second reader has the bundle byte for byte');
  assert.ok(tc.received > 0 && ta.uploaded > 0, `second reader got ${tc.received} bytes, first uploaded ${ta.uploaded}`);
});

test("the tracker tracks only the bridge's bundles and bounds its connections", async (t) => {
  const defer = deferrer(t);
  const { http, tracker, url } = await trackerOn(new Set(), { maxConnectionsPerAddress: 2 });
  defer(() => stop(http, tracker));

  // An announce for a torrent this bridge does not seed is refused.
  const stranger = webrtcOnlyClient();
  defer(() => destroy(stranger));
  const other = stranger.add(Buffer.from(randomBytes(20)).toString('hex'), { announce: [url] });
  const refused = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), DEADLINE_MS);
    const poll = setInterval(() => {
      if (tracker.stats().refusedAnnounces > 0) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(true);
      }
    }, 100);
    other.once('close', () => {
      clearInterval(poll);
      clearTimeout(timer);
    });
  });
  assert.ok(refused, 'the announce for an unknown infohash was refused');
  assert.equal(tracker.stats().torrents, 0, 'nothing tracked for it');

  // Over the per-address limit, an upgrade is answered 503.
  const { WebSocket } = await import('ws');
  const open = (): Promise<'open' | 'refused'> =>
    new Promise((resolve) => {
      const ws = new WebSocket(url);
      defer(() => ws.terminate());
      ws.once('open', () => resolve('open'));
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode === 503 ? 'refused' : 'open'));
      ws.once('error', () => resolve('refused'));
    });
  // The stranger's client holds one connection already.
  const results = [await open(), await open()];
  assert.deepEqual(results, ['open', 'refused']);
  assert.ok(tracker.stats().refusedConnections >= 1);
});
