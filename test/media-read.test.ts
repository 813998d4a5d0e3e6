// Reading media (`nostr-bt media`, docs/reader.md "Media"): a real sidecar on a local DHT archives
// an event's blob from a real origin on loopback and seeds it with WebTorrent; the CLI, in
// another process sharing only the DHT bootstrap and the bridge key, fetches it from the swarm by
// the infohash the gateway's blob torrent gives, and by the author's pointer (page 0's `m` →
// the author's media list → the blob torrent) with no gateway at all. The pointer's list is
// checked byte for byte against the format. Against hostile origins (wrong bytes, an endless
// body, a lying Content-Length, a redirect loop) nothing is written until bytes hash right, and
// nothing is left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startLocalDht, type LocalDht } from './testkit/local-dht.js';
import { freeTcpPort } from './testkit/gateway-rig.js';
import { startBridge, runCli, lastJson, type Bridge } from './testkit/reader-rig.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';
import { signer } from './testkit/events.js';
import { createReader } from '../scripts/reader/index.js';
import { parseMediaList } from '../sidecar/formats/media-list.js';
import type { MediaFetchResult } from '../scripts/reader/media-fetch.js';
import { CLI_BIN } from './testkit/sidecar-process.js';

const execFileP = promisify(execFile);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const T0 = Math.floor(Date.now() / 1000) - 600;

let dht: LocalDht;
let bridge: Bridge;
let origin: MediaServer;
let gateway: string;
let author: Awaited<ReturnType<typeof signer>>;
let work: string;
const blob = randomBytes(900_000);
const blob2 = randomBytes(40_000);
let shaBlob: string;
let shaBlob2: string;

before(async () => {
  dht = await startLocalDht(8);
  origin = await mediaServer();
  shaBlob = origin.add(blob, 'image/jpeg');
  shaBlob2 = origin.add(blob2, 'image/png');
  const port = await freeTcpPort();
  gateway = `http://127.0.0.1:${port}`;
  bridge = await startBridge(dht.bootstrap, {
    media: { enabled: true, allowLoopback: true },
    gateway: { listen: `127.0.0.1:${port}`, publicUrl: gateway },
  });
  author = await signer();
  const notes = [
    author.sign({
      kind: 1,
      created_at: T0,
      content: 'one',
      tags: [['imeta', `url ${origin.url(shaBlob, '.jpg')}`, `x ${shaBlob}`, 'm image/jpeg']],
    }),
    author.sign({ kind: 1, created_at: T0 + 1, content: `two ${origin.url(shaBlob2, '.png')}` }),
  ];
  await bridge.feed(notes);
  await bridge.sidecar.waitFor((s) => s.media?.seeded === 2 && s.media.lists === 1, 60_000);
  await bridge.waitPublished(2, [author.pubkey], 60_000);
  work = mkdtempSync(join(tmpdir(), 'nostr-bt-media-read-'));
});

after(async () => {
  await bridge?.stop();
  await dht?.stop();
  await origin?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const boot = () => dht.bootstrap.join(',');

test('nostr-bt media --gateway: the infohash from the gateway, the bytes from the swarm, sha256-verified', {
  timeout: 120_000,
}, async () => {
  const sent = origin.blobBytesSent;
  const out = join(work, 'a.jpg');
  const r = await runCli(
    ['media', shaBlob, '--gateway', gateway, '--bootstrap', boot(), '--bind', '127.0.0.1', '--out', out, '--summary', 'json'],
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson<MediaFetchResult>(r.stderr);
  assert.ok(s.ok);
  assert.equal(s.source, 'swarm', JSON.stringify(s.attempts));
  assert.ok(readFileSync(out).equals(blob), 'byte-identical');
  assert.equal(origin.blobBytesSent, sent, 'nothing from the origin');
  assert.deepEqual(readdirSync(work), ['a.jpg'], 'no temp file left beside it');
  rmSync(out);
});

test("the author's pointer names their media list; nostr-bt media --author finds the blob with no gateway", {
  timeout: 120_000,
}, async () => {
  const reader = await createReader({ bootstrap: dht.bootstrap, bind: '127.0.0.1' });
  try {
    const p = await reader.lookupPointer(bridge.key, author.pubkey);
    assert.equal(p.status, 'found');
    const ml = p.status === 'found' ? p.pointer.mediaList : undefined;
    assert.match(ml ?? '', /^[0-9a-f]{40}$/, 'page 0 carries m');
    const list = await reader.mediaList(bridge.key, author.pubkey);
    assert.ok(list.ok, JSON.stringify(list));
    const entries = list.ok ? list.entries : [];
    assert.deepEqual(
      entries.map((e) => e.sha256),
      [shaBlob, shaBlob2].sort(),
    );
    const status = await bridge.sidecar.status();
    assert.equal(status.media?.lists, 1);
    for (const e of entries) {
      const head = await fetch(`${gateway}/${e.sha256}`, { method: 'HEAD' });
      assert.equal(head.headers.get('x-infohash'), e.ih, 'the list names the blob torrents the bridge seeds');
      assert.equal(Number(head.headers.get('content-length')), e.size);
    }
    assert.deepEqual(
      parseMediaList(Buffer.from(entries.map((e) => `{"ih":"${e.ih}","sha256":"${e.sha256}","size":${e.size}}\n`).join(''))),
      entries,
    );
  } finally {
    await reader.close();
  }
  const out = join(work, 'b.png');
  const r = await runCli(
    [
      'media',
      shaBlob2,
      '--author',
      author.pubkey,
      '--bridge',
      bridge.key,
      '--bootstrap',
      boot(),
      '--bind',
      '127.0.0.1',
      '--out',
      out,
      '--summary',
      'json',
    ],
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const s = lastJson<MediaFetchResult>(r.stderr);
  assert.ok(s.ok && s.source === 'swarm', JSON.stringify(s));
  assert.ok(readFileSync(out).equals(blob2));
  rmSync(out);
});

test('hostile origins: nothing is written until the bytes hash right, nothing is left behind', { timeout: 120_000 }, async () => {
  const good = randomBytes(60_000);
  const shaGood = origin.add(good);
  origin.route('/wrong', (_req, res) => void res.writeHead(200, { 'content-length': 60_000 }).end(randomBytes(60_000)));
  origin.route('/endless', (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    const chunk = randomBytes(64 * 1024);
    let sent = 0;
    const pump = () => {
      while (sent < 64 * 1024 * 1024 && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  origin.route('/liar', (_req, res) => void res.writeHead(200, { 'content-length': 100 }).end(good.subarray(0, 100)));
  origin.route('/big', (_req, res) => void res.writeHead(200, { 'content-length': 10 * 1024 ** 3 }).end());
  origin.route('/loop', (_req, res) => void res.writeHead(302, { location: '/loop' }).end());
  origin.route('/file', (_req, res) => void res.writeHead(302, { location: 'file:///etc/passwd' }).end());
  const out = join(work, 'good.bin');
  const absent = createHash('sha1').update(randomBytes(8)).digest('hex');
  const hostile = ['/wrong', '/endless', '/liar', '/big', '/loop', '/file'].flatMap((p) => ['--url', origin.url(p)]);
  const common = [
    '--bootstrap',
    boot(),
    '--bind',
    '127.0.0.1',
    '--infohash',
    absent,
    '--swarm-timeout',
    '3',
    '--max-bytes',
    '1M',
    '--summary',
    'json',
    '--out',
    out,
  ];

  const bad = await runCli(['media', shaGood, ...hostile, ...common], 90_000);
  assert.equal(bad.code, 1, bad.stderr);
  const sb = lastJson<MediaFetchResult>(bad.stderr);
  assert.equal(sb.ok, false);
  assert.deepEqual(
    sb.attempts.map((a) => [a.source.replace(/^http:\/\/[^/]+/, ''), a.reason]),
    [
      ['swarm', 'no-peers'],
      ['/wrong', 'hash-mismatch'],
      ['/endless', 'too-large'],
      ['/liar', 'hash-mismatch'],
      ['/big', 'too-large'],
      ['/loop', 'redirects'],
      ['/file', 'scheme'],
    ],
  );
  assert.equal(existsSync(out), false, 'nothing written');
  assert.deepEqual(readdirSync(work), [], 'no temp file left');

  const ok = await runCli(['media', shaGood, ...hostile, '--url', origin.url(shaGood), ...common], 90_000);
  assert.equal(ok.code, 0, ok.stderr);
  const so = lastJson<MediaFetchResult>(ok.stderr);
  assert.ok(so.ok && so.source === 'http' && so.url === origin.url(shaGood));
  assert.ok(readFileSync(out).equals(good));
  assert.deepEqual(readdirSync(work), ['good.bin']);
  rmSync(out);

  // To stdout: the same verified bytes.
  const env = { ...process.env };
  delete env.NOSTR_BT_CONFIG;
  const stdout = await execFileP(
    process.execPath,
    [CLI_BIN, 'media', shaGood, '--url', origin.url(shaGood), '--bootstrap', boot(), '--bind', '127.0.0.1', '--summary', 'none'],
    { env, encoding: 'buffer', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
  assert.equal(sha(stdout.stdout), shaGood);
});

test('bad input is refused with exit 2', async () => {
  for (const args of [
    ['media', 'abc'],
    ['media', shaBlob, '--url', 'ftp://x/y'],
    ['media', shaBlob, '--author', author.pubkey],
    ['media', shaBlob, '--magnet', 'magnet:?dn=x'],
    ['media', shaBlob, '--infohash', 'xyz'],
  ]) {
    const r = await runCli(args, 30_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /nostr-bt media: /);
  }
});
