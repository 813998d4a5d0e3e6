// Blossom BUD-01 reads on the gateway of a real sidecar (docs/protocol.md §8 "Media"): a blob an
// archived event references is fetched from a real media server on loopback, verified, and then
// served from the bridge's own copy: GET and HEAD /<sha256>[.ext], byte ranges, ETag, CORS, the
// Content-Type recorded at fetch, and its blob torrent. Hostile paths and ranges get clear 4xx
// answers and never a byte of anything else; a blob whose events are deleted is a 404.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import bencode from 'bencode';
import { makeWorkspace, SidecarProcess } from './testkit/sidecar-process.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';
import { freeTcpPort, httpGet } from './testkit/gateway-rig.js';
import { sendLines } from './testkit/ingest-client.js';
import { signer, pluginLine } from './testkit/events.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const T0 = Math.floor(Date.now() / 1000) - 600;

let server: MediaServer;
let sidecar: SidecarProcess;
let ws: ReturnType<typeof makeWorkspace>;
let base: string;
let author: Awaited<ReturnType<typeof signer>>;
let note: NostrEvent;
const png = randomBytes(70_000);
const bin = randomBytes(20_000);
let shaPng: string;
let shaBin: string;

async function send(events: NostrEvent[]): Promise<void> {
  const acked = await sendLines(
    sidecar.socketPath,
    events.map((e) => pluginLine(e)),
    30_000,
  );
  assert.equal(acked, events.length);
}

before(async () => {
  server = await mediaServer();
  shaPng = server.add(png, 'image/png');
  // The origin says octet-stream; the event's `m` names the type.
  shaBin = server.add(bin, 'application/octet-stream');
  const port = await freeTcpPort();
  base = `http://127.0.0.1:${port}`;
  ws = makeWorkspace({
    media: { enabled: true, allowLoopback: true },
    bundle: { rewriteIntervalSeconds: 1 },
    gateway: { listen: `127.0.0.1:${port}`, publicUrl: base },
  });
  sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  await sidecar.start(30_000);
  author = await signer();
  note = author.sign({
    kind: 1,
    created_at: T0,
    content: 'pictures',
    tags: [['imeta', `url ${server.url(shaPng, '.png')}`, `x ${shaPng}`, 'm image/png']],
  });
  const other = author.sign({
    kind: 1,
    created_at: T0 + 1,
    content: 'a file',
    tags: [['imeta', `url ${server.url(shaBin)}`, `x ${shaBin}`, 'm audio/ogg']],
  });
  await send([note, other]);
  await sidecar.waitFor((s) => (s.media?.seeded ?? 0) === 2, 60_000);
});

after(async () => {
  await sidecar?.stop();
  await server?.close();
  ws?.cleanup();
});

test('GET and HEAD /<sha256> serve the local copy with Content-Type, ETag, CORS and the infohash', async () => {
  const hitsBefore = server.blobBytesSent;
  const r = await httpGet(`${base}/${shaPng}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(png), 'byte-identical');
  assert.equal(r.headers['content-type'], 'image/png', 'the type the origin served');
  assert.equal(r.headers['content-length'], String(png.length));
  assert.equal(r.headers.etag, `"${shaPng}"`);
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.match(String(r.headers['access-control-expose-headers']), /content-range/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  assert.match(String(r.headers['content-security-policy']), /^sandbox/);
  assert.match(String(r.headers['x-infohash']), /^[0-9a-f]{40}$/);
  assert.equal(server.blobBytesSent, hitsBefore, 'served from the bridge, not fetched from the origin');

  for (const path of [`/${shaPng}.png`, `/${shaPng}.jpg`, `/${shaPng.toUpperCase()}`, `/${shaPng}?x=1`]) {
    const again = await httpGet(`${base}${path}`);
    assert.equal(again.status, 200, path);
    assert.ok(again.body.equals(png), path);
  }
  const head = await httpGet(`${base}/${shaPng}.png`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(png.length));
  assert.equal(head.headers['content-type'], 'image/png');
  assert.equal(head.body.length, 0);

  const typed = await httpGet(`${base}/${shaBin}`);
  assert.equal(typed.status, 200);
  assert.ok(typed.body.equals(bin));
  assert.equal(typed.headers['content-type'], 'audio/ogg', "the origin said octet-stream: the event's m");

  const cached = await httpGet(`${base}/${shaPng}`, { headers: { 'if-none-match': `"${shaPng}"` } });
  assert.equal(cached.status, 304);
  assert.equal(cached.body.length, 0);

  const pre = await httpGet(`${base}/${shaPng}`, {
    method: 'OPTIONS',
    headers: { origin: 'https://client.example', 'access-control-request-headers': 'authorization, range' },
  });
  assert.equal(pre.status, 204);
  assert.match(String(pre.headers['access-control-allow-headers']), /authorization/);
  assert.match(String(pre.headers['access-control-allow-methods']), /HEAD/);

  const post = await httpGet(`${base}/${shaPng}`, { method: 'PUT' });
  assert.equal(post.status, 405, 'uploads are not taken');
});

test('Range: 206 for one range, 416 with bytes */size for what cannot be served', async () => {
  const mid = await httpGet(`${base}/${shaPng}`, { headers: { range: 'bytes=100-199' } });
  assert.equal(mid.status, 206);
  assert.equal(mid.headers['content-range'], `bytes 100-199/${png.length}`);
  assert.ok(mid.body.equals(png.subarray(100, 200)));
  const suffix = await httpGet(`${base}/${shaPng}`, { headers: { range: 'bytes=-10' } });
  assert.equal(suffix.status, 206);
  assert.ok(suffix.body.equals(png.subarray(png.length - 10)));
  const open = await httpGet(`${base}/${shaPng}`, { headers: { range: `bytes=${png.length - 3}-` } });
  assert.ok(open.body.equals(png.subarray(png.length - 3)));
  const clipped = await httpGet(`${base}/${shaPng}`, { headers: { range: `bytes=0-${png.length * 10}` } });
  assert.equal(clipped.status, 206);
  assert.equal(clipped.body.length, png.length, 'an end past the file is clipped');
  const headRange = await httpGet(`${base}/${shaPng}`, { method: 'HEAD', headers: { range: 'bytes=0-9' } });
  assert.equal(headRange.status, 206);
  assert.equal(headRange.headers['content-length'], '10');
  assert.equal(headRange.body.length, 0);
  // If-Range with another validator: the whole blob.
  const ifRange = await httpGet(`${base}/${shaPng}`, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
  assert.equal(ifRange.status, 200);
  assert.equal(ifRange.body.length, png.length);

  for (const range of [
    `bytes=${png.length}-`,
    `bytes=${png.length + 5}-${png.length + 9}`,
    'bytes=abc',
    'bytes=5-2',
    'items=0-9',
    'bytes=0-1,5-6',
    `bytes=${'0-1,'.repeat(40)}0-1`,
    'bytes=--1',
  ]) {
    const r = await httpGet(`${base}/${shaPng}`, { headers: { range } });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers['content-range'], `bytes */${png.length}`, range);
    assert.ok(!r.body.includes(png.subarray(0, 16)), `no blob bytes for ${range}`);
  }
});

test('hostile paths: bad hashes and traversal get 404 and nothing else', async () => {
  const unknown = sha(randomBytes(8));
  const gone = await httpGet(`${base}/${unknown}`);
  assert.equal(gone.status, 404);
  assert.match(String(gone.headers['x-reason']), new RegExp(`no blob ${unknown}`));
  assert.equal((await httpGet(`${base}/${unknown}`, { method: 'HEAD' })).status, 404);
  const paths = [
    `/${shaPng.slice(0, 63)}`,
    `/${shaPng}0`,
    `/${shaPng.slice(0, 63)}g`,
    `/${shaPng}.`,
    `/${shaPng}.${'a'.repeat(17)}`,
    `/${shaPng}.p/ng`,
    `/${shaPng}.png.png`,
    `/${shaPng}/`,
    `/${shaPng}%00`,
    `/${shaPng}%2fx`,
    `/..%2f${shaPng}`,
    `/../../etc/passwd`,
    `/%2e%2e/%2e%2e/etc/passwd`,
    `/${shaPng.slice(0, 2)}/${shaPng}`,
    `/media/${shaPng}`,
    `/media/../${shaPng}`,
    `/media/${shaPng}.torrent/..`,
    `/index.mdb`,
    `//${shaPng}`,
  ];
  for (const p of paths) {
    const r = await httpGet(`${base}${p}`);
    assert.equal(r.status, 404, p);
    assert.ok(!r.body.includes(png.subarray(0, 16)), `no blob bytes for ${p}`);
  }
  // A sha256 of the media index file's name, or of a torrent on disk, is just an unknown blob.
  const r = await httpGet(`${base}/${sha(Buffer.from('index.mdb'))}`);
  assert.equal(r.status, 404);
});

test('/media/<sha256>.torrent gives the blob torrent: same infohash, the gateway and the origin as web seeds', async () => {
  const r = await httpGet(`${base}/media/${shaPng}.torrent`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/x-bittorrent');
  const t = bencode.decode(r.body) as { info: { name: Uint8Array; length: number }; 'url-list': Uint8Array[] };
  const ih = createHash('sha1').update(bencode.encode(t.info)).digest('hex');
  assert.equal(ih, (await httpGet(`${base}/${shaPng}`, { method: 'HEAD' })).headers['x-infohash']);
  assert.equal(Buffer.from(t.info.name).toString(), shaPng);
  assert.equal(t.info.length, png.length);
  const seeds = t['url-list'].map((u) => Buffer.from(u).toString());
  assert.deepEqual(seeds, [`${base}/${shaPng}`, server.url(shaPng, '.png')]);
  assert.equal((await httpGet(`${base}/media/${sha(randomBytes(4))}.torrent`)).status, 404);
});

test('a blob whose referencing events are deleted is no longer served', async () => {
  await send([author.sign({ kind: 5, created_at: T0 + 10, tags: [['e', note.id]] })]);
  await sidecar.waitFor((s) => s.media?.blobs === 1, 30_000);
  const r = await httpGet(`${base}/${shaPng}`);
  assert.equal(r.status, 404);
  assert.equal((await httpGet(`${base}/media/${shaPng}.torrent`)).status, 404);
  assert.equal((await httpGet(`${base}/${shaBin}`)).status, 200, 'the other blob stays');
});
