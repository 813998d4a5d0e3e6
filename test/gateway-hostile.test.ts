// Hostile clients against the gateway of a real sidecar: slowloris, thousands of idle connections,
// a request flood, and one behind a trusted proxy. Each is bounded (closed, refused with a clear
// 4xx), memory stays bounded, and an honest client on another address is served meanwhile.
// Loopback addresses 127.0.0.x are distinct client addresses (all local on Linux).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pubkeyN } from './testkit/events.js';
import { archive, httpGet, startGatewayRig, type GatewayRig } from './testkit/gateway-rig.js';

const HEADERS_MS = 2000;
const IDLE_MS = 2000;
const STALL_MS = 2000;
const AUTHOR = pubkeyN(8100);
let rig: GatewayRig;
/** The largest bundle's data file: more than the loopback socket buffers hold. */
let big: { ih: string; bytes: number };

before(async () => {
  rig = await startGatewayRig({
    headersTimeoutMs: HEADERS_MS,
    idleTimeoutMs: IDLE_MS,
    maxConnectionsPerIp: 64,
    requestsPerSecondPerIp: 50,
    burstPerIp: 100,
    trustedProxies: ['127.0.0.3'],
    stallTimeoutMs: STALL_MS,
  });
  await archive(rig, [AUTHOR], 3);
  await archive(rig, [pubkeyN(8101)], 40, 400_000, 1_700_200_000);
  const dir = join(rig.dataDir, 'bundles');
  const sizes = readdirSync(dir)
    .filter((f) => f.endsWith('.data'))
    .map((f) => ({ ih: f.slice(0, 40), bytes: statSync(join(dir, f)).size }))
    .sort((a, b) => b.bytes - a.bytes);
  big = sizes[0]!;
  assert.ok(big.bytes > 7_000_000, `largest bundle ${big.bytes} bytes`);
});
after(async () => rig?.stop());

const honest = () => httpGet(`${rig.base}/pointer/${AUTHOR}`, { localAddress: '127.0.0.2', timeoutMs: 10_000 });

/** Sockets the server closed (recorded from the start: a refused one closes right after the connect). */
const closed = new WeakSet<Socket>();

function openSocket(localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: rig.port, localAddress });
    s.on('error', () => {});
    s.once('close', () => closed.add(s));
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** ms until the server closes `s` (bounded by `maxMs`: then -1). */
function closedAfter(s: Socket, maxMs: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), maxMs);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
  });
}

async function rssMb(): Promise<number> {
  return (await rig.sidecar.status()).memory!.rss;
}

test('slowloris: headers dribbled in are cut at headersTimeoutMs with 408; honest clients served meanwhile', {
  timeout: 60_000,
}, async () => {
  const slow = await openSocket('127.0.0.1');
  let answer = '';
  slow.on('data', (d) => (answer += d.toString()));
  slow.write('GET /.well-known/nostr-bt HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => slow.writable && slow.write('X-Slow: 1\r\n'), 300);
  let slowMs: number;
  try {
    [slowMs] = await Promise.all([closedAfter(slow, 20_000), honest().then((r) => assert.equal(r.status, 200))]);
  } finally {
    // A failed assertion must not leave the drip timer holding the test process open for ever.
    clearInterval(drip);
    slow.destroy();
  }
  assert.ok(slowMs >= HEADERS_MS - 100 && slowMs < HEADERS_MS + 5000, `slow headers closed after ${Math.round(slowMs)} ms`);
  assert.match(answer, /^HTTP\/1\.1 408/);
});

test('5,000 idle connections from 10 addresses: at most 64 held per address, the rest closed at once; memory bounded; honest clients served', {
  timeout: 120_000,
}, async () => {
  const rss0 = await rssMb();
  const sockets: Socket[] = [];
  const answer = new Map<Socket, string>();
  try {
    for (let a = 0; a < 10; a++) {
      const batch = await Promise.allSettled(Array.from({ length: 500 }, () => openSocket(`127.0.1.${a + 1}`)));
      for (const b of batch) {
        if (b.status !== 'fulfilled') continue;
        sockets.push(b.value);
        b.value.on('data', (d: Buffer) => answer.set(b.value, (answer.get(b.value) ?? '') + d.toString()));
      }
    }
    // Refused ones are closed by the server right after the accept.
    const deadline = Date.now() + 10_000;
    const held = () => sockets.filter((s) => !closed.has(s)).length;
    while (held() > 640 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(held() <= 640, `${held()} of ${sockets.length} connections held`);
    for (let i = 0; i < 5; i++) assert.equal((await honest()).status, 200);
    assert.ok((await rssMb()) - rss0 < 100, 'RSS grew less than 100 MB');
    // Held ones end with 408 at headersTimeoutMs, refused ones at once with nothing. On a slow
    // machine held ones time out while others still connect, freeing slots: so at least 64 per
    // address were held, and every connection was one or the other.
    const end = Date.now() + HEADERS_MS + 15_000;
    while (sockets.some((s) => !closed.has(s)) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    const timedOut = sockets.filter((s) => answer.get(s)?.startsWith('HTTP/1.1 408')).length;
    const refused = sockets.filter((s) => closed.has(s) && !answer.get(s)).length;
    assert.ok(timedOut >= 600, `${timedOut} held until the headers timeout (64 per address)`);
    assert.equal(timedOut + refused, sockets.length);
  } finally {
    for (const s of sockets) s.destroy();
  }
});

test('a request flood from one address gets 429 with Retry-After past its rate; another address is served every time', {
  timeout: 60_000,
}, async () => {
  const rss0 = await rssMb();
  const limited0 = (await rig.sidecar.status()).gateway!.rateLimited;
  const agent = new Agent({ keepAlive: true, maxSockets: 32, localAddress: '127.0.0.1' } as ConstructorParameters<typeof Agent>[0]);
  const counts = new Map<number, number>();
  const t0 = performance.now();
  let retryAfter: string | undefined;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: rig.port, path: `/pointer/${AUTHOR}`, agent }, (res) => {
        counts.set(res.statusCode!, (counts.get(res.statusCode!) ?? 0) + 1);
        if (res.statusCode === 429) retryAfter = res.headers['retry-after'];
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
  let sent = 0;
  const honestResults: number[] = [];
  const flood = Promise.all(
    Array.from({ length: 32 }, async () => {
      while (sent < 3000) {
        sent++;
        await one();
      }
    }),
  );
  const during = (async () => {
    for (let i = 0; i < 20; i++) honestResults.push((await honest()).status);
  })();
  await Promise.all([flood, during]);
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const ok = counts.get(200) ?? 0;
  assert.ok((counts.get(429) ?? 0) > 1000, `429s: ${JSON.stringify([...counts])}`);
  assert.ok(ok <= 100 + 50 * seconds + 20, `${ok} served in ${seconds.toFixed(1)} s: burst 100 + 50/s`);
  assert.equal(retryAfter, '1');
  assert.deepEqual(honestResults, Array(20).fill(200));
  assert.ok((await rssMb()) - rss0 < 100, 'RSS grew less than 100 MB');
  // Every 429 is counted (in /status, so in /metrics), and nothing else is.
  const limited = (await rig.sidecar.status()).gateway!.rateLimited - limited0;
  assert.equal(limited, counts.get(429));
});

test('behind a trusted proxy the client is the last X-Forwarded-For entry: one client is limited, another through the same proxy is not', {
  timeout: 60_000,
}, async () => {
  const via = (client: string) =>
    httpGet(`${rig.base}/pointer/${AUTHOR}`, {
      localAddress: '127.0.0.3',
      headers: { 'x-forwarded-for': `203.0.113.9, ${client}` },
      timeoutMs: 60_000,
    });
  const statuses: number[] = [];
  // 300 at once: past the burst (100) and the rate (50/s) unless answering them took over 4 s.
  for (let round = 0; round < 5 && !statuses.includes(429); round++) {
    statuses.push(...(await Promise.all(Array.from({ length: 300 }, () => via('198.51.100.1')))).map((r) => r.status));
  }
  assert.ok(statuses.includes(429), 'the flooding client is limited');
  assert.equal((await via('198.51.100.2')).status, 200, 'another client of the proxy is not');
  // The proxy's connections are not capped per address.
  const many = await Promise.all(
    Array.from({ length: 80 }, (_, i) =>
      httpGet(`${rig.base}/.well-known/nostr-bt`, { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': `198.51.101.${i}` } }),
    ),
  );
  assert.deepEqual([...new Set(many.map((m) => m.status))], [200]);
});

test('connections that never send a byte are closed at headersTimeoutMs with 408, and their address may connect again', {
  timeout: 60_000,
}, async () => {
  const base = (await rig.sidecar.status()).gateway!.openConnections;
  const answers: (() => string)[] = [];
  // Each one's time to close, from its own connect.
  const closing = await Promise.all(
    Array.from({ length: 64 }, () =>
      openSocket('127.0.0.6').then((s) => {
        let a = '';
        s.on('data', (d: Buffer) => (a += d.toString()));
        answers.push(() => a);
        return { closing: closedAfter(s, 30_000) };
      }),
    ),
  );
  // The last one connected just now: it has about HEADERS_MS to live. Polled, since one status
  // answer on a busy machine can come after they are gone.
  const seen = await rig.sidecar.waitFor((s) => s.gateway!.openConnections > base, HEADERS_MS).catch(() => rig.sidecar.status());
  const times = await Promise.all(closing.map((c) => c.closing));
  for (const ms of times)
    assert.ok(ms >= HEADERS_MS - 500 && ms < HEADERS_MS + 5000, `silent connection closed after ${Math.round(ms)} ms`);
  for (const a of answers) assert.match(a(), /^HTTP\/1\.1 408/);
  // The open-connections gauge counted them, and forgets them once the server has closed them.
  assert.ok(seen.gateway!.openConnections > base, `${seen.gateway!.openConnections} open while silent, ${base} before`);
  const after = await rig.sidecar.waitFor((s) => s.gateway!.openConnections <= base, 10_000);
  assert.ok(after.gateway!.openConnections <= base);
  const r = await httpGet(`${rig.base}/pointer/${AUTHOR}`, { localAddress: '127.0.0.6' });
  assert.equal(r.status, 200, 'the address is served again once its silent connections are gone');
});

test('a client that stops reading a web seed download is cut after stallTimeoutMs; a slow reader that keeps reading is not', {
  timeout: 120_000,
}, async () => {
  const download = (read: (s: Socket) => void) =>
    openSocket('127.0.0.7').then((s) => {
      s.write(`GET /webseed/${big.ih}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
      read(s);
      return s;
    });
  const base = (await rig.sidecar.status()).gateway!.openConnections;
  let stalledGot = 0;
  let reading = false;
  const stalled = await download((s) =>
    s.on('data', (d: Buffer) => {
      stalledGot += d.length;
      if (!reading) s.pause(); // the receive window closes
    }),
  );
  const t0 = performance.now();
  // A client that does not read cannot see the close: the server's count of open connections does.
  await rig.sidecar.waitFor((st) => st.gateway!.openConnections > base, 10_000);
  await rig.sidecar.waitFor((st) => st.gateway!.openConnections <= base, 60_000);
  const ms = performance.now() - t0;
  assert.ok(ms >= STALL_MS - 200 && ms < STALL_MS + 30_000, `closed after ${Math.round(ms)} ms`);
  // Reading again, the client gets what was in flight, then the end: far less than the file.
  const ended = closedAfter(stalled, 30_000);
  reading = true;
  stalled.resume();
  assert.ok((await ended) >= 0, 'the stalled download ends once read');
  assert.ok(stalledGot < big.bytes, `it got ${stalledGot} of ${big.bytes} bytes`);

  // Reads a chunk (at most 64 KiB), then waits 20 ms: over 5 s for the file, never idle for long.
  let slowGot = 0;
  const t1 = performance.now();
  const slow = await download((s) =>
    s.on('data', (d: Buffer) => {
      slowGot += d.length;
      s.pause();
      setTimeout(() => s.resume(), 20);
    }),
  );
  const deadline = Date.now() + 90_000;
  while (slowGot < big.bytes && !closed.has(slow) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const took = performance.now() - t1;
  slow.destroy();
  assert.ok(slowGot > big.bytes, `the slow reader got all ${big.bytes} bytes and the headers (${slowGot}) in ${Math.round(took)} ms`);
  assert.ok(took > STALL_MS, 'the slow download lasted longer than stallTimeoutMs');
});
