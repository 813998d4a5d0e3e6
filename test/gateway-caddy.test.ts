// The gateway behind Caddy (Debian's caddy), configured as docs/operations.md "HTTP gateway behind
// a TLS proxy" says, on loopback over plain HTTP (TLS is Caddy's own business and needs a public
// name): web seed ranges pass byte for byte and uncompressed, JSON is compressed, ETag / 304 and
// CORS pass through, the WebSocket tracker answers an announce through the proxy, and with
// `trustedProxies` the rate limit is per visitor (the address Caddy saw), which a forged
// X-Forwarded-For does not change. Skipped when caddy is not installed (`apt-get install caddy`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pubkeyN } from './testkit/events.js';
import { archive, freeTcpPort, httpGet, sleep, startGatewayRig, type GatewayRig } from './testkit/gateway-rig.js';

const CADDY = ['/usr/bin/caddy', '/usr/sbin/caddy'].find((p) => existsSync(p));
const skip = CADDY ? false : 'no caddy (apt-get install caddy)';
const AUTHOR = pubkeyN(7400);

let rig: GatewayRig;
let caddy: ChildProcess | null = null;
let caddyLog = '';
let proxy: string;
let ih: string;
let tmp: string;

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'gw-caddy-'));
  // Rate and burst low enough that a few hundred requests from one visitor pass them.
  rig = await startGatewayRig({ trustedProxies: ['127.0.0.1', '::1'], requestsPerSecondPerIp: 2, burstPerIp: 30 });
  ih = (await archive(rig, [AUTHOR], 40, 2000)).bundles!.newest!;
  const port = await freeTcpPort();
  proxy = `http://127.0.0.1:${port}`;
  const caddyfile = join(tmp, 'Caddyfile');
  // The site block is the documented one with a loopback http:// address for the public name.
  writeFileSync(
    caddyfile,
    [
      '{',
      '\tadmin off',
      '\tauto_https off',
      `\tstorage file_system ${join(tmp, 'data')}`,
      '}',
      `http://127.0.0.1:${port} {`,
      '\tbind 127.0.0.1',
      '\tencode {',
      '\t\tmatch {',
      '\t\t\theader Content-Type application/json*',
      '\t\t}',
      '\t\tgzip',
      '\t}',
      `\treverse_proxy 127.0.0.1:${rig.port}`,
      '}',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, HOME: tmp, XDG_DATA_HOME: join(tmp, 'data'), XDG_CONFIG_HOME: join(tmp, 'config') };
  caddy = spawn(CADDY!, ['run', '--config', caddyfile, '--adapter', 'caddyfile'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  caddy.stdout!.on('data', (c: Buffer) => (caddyLog = (caddyLog + c.toString()).slice(-4000)));
  caddy.stderr!.on('data', (c: Buffer) => (caddyLog = (caddyLog + c.toString()).slice(-4000)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (caddy.exitCode !== null) throw new Error(`caddy exited ${caddy.exitCode}: ${caddyLog}`);
    const r = await httpGet(`${proxy}/.well-known/nostr-bt`, { localAddress: '127.0.0.4', timeoutMs: 5000 }).catch(() => null);
    if (r?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`caddy did not proxy the gateway within 30 s: ${caddyLog}`);
    await sleep(200);
  }
});

after(async () => {
  if (caddy && caddy.exitCode === null) {
    const exited = new Promise((r) => caddy!.once('exit', r));
    caddy.kill('SIGTERM');
    const t = setTimeout(() => caddy!.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
  await rig?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('web seed ranges pass through Caddy byte for byte, uncompressed, with ETag, 304 and CORS', { skip, timeout: 60_000 }, async () => {
  const data = readFileSync(join(rig.dataDir, 'bundles', `${ih}.data`));
  assert.ok(data.length > 40_000);
  const range = { range: 'bytes=1000-17383', 'accept-encoding': 'gzip' };
  const direct = await httpGet(`${rig.base}/webseed/${ih}/`, { headers: range });
  const via = await httpGet(`${proxy}/webseed/${ih}/`, { headers: range, localAddress: '127.0.0.4' });
  assert.equal(via.status, 206, caddyLog);
  assert.equal(via.headers['content-encoding'], undefined, 'a range is never compressed');
  assert.equal(via.headers['content-range'], `bytes 1000-17383/${data.length}`);
  assert.ok(via.body.equals(data.subarray(1000, 17384)), 'the same bytes as the data file');
  assert.ok(via.body.equals(direct.body));
  assert.equal(via.headers.etag, direct.headers.etag);
  assert.equal(via.headers['access-control-allow-origin'], '*');
  const whole = await httpGet(`${proxy}/webseed/${ih}/`, { headers: { 'accept-encoding': 'gzip' }, localAddress: '127.0.0.4' });
  assert.equal(whole.status, 200);
  assert.ok(whole.body.equals(data), 'the whole file, as stored');
  const head = await httpGet(`${proxy}/webseed/${ih}/`, { method: 'HEAD', localAddress: '127.0.0.4' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), data.length);
  const again = await httpGet(`${proxy}/webseed/${ih}/`, {
    headers: { 'if-none-match': String(via.headers.etag) },
    localAddress: '127.0.0.4',
  });
  assert.equal(again.status, 304);
  const past = await httpGet(`${proxy}/webseed/${ih}/`, { headers: { range: `bytes=${data.length + 10}-` }, localAddress: '127.0.0.4' });
  assert.equal(past.status, 416);
});

test('JSON is compressed by Caddy and unchanged once decompressed; the pointer passes with its ETag and 304', {
  skip,
  timeout: 60_000,
}, async () => {
  const doc = await httpGet(`${proxy}/.well-known/nostr-bt`, { headers: { 'accept-encoding': 'gzip' }, localAddress: '127.0.0.4' });
  assert.equal(doc.status, 200);
  assert.equal(doc.headers['content-encoding'], 'gzip', JSON.stringify(doc.headers));
  const direct = JSON.parse((await httpGet(`${rig.base}/.well-known/nostr-bt`)).body.toString()) as Record<string, unknown>;
  const viaDoc = JSON.parse(gunzipSync(doc.body).toString()) as Record<string, unknown>;
  assert.deepEqual(viaDoc.bridge, direct.bridge);
  assert.deepEqual(viaDoc.endpoints, direct.endpoints);
  // A pointer is under Caddy's 512-byte minimum for compression: it passes exactly as served.
  const item = await httpGet(`${rig.base}/pointer/${AUTHOR}`);
  assert.equal(item.status, 200);
  const via = await httpGet(`${proxy}/pointer/${AUTHOR}`, { headers: { 'accept-encoding': 'gzip' }, localAddress: '127.0.0.4' });
  assert.equal(via.status, 200);
  const body = via.headers['content-encoding'] === 'gzip' ? gunzipSync(via.body) : via.body;
  assert.ok(body.equals(item.body), 'the signed item exactly as the gateway serves it');
  assert.ok(via.headers.etag, 'an ETag');
  const again = await httpGet(`${proxy}/pointer/${AUTHOR}`, {
    headers: { 'accept-encoding': 'gzip', 'if-none-match': String(via.headers.etag) },
    localAddress: '127.0.0.4',
  });
  assert.equal(again.status, 304, `If-None-Match ${via.headers.etag}`);
});

test("the WebSocket tracker answers an announce through Caddy's upgrade", { skip, timeout: 60_000 }, async () => {
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${new URL(proxy).port}/announce`, { localAddress: '127.0.0.4' });
  const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no tracker answer through caddy within 20 s: ${caddyLog}`)), 20_000);
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once('open', () =>
      ws.send(
        JSON.stringify({
          action: 'announce',
          info_hash: Buffer.from(ih, 'hex').toString('latin1'),
          peer_id: Buffer.from('-NB0001-caddytest000').toString('latin1'),
          numwant: 0,
          uploaded: 0,
          downloaded: 0,
          left: 0,
          event: 'started',
          offers: [],
        }),
      ),
    );
    ws.once('message', (m) => {
      clearTimeout(timer);
      resolve(JSON.parse(m.toString()) as Record<string, unknown>);
    });
  }).finally(() => ws.terminate());
  assert.equal(answer.action, 'announce');
  assert.equal(answer['failure reason'], undefined, JSON.stringify(answer));
  assert.equal(Buffer.from(String(answer.info_hash), 'latin1').toString('hex'), ih);
  assert.equal(typeof answer.interval, 'number');
});

test('behind Caddy the rate limit is per visitor, and a forged X-Forwarded-For does not escape it', {
  skip,
  timeout: 120_000,
}, async () => {
  const from = (localAddress: string, forged?: string) =>
    httpGet(`${proxy}/pointer/${AUTHOR}`, {
      localAddress,
      headers: forged ? { 'x-forwarded-for': forged } : {},
      timeoutMs: 60_000,
    });
  const statuses: number[] = [];
  // 200 at once: past the burst (30) and the rate (2/s) unless answering them took over 85 s.
  for (let round = 0; round < 3 && !statuses.includes(429); round++)
    statuses.push(...(await Promise.all(Array.from({ length: 200 }, () => from('127.0.0.2')))).map((r) => r.status));
  assert.ok(statuses.includes(429), `the flooding visitor is limited: ${statuses.length} answers`);
  assert.deepEqual([...new Set(statuses)].sort(), [200, 429]);
  // Caddy replaces a visitor's X-Forwarded-For with the address it saw: 25 requests claiming 25
  // other addresses (each within a fresh burst) still draw on the flooder's nearly empty bucket.
  const forged = await Promise.all(Array.from({ length: 25 }, (_, i) => from('127.0.0.2', `198.51.100.${i + 1}`)));
  const limited = forged.filter((r) => r.status === 429).length;
  assert.ok(limited >= 10, `${limited} of 25 forged requests limited`);
  assert.equal((await from('127.0.0.3')).status, 200, 'another visitor of the same proxy is served');
});
