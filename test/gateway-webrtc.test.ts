// The gateway's WebSocket tracker wired into a real sidecar (child process) on loopback: the
// well-known document and the magnets name it (tr=, with xs= and ws=) only when publicUrl is set,
// the infohash is the bundle's own, and a WebRTC-only WebTorrent reader (node-datachannel, no DHT,
// no TCP peers, no web seed) gets a bundle from the sidecar's seeder through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebTorrent, { type Torrent } from 'webtorrent';
import { pubkeyN } from './testkit/events.js';
import { archive, httpGet, startGatewayRig } from './testkit/gateway-rig.js';

const DEADLINE_MS = 90_000;

function done(t: Torrent): Promise<void> {
  return new Promise((resolve, reject) => {
    if (t.done) return resolve();
    const timer = setTimeout(
      () => reject(new Error(`not complete after ${DEADLINE_MS} ms (${Math.round(t.progress * 100)}%)`)),
      DEADLINE_MS,
    );
    t.once('done', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test('with publicUrl: the tracker is in the well-known document and the magnet; a WebRTC-only reader downloads the bundle from the sidecar through it', async (t) => {
  const rig = await startGatewayRig({}, { dhtNodes: 4 });
  t.after(() => rig.stop());
  const authors = [pubkeyN(7100), pubkeyN(7101)];
  await archive(rig, authors, 20, 2000);
  const doc = JSON.parse((await httpGet(`${rig.base}/.well-known/nostr-bt`)).body.toString()) as {
    endpoints: { tracker: string | null };
    newest: { infohash: string; name: string; magnet: string };
  };
  const trackerUrl = `ws://127.0.0.1:${rig.port}/announce`;
  assert.equal(doc.endpoints.tracker, trackerUrl);
  const ih = doc.newest.infohash;
  const magnet = new URL(doc.newest.magnet);
  assert.equal(magnet.searchParams.get('xt'), `urn:btih:${ih}`);
  assert.equal(magnet.searchParams.get('tr'), trackerUrl);
  assert.equal(magnet.searchParams.get('xs'), `${rig.base}/torrent/${ih}.torrent`);
  assert.equal(magnet.searchParams.get('ws'), `${rig.base}/webseed/${ih}/`);

  const torrentFile = (await httpGet(`${rig.base}/torrent/${ih}.torrent`)).body;
  const root = mkdtempSync(join(tmpdir(), 'nostr-bt-gw-webrtc-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const client = new WebTorrent({
    dht: false,
    tracker: { rtcConfig: { iceServers: [] } },
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    webSeeds: false,
    utp: false,
    torrentPort: 0,
  });
  t.after(() => new Promise<void>((resolve) => client.destroy(() => resolve())));
  // The tracker from the magnet only: the .torrent's url-list is ignored (webSeeds: false).
  const tor = client.add(torrentFile, { announce: [magnet.searchParams.get('tr')!], path: root });
  await done(tor);
  assert.equal(tor.infoHash, ih, "the infohash is the bundle's (url-list and tr= are outside the info dict)");
  assert.ok(tor.wires.length > 0 && tor.wires.every((w) => w.type === 'webrtc'), `peers: ${tor.wires.map((w) => w.type).join(',')}`);
  for (const f of tor.files) {
    const got = readFileSync(join(root, f.path));
    const want = (await httpGet(`${rig.base}/webseed/${ih}/${f.path}`)).body;
    assert.ok(got.equals(want), `${f.path}: the same bytes over WebRTC as from the web seed`);
  }
  const st = await rig.sidecar.status();
  assert.ok((st.seeding?.webrtcPeers ?? 0) >= 1, `the sidecar counts its WebRTC peer: ${JSON.stringify(st.seeding)}`);
});

test('without publicUrl the magnet carries no tr=, xs= or ws=; with gateway.webrtc = false there is no tracker', async (t) => {
  const rig = await startGatewayRig({}, { dhtNodes: 4, publicUrl: false });
  t.after(() => rig.stop());
  await archive(rig, [pubkeyN(7200)], 3);
  const doc = JSON.parse((await httpGet(`${rig.base}/.well-known/nostr-bt`)).body.toString()) as {
    endpoints: { tracker: string | null };
    newest: { magnet: string };
  };
  assert.equal(doc.endpoints.tracker, `ws://127.0.0.1:${rig.port}/announce`, 'the tracker runs (the base is the listening address)');
  const magnet = new URL(doc.newest.magnet);
  assert.deepEqual([...magnet.searchParams.keys()].sort(), ['dn', 'xt']);

  const off = await startGatewayRig({ webrtc: false }, { dhtNodes: 4 });
  t.after(() => off.stop());
  await archive(off, [pubkeyN(7201)], 3);
  const doc2 = JSON.parse((await httpGet(`${off.base}/.well-known/nostr-bt`)).body.toString()) as {
    endpoints: { tracker: string | null };
    newest: { magnet: string };
  };
  assert.equal(doc2.endpoints.tracker, null);
  const m2 = new URL(doc2.newest.magnet);
  assert.equal(m2.searchParams.get('tr'), null);
  assert.ok(m2.searchParams.get('ws'), 'ws= still there');
  // An upgrade to the tracker path is refused: the connection is closed without a 101.
  const { WebSocket } = await import('ws');
  const outcome = await new Promise<string>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${off.port}/announce`);
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('timeout');
    }, 20_000);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.terminate();
      resolve('open');
    });
    ws.once('error', () => {
      clearTimeout(timer);
      resolve('refused');
    });
  });
  assert.equal(outcome, 'refused');
});
