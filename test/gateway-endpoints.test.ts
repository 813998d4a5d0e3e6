// The gateway's read endpoints against a real sidecar on loopback (docs/protocol.md §9): the
// well-known document, this bridge's pointers verified with node:crypto against the bridge key
// from the exact bytes served, other bridges' pointers looked up in a local DHT, .torrent files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import bencode from 'bencode';
import { nip19 } from 'nostr-tools';
import { zbase32 } from '../sidecar/formats/zbase32.js';
import { keyFromSeed } from '../sidecar/formats/ed25519.js';
import { authorSalt, decodeAuthorPage, signedBytes } from '../sidecar/formats/pointer-item.js';
import { pubkeyN } from './testkit/events.js';
import { archive, httpGet, startGatewayRig, type GatewayRig } from './testkit/gateway-rig.js';

const AUTHORS = [0, 1, 2, 3].map((i) => pubkeyN(9000 + i));
let rig: GatewayRig;

before(async () => {
  rig = await startGatewayRig({ dhtLookupTimeoutMs: 3000, dhtLookupsPerSecond: 1 });
  await archive(rig, AUTHORS, 5);
});
after(async () => rig?.stop());

interface PointerJson {
  k: string;
  salt: string;
  seq: number;
  v: string;
  sig: string;
}

/** What a client does: the signed bytes built from the served fields, v as served (no re-encoding). */
function clientVerifies(p: PointerJson, bridgeKeyHex: string): boolean {
  const salt = Buffer.from(p.salt, 'hex');
  const v = Buffer.from(p.v, 'base64');
  const msg = Buffer.concat([Buffer.from(`4:salt${salt.length}:`), salt, Buffer.from(`3:seqi${p.seq}e1:v`), v]);
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(bridgeKeyHex, 'hex')]),
    format: 'der',
    type: 'spki',
  });
  return p.k === bridgeKeyHex && verify(null, msg, key, Buffer.from(p.sig, 'hex'));
}

test('/.well-known/nostr-bt: bridge key in hex and z-base-32, counts, endpoint URLs from publicUrl, a magnet with xs= and ws=', async () => {
  const r = await httpGet(`${rig.base}/.well-known/nostr-bt`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], '*');
  const doc = JSON.parse(r.body.toString()) as Record<string, any>;
  assert.equal(doc.v, 1);
  assert.deepEqual(doc.bridge, { hex: rig.bridgeKey, z32: zbase32(Buffer.from(rig.bridgeKey, 'hex')) });
  const st = await rig.sidecar.status();
  assert.equal(doc.counts.events, st.events.stored);
  assert.equal(doc.counts.authors, AUTHORS.length);
  assert.equal(doc.counts.bundles, st.bundles!.active);
  assert.equal(doc.endpoints.pointer, `${rig.base}/pointer/{author}`);
  assert.equal(doc.endpoints.webSeed, `${rig.base}/webseed/{infohash}/`);
  const ih = doc.newest.infohash as string;
  assert.match(ih, /^[0-9a-f]{40}$/);
  const magnet = new URL(doc.newest.magnet as string);
  assert.equal(magnet.searchParams.get('xt'), `urn:btih:${ih}`);
  assert.equal(magnet.searchParams.get('xs'), `${rig.base}/torrent/${ih}.torrent`);
  assert.equal(magnet.searchParams.get('ws'), `${rig.base}/webseed/${ih}/`);
});

test('/pointer/<author>: the stored item verifies with ed25519 against the bridge key; hex and npub; ETag → 304; bad input → 400, unknown → 404', async () => {
  const author = AUTHORS[1]!;
  const r = await httpGet(`${rig.base}/pointer/${author}`);
  assert.equal(r.status, 200, r.body.toString());
  assert.equal(r.headers['content-type'], 'application/json');
  const p = JSON.parse(r.body.toString()) as PointerJson;
  assert.equal(p.salt, author);
  assert.ok(clientVerifies(p, rig.bridgeKey), 'signature verifies over the served bytes');
  assert.ok(!clientVerifies({ ...p, seq: p.seq + 1 }, rig.bridgeKey), 'and not over other bytes');
  const v = bencode.decode(Buffer.from(p.v, 'base64'));
  assert.deepEqual(
    signedBytes(authorSalt(author), p.seq, v),
    Buffer.concat([Buffer.from(`4:salt32:`), Buffer.from(author, 'hex'), Buffer.from(`3:seqi${p.seq}e1:v`), Buffer.from(p.v, 'base64')]),
  );
  const page = decodeAuthorPage(v);
  assert.equal(page.n, 1);
  const t = await httpGet(`${rig.base}/torrent/${page.infoHashes[0]}.torrent`);
  assert.equal(t.status, 200, 'the pointer leads to a bundle the gateway serves');

  const byNpub = await httpGet(`${rig.base}/pointer/${nip19.npubEncode(author)}`);
  assert.deepEqual(byNpub.body, r.body);
  const etag = r.headers.etag as string;
  assert.match(etag, /^"\d+-[0-9a-f]{16}"$/);
  assert.match(r.headers['cache-control'] as string, /max-age=\d+/);
  const again = await httpGet(`${rig.base}/pointer/${author}`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  const head = await httpGet(`${rig.base}/pointer/${author}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), r.body.length);

  for (const bad of ['abc', 'f'.repeat(63), 'g'.repeat(64), 'npub1xyz', '%2e%2e', nip19.nsecEncode(randomBytes(32))]) {
    const b = await httpGet(`${rig.base}/pointer/${bad}`);
    assert.equal(b.status, 400, bad);
    assert.match(b.body.toString(), /not an author key/);
  }
  assert.equal((await httpGet(`${rig.base}/pointer/${author}?page=99`)).status, 400);
  assert.equal((await httpGet(`${rig.base}/pointer/${author}?page=1`)).status, 404, 'one page only');
  const unknown = await httpGet(`${rig.base}/pointer/${pubkeyN(1)}`);
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.toString(), /no pointer/);
});

test("/pointer/<bridge>/<author>: another bridge's item from the DHT, verified and cached; own key served locally; misses 404; lookups paced", {
  timeout: 60_000,
}, async () => {
  const other = keyFromSeed(randomBytes(32));
  const author = pubkeyN(4242);
  const v = { v: 1, ih: randomBytes(20), b: Buffer.alloc(0), n: 1, pg: 1 };
  const salt = authorSalt(author);
  const seq = 7;
  await new Promise<void>((resolve, reject) =>
    rig.dht.nodes[3]!.put({ k: other.publicKey, salt, seq, v, sig: other.sign(signedBytes(salt, seq, v)) }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  for (const key of [other.publicKey.toString('hex'), zbase32(other.publicKey)]) {
    const r = await httpGet(`${rig.base}/pointer/${key}/${author}`);
    assert.equal(r.status, 200, r.body.toString());
    const p = JSON.parse(r.body.toString()) as PointerJson;
    assert.equal(p.seq, seq);
    assert.ok(clientVerifies(p, other.publicKey.toString('hex')));
    assert.deepEqual(Buffer.from(p.v, 'base64'), Buffer.from(bencode.encode(v)));
    assert.match(r.headers['cache-control'] as string, /^public, max-age=(\d+)$/);
    assert.ok(
      Number(/max-age=(\d+)/.exec(r.headers['cache-control'] as string)![1]) <= 60,
      'cached no longer than gateway.remoteCacheSeconds',
    );
  }
  const own = await httpGet(`${rig.base}/pointer/${rig.bridgeKey}/${AUTHORS[0]}`);
  assert.deepEqual(own.body, (await httpGet(`${rig.base}/pointer/${AUTHORS[0]}`)).body);
  assert.equal((await httpGet(`${rig.base}/pointer/${'0'.repeat(10)}/${author}`)).status, 400);

  // 1 lookup/s with a burst of 2: of eight new keys asked at once, most are refused with 503.
  await new Promise((r) => setTimeout(r, 2500));
  const answers = await Promise.all(
    Array.from({ length: 8 }, (_, i) => httpGet(`${rig.base}/pointer/${other.publicKey.toString('hex')}/${pubkeyN(5000 + i)}`)),
  );
  const statuses = answers.map((a) => a.status).sort();
  assert.ok(statuses.filter((s) => s === 503).length >= 5, `statuses ${statuses}`);
  assert.ok(statuses.includes(404), `a miss is 404: ${statuses}`);
  for (const a of answers.filter((x) => x.status === 503)) assert.equal(a.headers['retry-after'], '1');
});

test("/torrent/<infohash>.torrent: the bundle's torrent with url-list (the web seed), infohash unchanged; ETag → 304; unknown 404, malformed 400", async () => {
  const st = await rig.sidecar.status();
  const ih = st.bundles!.newest!;
  const r = await httpGet(`${rig.base}/torrent/${ih}.torrent`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/x-bittorrent');
  const t = bencode.decode(r.body) as { info: unknown; 'url-list': Uint8Array[] };
  assert.equal(createHash('sha1').update(bencode.encode(t.info)).digest('hex'), ih);
  assert.deepEqual(
    t['url-list'].map((u) => Buffer.from(u).toString()),
    [`${rig.base}/webseed/${ih}/`],
  );
  const again = await httpGet(`${rig.base}/torrent/${ih}.torrent`, { headers: { 'if-none-match': r.headers.etag as string } });
  assert.equal(again.status, 304);
  assert.equal((await httpGet(`${rig.base}/torrent/${'ab'.repeat(20)}.torrent`)).status, 404);
  assert.equal((await httpGet(`${rig.base}/torrent/${ih.slice(1)}.torrent`)).status, 400);
  assert.equal((await httpGet(`${rig.base}/torrent/${ih}`)).status, 404);
  const post = await httpGet(`${rig.base}/torrent/${ih}.torrent`, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});

test('gateway counters in /status and /metrics: responses by route and status class, web seed bytes, DHT lookups', {
  timeout: 60_000,
}, async () => {
  const st0 = await rig.sidecar.status();
  const g0 = st0.gateway!;
  assert.equal(g0.address, `127.0.0.1:${rig.port}`);
  const ih = st0.bundles!.newest!;
  assert.equal((await httpGet(`${rig.base}/webseed/${ih}/`, { headers: { range: 'bytes=0-999' } })).status, 206);
  const whole = await httpGet(`${rig.base}/webseed/${ih}/`);
  assert.equal(whole.status, 200);
  assert.equal((await httpGet(`${rig.base}/webseed/${ih}/`, { method: 'HEAD' })).status, 200);
  assert.equal((await httpGet(`${rig.base}/webseed/${'cd'.repeat(20)}/`)).status, 404);
  assert.equal((await httpGet(`${rig.base}/no/such/path`)).status, 404);
  // A bridge no one published for: one lookup that misses, then the same answer from the cache.
  await new Promise((r) => setTimeout(r, 2500)); // the pace (1/s, burst 2) refills after the previous test
  const nobody = keyFromSeed(randomBytes(32)).publicKey.toString('hex');
  for (let i = 0; i < 2; i++) assert.equal((await httpGet(`${rig.base}/pointer/${nobody}/${AUTHORS[0]}`)).status, 404);

  const n = (g: typeof g0, route: string, cls: string) => g.requests[route]?.[cls] ?? 0;
  // A response is counted when the server has finished it, a moment after the client read it.
  const st1 = await rig.sidecar.waitFor(
    (s) =>
      n(s.gateway!, 'remote-pointer', '4xx') - n(g0, 'remote-pointer', '4xx') >= 2 &&
      n(s.gateway!, 'unmatched', '4xx') > n(g0, 'unmatched', '4xx'),
    10_000,
  );
  const g1 = st1.gateway!;
  assert.equal(n(g1, 'webseed', '2xx') - n(g0, 'webseed', '2xx'), 3);
  assert.equal(n(g1, 'webseed', '4xx') - n(g0, 'webseed', '4xx'), 1);
  assert.equal(n(g1, 'unmatched', '4xx') - n(g0, 'unmatched', '4xx'), 1);
  assert.equal(n(g1, 'remote-pointer', '4xx') - n(g0, 'remote-pointer', '4xx'), 2);
  assert.equal(g1.webSeedBytes - g0.webSeedBytes, 1000 + whole.body.length, 'the range and the whole file; HEAD sends no body');
  assert.equal(g1.dhtLookups.miss - g0.dhtLookups.miss, 1);
  assert.equal(g1.dhtLookups.cached - g0.dhtLookups.cached, 1);

  const runtime = JSON.parse(readFileSync(join(rig.dataDir, 'sidecar.json'), 'utf8')) as { status: string };
  const text = await (await fetch(`http://${runtime.status}/metrics`)).text();
  const metric = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
  assert.equal(metric('nostr_bt_gateway_requests_total{route="webseed",status="2xx"}'), n(g1, 'webseed', '2xx'));
  assert.equal(metric('nostr_bt_gateway_requests_total{route="unmatched",status="4xx"}'), n(g1, 'unmatched', '4xx'));
  assert.equal(metric('nostr_bt_gateway_webseed_bytes_total'), g1.webSeedBytes);
  assert.equal(metric('nostr_bt_gateway_dht_lookups_total{result="miss"}'), g1.dhtLookups.miss);
  assert.equal(metric('nostr_bt_gateway_dht_lookups_total{result="cached"}'), g1.dhtLookups.cached);
  assert.equal(metric('nostr_bt_gateway_rate_limited_total'), g1.rateLimited);
  assert.ok(Number.isFinite(metric('nostr_bt_gateway_open_connections')));
});
