// Fetching stranger-written URLs against hostile servers on loopback (real node:http and raw TCP
// servers): every refusal is the typed error it should be and leaves nothing on disk.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_FETCH_POLICY,
  FetchError,
  fetchBlob,
  refusedRange,
  type FetchPolicy,
  type FetchRequest,
  type Resolver,
} from '../sidecar/media/safe-fetch.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const loopback: FetchPolicy = { ...DEFAULT_FETCH_POLICY, allowLoopback: true, timeoutMs: 30_000, idleTimeoutMs: 20_000 };

let dir: string;
let srv: MediaServer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'media-fetch-'));
  srv = await mediaServer();
});
after(async () => {
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

/** A resolver that answers fixed addresses and counts its calls. */
function fixedResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const r = async (host: string) => {
    calls.push(host);
    const a = table[host];
    if (!a) throw new Error(`ENOTFOUND ${host}`);
    return a.map((address) => ({ address, family: net.isIP(address) === 6 ? (6 as const) : (4 as const) }));
  };
  return Object.assign(r, { calls });
}

async function refused(
  req: Omit<FetchRequest, 'dest'> & { dest?: string },
  policy: FetchPolicy,
  code: FetchError['code'] | FetchError['code'][],
): Promise<FetchError> {
  const codes = Array.isArray(code) ? code : [code];
  const dest = req.dest ?? join(dir, `blob-${randomBytes(4).toString('hex')}`);
  const err = await fetchBlob({ ...req, dest }, policy).then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof FetchError, `not a FetchError: ${String(err)}`);
  assert.ok(codes.includes(err.code), `${err.message}: expected ${codes.join(' or ')}`);
  await assertNothingLeft();
  return err;
}

async function assertNothingLeft(): Promise<void> {
  const left = (await readdir(dir)).filter((n) => n.startsWith('blob-'));
  assert.deepEqual(left, [], 'no blob or temporary file left behind');
}

test('honest Blossom server: a 5 MB blob by host name is byte-identical and verified; the name is resolved once and the checked address is the one connected to', async () => {
  const bytes = randomBytes(5 * 1024 * 1024);
  const h = srv.add(bytes, 'video/mp4');
  // blossom.test has no DNS entry: only the pinned address can reach the server.
  const resolve = fixedResolver({ 'blossom.test': ['127.0.0.1'] });
  const dest = join(dir, 'ok-5mb');
  const got = await fetchBlob({ url: `http://blossom.test:${srv.port}/${h}.mp4`, sha256: h, dest, resolve }, loopback);
  assert.deepEqual(got, {
    source: `http://blossom.test:${srv.port}/${h}.mp4`,
    sha256: h,
    bytes: bytes.length,
    mime: 'video/mp4',
    url: `http://blossom.test:${srv.port}/${h}.mp4`,
    redirects: 0,
    address: '127.0.0.1',
  });
  assert.ok((await readFile(dest)).equals(bytes));
  assert.deepEqual(resolve.calls, ['blossom.test']);
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.endsWith('.part')),
    [],
  );
  await rm(dest);
  // The stand-in really is a Blossom server: it answers ranges (what a resuming reader asks).
  const part = await fetch(srv.url(h), { headers: { range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));
});

test('wrong bytes: hash-mismatch, the blob is not kept', async () => {
  srv.route('/liar', (_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(randomBytes(10_000)));
  const err = await refused({ url: srv.url('/liar'), sha256: sha('what the event said') }, loopback, 'hash-mismatch');
  assert.match(err.message, /expected [0-9a-f]{64}/);
});

test('an endless body is cut at maxBlobBytes while streaming', async () => {
  let sent = 0;
  srv.route('/endless', (_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4' }); // chunked, no length
    const chunk = randomBytes(64 * 1024);
    const pump = () => {
      while (!res.destroyed && sent < 1024 ** 3 && res.write(chunk)) sent += chunk.length;
      if (!res.destroyed && sent < 1024 ** 3) res.once('drain', pump);
    };
    pump();
  });
  let seen = 0;
  const err = await refused(
    { url: srv.url('/endless'), sha256: sha('x'), pace: (n) => void (seen += n) },
    { ...loopback, maxBlobBytes: 1024 * 1024 },
    'too-large',
  );
  assert.match(err.message, /body passed 1048576 bytes/);
  assert.ok(seen <= 1024 * 1024 + 64 * 1024, `read ${seen} bytes, at most one chunk past the cap`);
  assert.ok(sent < 64 * 1024 ** 2, `server could only send what the connection buffers (${sent})`);
});

test('a Content-Length over the cap is refused before the body', async () => {
  srv.route('/huge', (_req, res) => {
    res.writeHead(200, { 'content-length': String(10 * 1024 ** 3), 'content-type': 'video/mp4' });
    res.write(randomBytes(1024));
  });
  await refused(
    { url: srv.url('/huge'), sha256: sha('x'), pace: () => assert.fail('no body byte is taken') },
    { ...loopback, maxBlobBytes: 1024 * 1024 },
    'too-large',
  );
});

/** A raw TCP server that writes `head` and then `body` chunks as told, whatever HTTP says. */
async function rawServer(onConn: (s: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<net.Socket>();
  const s = net.createServer((c) => {
    socks.add(c);
    c.on('close', () => socks.delete(c));
    c.on('error', () => {});
    c.once('data', () => onConn(c));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of socks) c.destroy();
        s.close(() => r());
      }),
  };
}

test('a lying Content-Length: a small one followed by megabytes is read only to its length; a large one cut short is truncated', async () => {
  const flood = await rawServer((c) => {
    const chunk = randomBytes(64 * 1024);
    c.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 100\r\n\r\n'), chunk]));
    let n = 1;
    const pump = () => {
      while (!c.destroyed && n < 160 && c.write(chunk)) n++;
      if (!c.destroyed && n < 160) c.once('drain', pump);
    };
    pump();
  });
  const short = await rawServer((c) => {
    c.write('HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 1000000\r\n\r\n');
    c.end(randomBytes(1000));
  });
  try {
    let seen = 0;
    // The hash is of the 10 MB the server pushes: nothing past the declared 100 bytes is taken.
    // Node's parser sees the bytes after them as a broken next response and drops the connection
    // (truncated), or the 100 bytes end the body first (hash-mismatch): refused either way.
    await refused(
      { url: `http://127.0.0.1:${flood.port}/x`, sha256: sha('10 MB'), pace: (n) => void (seen += n) },
      { ...loopback, maxBlobBytes: 64 * 1024 },
      ['truncated', 'hash-mismatch'],
    );
    assert.ok(seen <= 100, `only the declared length may be taken (took ${seen})`);
    const err = await refused({ url: `http://127.0.0.1:${short.port}/x`, sha256: sha('x') }, loopback, 'truncated');
    assert.match(err.message, /connection ended before the body did|got 1000 of 1000000/);
  } finally {
    await flood.close();
    await short.close();
  }
});

/** A Range-capable route for `bytes` whose answers break after `cut(requestNumber)` bytes (null: never). */
function flaky(path: string, bytes: Buffer, cut: (n: number) => number | null, honourRange = true): string[] {
  const ranges: string[] = [];
  srv.route(path, (req, res) => {
    const m = honourRange ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
    if (req.headers.range) ranges.push(req.headers.range);
    const start = m ? Number(m[1]) : 0;
    const head: Record<string, string | number> = {
      'content-type': 'video/mp4',
      'accept-ranges': 'bytes',
      'content-length': bytes.length - start,
    };
    if (m) head['content-range'] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
    res.writeHead(m ? 206 : 200, head);
    const limit = cut(ranges.length);
    if (limit === null) return void res.end(bytes.subarray(start));
    res.write(bytes.subarray(start, start + limit), () => res.socket?.end());
  });
  return ranges;
}

test('a connection that breaks mid-body is resumed with a Range request; the joined bytes are verified', async () => {
  const bytes = randomBytes(3 * 1024 * 1024);
  const h = sha(bytes);
  const ranges = flaky('/flaky-once', bytes, (n) => (n === 0 ? 1024 * 1024 : null));
  const dest = join(dir, 'resumed');
  const got = await fetchBlob({ url: srv.url('/flaky-once'), sha256: h, dest }, loopback);
  assert.equal(got.bytes, bytes.length);
  assert.ok((await readFile(dest)).equals(bytes));
  await rm(dest);
  assert.equal(ranges.length, 1);
  const from = Number(/^bytes=(\d+)-$/.exec(ranges[0]!)![1]);
  assert.ok(from > 0 && from <= 1024 * 1024, ranges[0]);
  // A server that always breaks: 1 request + 3 resumes, then truncated.
  const always = flaky('/flaky-always', bytes, () => 64 * 1024);
  await refused({ url: srv.url('/flaky-always'), sha256: h }, loopback, 'truncated');
  assert.equal(always.length, 3);
  // A server that answers the Range with the whole body again: not resumed.
  const ignoring = flaky('/flaky-ignoring', bytes, (n) => (n === 0 ? 64 * 1024 : null), false);
  const err = await refused({ url: srv.url('/flaky-ignoring'), sha256: h }, loopback, 'truncated');
  assert.match(err.message, /did not resume \(HTTP 200/);
  assert.equal(ignoring.length, 1);
  // A resumed answer that sends more than its range (chunked, endless) is still cut at the cap.
  srv.route('/flaky-endless', (req, res) => {
    if (!req.headers.range) {
      res.writeHead(200, { 'accept-ranges': 'bytes', 'content-length': bytes.length });
      return void res.write(bytes.subarray(0, 64 * 1024), () => res.socket?.end());
    }
    const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range)![1]);
    res.writeHead(206, { 'content-range': `bytes ${from}-${bytes.length - 1}/${bytes.length}` }); // chunked
    const chunk = randomBytes(64 * 1024);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  let seen = 0;
  const big = await refused(
    { url: srv.url('/flaky-endless'), sha256: h, pace: (n) => void (seen += n) },
    { ...loopback, maxBlobBytes: 4 * 1024 * 1024 },
    'too-large',
  );
  assert.match(big.message, /body passed 4194304 bytes/);
  assert.ok(seen <= 4 * 1024 * 1024, `took ${seen} bytes`);
});

test('redirects are re-checked: to 127.0.0.1, to a name that resolves to loopback, to metadata, to file:// — each refused before it is fetched', async () => {
  // The first hop is an explicitly allowed loopback address (127.0.0.2), loopback as such is not:
  // the redirect targets below are refused by the address rule, not by the first hop's.
  const second = await mediaServer('127.0.0.2');
  const policy: FetchPolicy = { ...DEFAULT_FETCH_POLICY, allowAddresses: ['127.0.0.2/32'], timeoutMs: 30_000 };
  const resolve = fixedResolver({
    'media.test': ['127.0.0.2'],
    'internal.test': ['127.0.0.1'],
    'mixed.test': ['93.184.216.34', '::ffff:127.0.0.1'],
  });
  const h = srv.add(randomBytes(1000));
  try {
    const to = (path: string, location: string) => second.route(path, (_q, r) => r.writeHead(302, { location }).end());
    to('/to-ip', srv.url(h));
    to('/to-name', `http://internal.test:${srv.port}/${h}`);
    to('/to-mixed', `http://mixed.test:${srv.port}/${h}`);
    to('/to-metadata', 'http://169.254.169.254/latest/meta-data/');
    to('/to-mapped', `http://[::ffff:127.0.0.1]:${srv.port}/${h}`);
    to('/to-file', 'file:///etc/passwd');
    const before = srv.hits.get(`/${h}`) ?? 0;
    for (const [path, code, why] of [
      ['/to-ip', 'blocked-address', /127\.0\.0\.1 \(loopback\)/],
      ['/to-name', 'blocked-address', /internal\.test resolves to 127\.0\.0\.1 \(loopback\)/],
      ['/to-mixed', 'blocked-address', /::ffff:127\.0\.0\.1 \(loopback\)/],
      ['/to-metadata', 'blocked-address', /169\.254\.169\.254 \(metadata\)/],
      ['/to-mapped', 'blocked-address', /loopback/],
      ['/to-file', 'bad-scheme', /file:/],
    ] as const) {
      const err = await refused({ url: `http://media.test:${second.port}${path}`, sha256: h, resolve }, policy, code);
      assert.match(err.message, why);
      assert.equal(second.hits.get(path), 1);
    }
    assert.equal(srv.hits.get(`/${h}`) ?? 0, before, 'the loopback server was never reached');
    // The same chain is followed when loopback is allowed (the refusals above were the address rule).
    const dest = join(dir, 'via-redirect');
    const ok = await fetchBlob(
      { url: `http://media.test:${second.port}/to-name`, sha256: h, dest, resolve },
      { ...policy, allowLoopback: true },
    );
    assert.equal(ok.redirects, 1);
    assert.equal(ok.url, `http://internal.test:${srv.port}/${h}`);
    await rm(dest);
  } finally {
    await second.close();
  }
});

test('a DNS name that resolves to a private, CGNAT, link-local or unique-local address is refused without connecting', async () => {
  const resolve = fixedResolver({
    'a.test': ['10.0.0.5'],
    'b.test': ['100.64.1.1'],
    'c.test': ['fe80::1'],
    'd.test': ['fd12::1'],
    'e.test': ['fd00:ec2::254'],
    'f.test': ['0.0.0.0'],
    'g.test': ['64:ff9b::a00:1'],
  });
  for (const [host, range] of [
    ['a', 'private'],
    ['b', 'carrierGradeNat'],
    ['c', 'linkLocal'],
    ['d', 'uniqueLocal'],
    ['e', 'metadata'],
    ['f', 'unspecified'],
    ['g', 'rfc6052'],
  ]) {
    const err = await refused(
      { url: `https://${host}.test/${'0'.repeat(64)}`, sha256: '0'.repeat(64), resolve },
      DEFAULT_FETCH_POLICY,
      'blocked-address',
    );
    assert.match(err.message, new RegExp(`\\(${range}\\)`));
  }
  // allowPrivate opens RFC 1918 / CGNAT / unique-local, never link-local or metadata.
  const priv = { ...DEFAULT_FETCH_POLICY, allowPrivate: true };
  for (const a of ['10.0.0.5', '172.16.0.1', '192.168.1.1', '100.64.1.1', 'fd12::1']) assert.equal(refusedRange(a, priv), null, a);
  for (const a of ['169.254.169.254', 'fe80::1', 'fd00:ec2::254', '127.0.0.1', '::1', '224.0.0.1', 'ff02::1', '255.255.255.255', '::'])
    assert.notEqual(refusedRange(a, priv), null, a);
  for (const a of ['::ffff:10.0.0.1', '::ffff:127.0.0.1', '::ffff:169.254.169.254'])
    assert.notEqual(refusedRange(a, DEFAULT_FETCH_POLICY), null, a);
  for (const a of ['93.184.216.34', '2606:4700::1111']) assert.equal(refusedRange(a, DEFAULT_FETCH_POLICY), null, a);
  await refused({ url: 'https://nowhere.test/x', sha256: '0'.repeat(64), resolve }, DEFAULT_FETCH_POLICY, 'dns');
});

test('slowloris: a server dripping one byte per second hits the total timeout at its value', async () => {
  const timers = new Set<NodeJS.Timeout>();
  srv.route('/drip', (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': '100000' });
    const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write('x')), 1000);
    timers.add(t);
  });
  const t0 = Date.now();
  const err = await refused({ url: srv.url('/drip'), sha256: sha('x') }, { ...loopback, timeoutMs: 4000, idleTimeoutMs: 3000 }, 'timeout');
  const ms = Date.now() - t0;
  for (const t of timers) clearInterval(t);
  assert.match(err.message, /not done after 4000 ms/);
  assert.ok(ms >= 4000 && ms < 12_000, `timed out after ${ms} ms`);
});

test('a server that sends headers and then nothing hits the idle timeout at its value', async () => {
  srv.route('/stall', (_req, res) => void res.writeHead(200, { 'content-type': 'image/png', 'content-length': '100' }).flushHeaders());
  const t0 = Date.now();
  const err = await refused(
    { url: srv.url('/stall'), sha256: sha('x') },
    { ...loopback, timeoutMs: 60_000, idleTimeoutMs: 2000 },
    'timeout',
  );
  const ms = Date.now() - t0;
  assert.match(err.message, /no bytes for 2000 ms/);
  assert.ok(ms >= 2000 && ms < 10_000, `timed out after ${ms} ms`);
});

test('redirect loop and redirect cap', async () => {
  srv.route('/loop-a', (_q, r) => r.writeHead(302, { location: '/loop-b' }).end());
  srv.route('/loop-b', (_q, r) => r.writeHead(301, { location: srv.url('/loop-a') }).end());
  const err = await refused({ url: srv.url('/loop-a'), sha256: sha('x') }, loopback, 'too-many-redirects');
  assert.match(err.message, /more than 3 redirects/);
  assert.equal((srv.hits.get('/loop-a') ?? 0) + (srv.hits.get('/loop-b') ?? 0), 4, 'the first request and 3 redirects');
  // Exactly 3 redirects is fine.
  const h = srv.add(randomBytes(100));
  for (const i of [1, 2, 3]) srv.route(`/hop${i}`, (_q, r) => r.writeHead(307, { location: i === 3 ? `/${h}` : `/hop${i + 1}` }).end());
  const dest = join(dir, 'hops');
  assert.equal((await fetchBlob({ url: srv.url('/hop1'), sha256: h, dest }, loopback)).redirects, 3);
  await rm(dest);
});

test("https: the certificate is checked against the URL's host name over the pinned connection (a self-signed one is refused)", async () => {
  const tls = await mkdtemp(join(tmpdir(), 'media-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=tls.test',
        '-addext',
        'subjectAltName=DNS:tls.test',
        '-days',
        '1',
        '-keyout',
        join(tls, 'key.pem'),
        '-out',
        join(tls, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const [key, cert] = await Promise.all([readFile(join(tls, 'key.pem')), readFile(join(tls, 'cert.pem'))]);
    const body = randomBytes(1000);
    const sni: string[] = [];
    const server = https.createServer({ key, cert, SNICallback: (name, cb) => (sni.push(name), cb(null, undefined)) }, (_req, res) =>
      res.end(body),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const resolve = fixedResolver({ 'tls.test': ['127.0.0.1'] });
      const err = await refused({ url: `https://tls.test:${port}/${sha(body)}`, sha256: sha(body), resolve }, loopback, 'tls');
      assert.match(err.message, /self-signed certificate/);
      assert.deepEqual(resolve.calls, ['tls.test']);
      assert.deepEqual(sni, ['tls.test'], 'connected to the pinned address, named tls.test in the handshake');
      // The same server answers a client that trusts its certificate: the refusal was the certificate check.
      const ok = await new Promise<string>((done, fail) =>
        https
          .get({ host: '127.0.0.1', port, servername: 'tls.test', ca: cert, path: '/' }, (res) =>
            res.resume().on('end', () => done(String(res.statusCode))),
          )
          .on('error', fail),
      );
      assert.equal(ok, '200', 'the server itself works');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  } finally {
    await rm(tls, { recursive: true, force: true });
  }
});

test('schemes, credentials, host lists, MIME allow-list and HTTP status', async () => {
  for (const url of ['ftp://example.com/a', 'file:///etc/passwd', 'javascript:alert(1)', 'data:text/plain,hi', 'gopher://x/']) {
    await refused({ url, sha256: sha('x') }, loopback, 'bad-scheme');
  }
  await refused({ url: 'not a url', sha256: sha('x') }, loopback, 'bad-url');
  // Numeric host spellings are normalized by the URL parser before the address rule sees them.
  for (const host of ['2130706433', '0x7f.1', '0177.0.0.1', '127.1', '[::ffff:7f00:1]', '[::1]']) {
    const err = await refused({ url: `http://${host}:${srv.port}/x`, sha256: sha('x') }, DEFAULT_FETCH_POLICY, 'blocked-address');
    assert.match(err.message, /\(loopback\)/);
  }
  await refused({ url: `http://u:p@127.0.0.1:${srv.port}/`, sha256: sha('x') }, loopback, 'bad-url');
  const resolve = fixedResolver({ 'cdn.evil.test': ['127.0.0.1'], 'good.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
  const png = srv.add(randomBytes(500), 'image/png');
  const html = srv.add(randomBytes(500), 'text/html; charset=utf-8');
  await refused(
    { url: `http://cdn.evil.test:${srv.port}/${png}`, sha256: png, resolve },
    { ...loopback, denyHosts: ['evil.test'] },
    'host-refused',
  );
  await refused(
    { url: `http://other.test:${srv.port}/${png}`, sha256: png, resolve },
    { ...loopback, allowHosts: ['good.test'] },
    'host-refused',
  );
  assert.deepEqual(resolve.calls, [], 'host lists are checked before any lookup');
  const mimes = { ...loopback, allowHosts: ['good.test'], mimeAllow: ['image/*', 'video/mp4'] };
  const dest = join(dir, 'png');
  assert.equal((await fetchBlob({ url: `http://good.test:${srv.port}/${png}`, sha256: png, dest, resolve }, mimes)).mime, 'image/png');
  await rm(dest);
  const err = await refused({ url: `http://good.test:${srv.port}/${html}`, sha256: html, resolve }, mimes, 'mime-refused');
  assert.match(err.message, /text\/html/);
  const e404 = await refused({ url: srv.url('0'.repeat(64)), sha256: '0'.repeat(64) }, loopback, 'http-status');
  assert.match(e404.message, /HTTP 404/);
  await refused({ url: srv.url(png), sha256: png }, DEFAULT_FETCH_POLICY, 'blocked-address'); // loopback is not allowed by default
});
