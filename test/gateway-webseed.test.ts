// The BEP-19 web seed: libtorrent (python3-libtorrent) and WebTorrent download bundles from the
// gateway ONLY (no DHT, no tracker, no peer: the torrent's url-list is all they have), byte-identical
// to the bundle's data; multi-file and single-file bundles (the two URL layouts); Range, HEAD,
// ETag and CORS as a browser needs them; path traversal finds nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import type { Torrent } from 'webtorrent';
import { pubkeyN } from './testkit/events.js';
import { archive, httpGet, startGatewayRig, type GatewayRig } from './testkit/gateway-rig.js';
import { ltFetch } from './testkit/libtorrent.js';
import { quietWebTorrent } from './testkit/quiet-webtorrent.js';

let rig: GatewayRig;
let multi: string;
let single: string;
let tmp: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gw-webseed-'));
  rig = await startGatewayRig();
  multi = (
    await archive(
      rig,
      [0, 1, 2, 3, 4].map((i) => pubkeyN(7100 + i)),
      40,
      2000,
    )
  ).bundles!.newest!;
  single = (await archive(rig, [pubkeyN(7200)], 30, 3000, 1_700_100_000)).bundles!.newest!;
  assert.notEqual(multi, single);
});
after(async () => {
  await rig?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function dataOf(ih: string): Buffer {
  return readFileSync(join(rig.dataDir, 'bundles', `${ih}.data`));
}

interface TorrentMeta {
  name: string;
  files: { path: string; length: number }[];
  raw: Buffer;
}

async function torrentOf(ih: string): Promise<TorrentMeta> {
  const r = await httpGet(`${rig.base}/torrent/${ih}.torrent`);
  assert.equal(r.status, 200);
  const t = bencode.decode(r.body) as { info: { name: Uint8Array; files: { length: number; path: Uint8Array[] }[] } };
  return {
    name: Buffer.from(t.info.name).toString(),
    files: t.info.files.map((f) => ({ path: f.path.map((p) => Buffer.from(p).toString()).join('/'), length: f.length })),
    raw: r.body,
  };
}

/** The downloaded files, in torrent order, concatenated: what the bundle's data file holds. */
function savedBytes(dir: string, meta: TorrentMeta): Buffer {
  return Buffer.concat(meta.files.map((f) => readFileSync(join(dir, meta.name, f.path))));
}

test('libtorrent downloads a multi-file and a single-file bundle from the web seed only, byte-identical', {
  timeout: 180_000,
}, async () => {
  for (const ih of [multi, single]) {
    const meta = await torrentOf(ih);
    const file = join(tmp, `${ih}.torrent`);
    writeFileSync(file, meta.raw);
    const save = mkdtempSync(join(tmp, 'lt-'));
    const r = await ltFetch({ torrent: file, save, peerPort: 0, timeoutSec: 90 });
    assert.ok(r.ok, `libtorrent finished ${ih}: ${JSON.stringify(r)}`);
    assert.equal(r.infoHash, ih);
    assert.ok(r.payloadDownloaded >= dataOf(ih).length, 'every byte came over the web seed');
    assert.ok(savedBytes(save, meta).equals(dataOf(ih)), `byte-identical (${meta.files.length} files)`);
  }
});

test('WebTorrent downloads a multi-file and a single-file bundle from the web seed only, byte-identical', {
  timeout: 180_000,
}, async () => {
  const client = quietWebTorrent({ webSeeds: true, torrentPort: 0 });
  client.on('error', () => {});
  try {
    for (const ih of [multi, single]) {
      const meta = await torrentOf(ih);
      const save = mkdtempSync(join(tmp, 'wt-'));
      const torrent: Torrent = client.add(meta.raw, { path: save });
      const types = new Set<string>();
      torrent.on('wire', (w: { type?: string }) => types.add(w.type ?? '?'));
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`WebTorrent did not finish ${ih} (${torrent.progress})`)), 120_000);
        torrent.once('error', (e: Error) => {
          clearTimeout(t);
          reject(e);
        });
        const finish = () => {
          clearTimeout(t);
          resolve();
        };
        if (torrent.done) finish();
        else torrent.once('done', finish);
      });
      assert.deepEqual([...types], ['webSeed'], 'its only connection was the web seed');
      await new Promise<void>((r) => torrent.destroy({}, () => r()));
      assert.ok(savedBytes(save, meta).equals(dataOf(ih)), `byte-identical (${meta.files.length} files)`);
    }
  } finally {
    await new Promise<void>((r) => client.destroy(() => r()));
  }
});

test('web seed: Range → 206, HEAD, ETag → 304, CORS, both URL layouts; bad ranges 416; traversal and unknown paths 404', async () => {
  const meta = await torrentOf(multi);
  const data = dataOf(multi);
  const f = meta.files[2]!;
  const offset = meta.files.slice(0, 2).reduce((n, x) => n + x.length, 0);
  const fileBytes = data.subarray(offset, offset + f.length);
  const url = `${rig.base}/webseed/${multi}/${meta.name}/${f.path}`;

  const whole = await httpGet(url);
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(fileBytes));
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.equal(whole.headers['access-control-allow-origin'], '*');
  assert.match(whole.headers['access-control-expose-headers'] as string, /content-range/);
  const etag = whole.headers.etag as string;
  // WebTorrent's layout: the url-list entry, then "/<name>/<path>" (a double slash).
  const wt = await httpGet(`${rig.base}/webseed/${multi}//${meta.name}/${f.path}`, { headers: { range: 'bytes=10-109' } });
  assert.equal(wt.status, 206);
  assert.equal(wt.headers['content-range'], `bytes 10-109/${f.length}`);
  assert.ok(wt.body.equals(fileBytes.subarray(10, 110)));
  const suffix = await httpGet(url, { headers: { range: 'bytes=-50' } });
  assert.ok(suffix.body.equals(fileBytes.subarray(f.length - 50)));
  const open = await httpGet(url, { headers: { range: `bytes=${f.length - 7}-` } });
  assert.equal(open.status, 206);
  assert.ok(open.body.equals(fileBytes.subarray(f.length - 7)));
  const clipped = await httpGet(url, { headers: { range: `bytes=${f.length - 5}-${f.length + 1000}` } });
  assert.equal(clipped.status, 206);
  assert.equal(clipped.body.length, 5);
  const head = await httpGet(url, { method: 'HEAD', headers: { range: 'bytes=0-99' } });
  assert.equal(head.status, 206);
  assert.equal(head.headers['content-length'], '100');
  assert.equal(head.body.length, 0);
  assert.equal((await httpGet(url, { headers: { 'if-none-match': etag } })).status, 304);
  const ifRange = await httpGet(url, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
  assert.equal(ifRange.status, 200, 'If-Range with another validator: the whole file');
  // The single-file layout: the data file itself at the url-list entry.
  const dataRange = await httpGet(`${rig.base}/webseed/${multi}/`, { headers: { range: `bytes=${offset}-${offset + 99}` } });
  assert.ok(dataRange.body.equals(data.subarray(offset, offset + 100)));
  const pre = await httpGet(url, {
    method: 'OPTIONS',
    headers: { origin: 'https://client.example', 'access-control-request-headers': 'range' },
  });
  assert.equal(pre.status, 204);
  assert.match(pre.headers['access-control-allow-headers'] as string, /range/);

  for (const range of [
    `bytes=${f.length}-`,
    `bytes=${f.length + 10}-${f.length + 20}`,
    'bytes=-0',
    'bytes=5-2',
    'bytes=--5',
    'bytes=-5-',
    'bytes=abc',
    'items=0-5',
    'bytes=0-0,2-2',
    'bytes=' + Array.from({ length: 20 }, (_, i) => `${i * 2}-${i * 2}`).join(','),
  ]) {
    const r = await httpGet(url, { headers: { range } });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers['content-range'], `bytes */${f.length}`, range);
    assert.ok(r.body.length < 200 && /range/i.test(r.body.toString()), `${range}: a short reason`);
  }
  const huge = await httpGet(url, { headers: { range: 'bytes=' + Array.from({ length: 10_000 }, (_, i) => `${i}-${i}`).join(',') } });
  assert.ok(huge.status === 431 || huge.status === 416, `10,000 parts: ${huge.status}`);

  const secretFiles = [readFileSync(join(rig.dataDir, 'bridge.key'))];
  for (const path of [
    `/webseed/${multi}/../../bridge.key`,
    `/webseed/${multi}/%2e%2e/%2e%2e/bridge.key`,
    `/webseed/${multi}/${meta.name}/..%2f..%2f..%2fbridge.key`,
    `/webseed/${multi}/${meta.name}/%2e%2e%2f${f.path}`,
    `/webseed/${multi}/${meta.name}/${f.path}/x`,
    `/webseed/${multi}/other-name/${f.path}`,
    `/webseed/${multi}/${meta.name}/${'a'.repeat(64)}.jsonl`,
    `/webseed/${multi}/${meta.name}`,
  ]) {
    const r = await httpGet(`${rig.base}${path}`);
    assert.equal(r.status, 404, path);
    assert.ok(!secretFiles.some((s) => r.body.includes(s)), path);
  }
  assert.equal((await httpGet(`${rig.base}/webseed/${meta.name}/%ZZ`)).status, 400);
  assert.equal((await httpGet(`${rig.base}/webseed/${multi}/${meta.name}/%ZZ`)).status, 400);
  assert.equal((await httpGet(`${rig.base}/webseed/..%2f${multi}.data`)).status, 400);
  assert.equal((await httpGet(`${rig.base}/webseed/${'cd'.repeat(20)}/`)).status, 404);
});
