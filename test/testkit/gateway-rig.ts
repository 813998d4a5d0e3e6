// A real sidecar (child process) with its gateway on loopback, a local DHT, and archived events
// of a few authors, for the gateway tests and benchmark. HTTP requests are made with node:http
// from a chosen loopback source address (127.0.0.0/8 is all local on Linux), so a test can be an
// attacker on one address and an honest client on another.
import { request } from 'node:http';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, SidecarProcess, sleep } from './sidecar-process.js';
import { startLocalDht, type LocalDht } from './local-dht.js';
import { pluginLine, unsignedEvent, contentOf } from './events.js';
import { sendLines } from './ingest-client.js';
import type { Status } from '../../sidecar/ops/status.js';

export interface GatewayRig {
  sidecar: SidecarProcess;
  dht: LocalDht;
  /** http://127.0.0.1:<port> */
  base: string;
  port: number;
  bridgeKey: string;
  dataDir: string;
  /** Authors archived so far (each has a first pointer page once archive() returns). */
  authors: Set<string>;
  stop(): Promise<void>;
}

export async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Starts the sidecar with `gateway` settings merged over listen/publicUrl on a free port. */
export async function startGatewayRig(
  gateway: Record<string, unknown> = {},
  opts: { publicUrl?: boolean; dhtNodes?: number; bundle?: Record<string, unknown>; media?: Record<string, unknown> } = {},
): Promise<GatewayRig> {
  const dht = await startLocalDht(opts.dhtNodes ?? 8);
  const port = await freeTcpPort();
  const base = `http://127.0.0.1:${port}`;
  const ws = makeWorkspace({
    dht: { bootstrap: dht.bootstrap, putsPerSecond: 200 },
    bundle: { windowSeconds: 1, ...opts.bundle },
    gateway: { listen: `127.0.0.1:${port}`, ...(opts.publicUrl === false ? {} : { publicUrl: base }), ...gateway },
    ...(opts.media ? { media: opts.media } : {}),
  });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start(30_000);
  } catch (err) {
    await sidecar.stop();
    await dht.stop();
    ws.cleanup();
    throw err;
  }
  const rt = JSON.parse(readFileSync(join(ws.dataDir, 'sidecar.json'), 'utf8')) as { gateway: string };
  if (rt.gateway !== `127.0.0.1:${port}`) throw new Error(`gateway at ${rt.gateway}, expected 127.0.0.1:${port}`);
  const st = await sidecar.status();
  return {
    sidecar,
    dht,
    base,
    port,
    bridgeKey: st.bridge!.publicKey,
    dataDir: ws.dataDir,
    authors: new Set(),
    async stop() {
      await sidecar.stop();
      await dht.stop();
      ws.cleanup();
    },
  };
}

/** Archives `perAuthor` events of each author and waits until they are bundled and their pointers put. */
export async function archive(
  rig: GatewayRig,
  authors: string[],
  perAuthor: number,
  contentBytes = 200,
  t0 = 1_700_000_000,
): Promise<Status> {
  const lines: string[] = [];
  authors.forEach((pk, a) => {
    for (let i = 0; i < perAuthor; i++)
      lines.push(pluginLine(unsignedEvent(pk, { kind: 1, created_at: t0 + i, content: contentOf(contentBytes, a * 100_000 + i) })));
  });
  const before = await rig.sidecar.status();
  const acked = await sendLines(rig.sidecar.socketPath, lines, 120_000);
  if (acked !== lines.length) throw new Error(`${acked} of ${lines.length} lines acknowledged`);
  const want = before.events.stored + lines.length;
  for (const pk of authors) rig.authors.add(pk);
  // `published` also counts the bridge item put at start-up, so it alone does not say that
  // these authors' pointers are out: every archived author's first page plus the bridge item.
  const st = await rig.sidecar.waitFor(
    (s) =>
      s.events.stored >= want &&
      (s.pointers?.items ?? 0) >= rig.authors.size + 1 &&
      s.bundles?.pendingEvents === 0 &&
      (s.bundles?.built ?? 0) > (before.bundles?.built ?? 0) &&
      s.pointers?.dirtyAuthors === 0 &&
      (s.pointers?.published ?? 0) > (before.pointers?.published ?? 0),
    90_000,
  );
  // The count above can move with the bridge item's put before the authors' pointers are signed
  // (on a busy machine): wait until the gateway serves each author's pointer.
  const deadline = Date.now() + 60_000;
  for (const pk of authors) {
    while ((await httpGet(`${rig.base}/pointer/${pk}`)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`no pointer served for author ${pk} within 60 s of its events being bundled`);
      await sleep(200);
    }
  }
  return st;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request on its own connection (no agent), bounded in time. */
export function httpGet(
  url: string,
  o: { method?: string; headers?: Record<string, string>; localAddress?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    // The path is sent as written (a URL object would resolve "%2e%2e" and "//" away).
    const m = /^http:\/\/([^/:]+):(\d+)(\/.*)?$/.exec(url);
    if (!m) throw new Error(`not a loopback http URL: ${url}`);
    const opts = {
      host: m[1],
      port: Number(m[2]),
      path: m[3] ?? '/',
      method: o.method ?? 'GET',
      headers: o.headers,
      localAddress: o.localAddress,
      agent: false,
    };
    const req = request(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(o.timeoutMs ?? 20_000, () => req.destroy(new Error(`no answer to ${url} within ${o.timeoutMs ?? 20_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export { sleep };
