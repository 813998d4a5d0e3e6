#!/usr/bin/env node
// `npm run demo`: the whole pipeline end to end on this machine, loopback only, in about 15 s.
//
//   local DHT (8 nodes) → sidecar (child process) → plugin fed like strfry → bundle torrent →
//   an independent WebTorrent client that knows only the magnet finds the sidecar through the
//   DHT, downloads the bundle and verifies every event → `nostr-bt resolve`, run as a separate
//   process that knows only an author's key and the bridge's key, reads the author's pointer
//   from the DHT and prints that author's verified events: what the bridge is for.
//
// Nothing leaves 127.0.0.1: every DHT node gets an explicit bootstrap list (never the public
// routers) and no tracker is used. Every wait is bounded; the temp dir and child processes are
// removed on success, failure and Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import bencode from 'bencode';
import DHT from 'bittorrent-dht';
import { readAuthorFile } from '../sidecar/bundles/builder.js';
import { verifyEvent, type Event as NostrEvent } from 'nostr-tools/pure';
import { stringify } from 'smol-toml';
import type WebTorrent from 'webtorrent';
import type { Torrent } from 'webtorrent';
import { SidecarProcess, type Runtime } from '../test/testkit/sidecar-process.js';
import { quietWebTorrent } from '../test/testkit/quiet-webtorrent.js';
import type { Status } from '../sidecar/ops/status.js';
import { verifyEd25519 } from '../sidecar/formats/ed25519.js';
import { authorSalt } from '../sidecar/formats/pointer-item.js';
import { Store } from '../sidecar/index/store.js';
import { npubEncode } from 'nostr-tools/nip19';
import type { ResolveSummary } from './reader/resolve.js';

const DIST = resolve(fileURLToPath(import.meta.url), '../..');
const ROOT = resolve(DIST, '..');
const SIDECAR_BIN = join(DIST, 'sidecar/main.js');
const PLUGIN_BIN = join(DIST, 'plugin/main.js');
const CLI_BIN = join(DIST, 'scripts/cli.js');
const FIXTURE_CANDIDATES = [process.env.NOSTR_BT_DEMO_FIXTURE, resolve(ROOT, 'test/fixtures/strfry-plugin-input.jsonl')].filter(
  (p): p is string => typeof p === 'string' && p.length > 0,
);

const DHT_NODES = 8;
const WINDOW_SECONDS = 3;
const OVERALL_TIMEOUT_MS = 60_000;
/** `--verbose`: print the sidecar's log (JSON lines) at the end. */
const VERBOSE = process.argv.includes('--verbose') || process.argv.includes('-v');

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (msg: string) => console.log(`[${elapsed()}] ${msg}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class DemoError extends Error {}

/** What a failure report should show. */
const current: { sidecar: SidecarProcess | null } = { sidecar: null };

/** Rejects after `ms` with a message saying what was awaited. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DemoError(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Polls `probe` until it returns a value (not undefined), bounded. */
async function pollUntil<T>(probe: () => Promise<T | undefined> | T | undefined, ms: number, what: string, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new DemoError(`timed out after ${ms} ms: ${what}`);
    await sleep(every);
  }
}

// ---------------------------------------------------------------------------------------------
// Cleanup: run once, in reverse order, on success, failure, Ctrl-C or SIGTERM.

const cleanups: { name: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | null = null;
function onCleanup(name: string, fn: () => Promise<void> | void): void {
  cleanups.push({ name, fn });
}
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      try {
        await within(Promise.resolve().then(c.fn), 20_000, `cleanup: ${c.name}`);
      } catch (err) {
        console.error(`demo: cleanup of ${c.name} failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\ndemo: ${sig} received, cleaning up...`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Local DHT

async function startDhtNode(bootstrap: string[] | false): Promise<DHT> {
  // bootstrap must never be undefined/empty: k-rpc then falls back to the public routers.
  const dht = new DHT({ bootstrap, host: false, verify: verifyEd25519 });
  dht.setMaxListeners(0);
  dht.on('error', (err: Error) => console.error(`demo: DHT node error: ${err.message}`));
  dht.on('warning', () => {});
  await within(new Promise<void>((r) => dht.listen(0, '127.0.0.1', () => r())), 5000, 'DHT node listen');
  if (bootstrap !== false && bootstrap.length > 0) {
    await within(new Promise<void>((r) => (dht.ready ? r() : dht.once('ready', () => r()))), 10_000, 'DHT node bootstrap');
  }
  return dht;
}

function stopDht(dht: DHT): Promise<void> {
  return new Promise((r) => (dht.destroyed ? r() : dht.destroy(() => r())));
}

const addr = (dht: DHT) => `127.0.0.1:${dht.address().port}`;

// ---------------------------------------------------------------------------------------------
// Sidecar child process: the testkit's harness (started as its bin runs, bounded stop, log kept)

async function getStatus(rt: Runtime): Promise<Status> {
  const res = await fetch(`http://${rt.status}/status`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new DemoError(`GET /status answered ${res.status}`);
  return (await res.json()) as Status;
}

// ---------------------------------------------------------------------------------------------
// The plugin, driven as strfry drives it: `/bin/sh -c <command>`, one line, wait for the reply.

interface Reply {
  id: string;
  action: string;
  msg?: string;
}

class PluginDriver {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private closed = false;
  stderr = '';

  constructor(command: string, env: NodeJS.ProcessEnv) {
    this.child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
    this.child.stdin!.on('error', () => {});
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-200_000)));
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.wake();
    });
    this.child.stdout!.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async send(line: string, expectedId: string, timeoutMs: number): Promise<Reply> {
    this.child.stdin!.write(line + '\n');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) {
        let r: Reply;
        try {
          r = JSON.parse(l) as Reply;
        } catch {
          continue; // strfry ignores (and logs) non-JSON output
        }
        if (r.id !== expectedId) throw new DemoError(`plugin answered id ${r.id}, expected ${expectedId}`);
        if (!['accept', 'reject', 'shadowReject'].includes(r.action)) throw new DemoError(`plugin answered unknown action ${r.action}`);
        return r;
      }
      if (this.closed) throw new DemoError(`the plugin exited without answering; its stderr:\n${this.stderr.slice(-4000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new DemoError(`the plugin did not answer within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  /** Closes stdin (as strfry does on shutdown) and waits for the exit; kills the group after `ms`. */
  async close(ms: number): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.stdin!.end();
    const ok = await Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
    if (!ok) this.kill();
    await Promise.race([exited, sleep(2000)]);
  }

  kill(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bundles on disk

interface BundleInfo {
  ih: string;
  name: string;
  bytes: number;
  pieceLength: number;
  files: { pubkey: string; length: number }[];
  magnet: string;
}

function readBundle(bundlesDir: string, ih: string): BundleInfo {
  const raw = readFileSync(join(bundlesDir, `${ih}.torrent`));
  const t = bencode.decode(raw) as { info: { name: Uint8Array; 'piece length': number; files: { length: number; path: Uint8Array[] }[] } };
  const dec = new TextDecoder();
  const name = dec.decode(t.info.name);
  const files = t.info.files.map((f) => ({ pubkey: dec.decode(f.path[0]).replace(/\.jsonl$/, ''), length: f.length }));
  return {
    ih,
    name,
    bytes: files.reduce((n, f) => n + f.length, 0),
    pieceLength: t.info['piece length'],
    files,
    magnet: `magnet:?xt=urn:btih:${ih}&dn=${encodeURIComponent(name)}`,
  };
}

function listBundles(bundlesDir: string): string[] {
  try {
    return readdirSync(bundlesDir)
      .filter((f) => /^[0-9a-f]{40}\.torrent$/.test(f))
      .map((f) => f.slice(0, 40));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// The leecher: its own DHT node, only the magnet.

async function startLeecher(dht: DHT): Promise<WebTorrent> {
  // A `dht` option would be taken as constructor options; our node is set below.
  const client = quietWebTorrent({ torrentPort: 0 });
  client.on('error', (err: Error) => console.error(`demo: leecher error: ${err.message}`));
  client.dht = dht;
  await within(new Promise<void>((r) => (client.listening ? r() : client.once('listening', () => r()))), 5000, 'leecher listen');
  return client;
}

const stoppedLeechers = new WeakSet<WebTorrent>();
function stopLeecher(client: WebTorrent): Promise<void> {
  if (stoppedLeechers.has(client)) return Promise.resolve();
  stoppedLeechers.add(client);
  client.dht = null; // ours: stopped separately
  return new Promise((r) => client.destroy(() => r()));
}

/** Looks the infohash up until the DHT returns the sidecar (bounded in time and lookups). */
async function waitForAnnounce(dht: DHT, ih: string, port: number, ms: number): Promise<number> {
  const started = Date.now();
  for (let attempt = 0; Date.now() - started < ms && attempt < 30; attempt++) {
    let found = false;
    const onPeer = (peer: { host: string; port: number }, infoHash: Uint8Array) => {
      if (Buffer.from(infoHash).toString('hex') === ih && peer.port === port) found = true;
    };
    dht.on('peer', onPeer);
    await within(new Promise<void>((r) => dht.lookup(ih, () => r())), 5000, `DHT lookup of ${ih}`).finally(() =>
      dht.removeListener('peer', onPeer),
    );
    if (found) return Date.now() - started;
    await sleep(300);
  }
  throw new DemoError(`the DHT does not list the sidecar as a peer of ${ih} after ${ms} ms (is its DHT node bootstrapped?)`);
}

async function download(client: WebTorrent, magnet: string, path: string, ms: number): Promise<{ torrent: Torrent; peers: Set<string> }> {
  const peers = new Set<string>();
  const torrent = client.add(magnet, { path });
  torrent.on('wire', (_w: unknown, a: string) => peers.add(a));
  await within(
    new Promise<void>((resolve, reject) => {
      if (torrent.done) return resolve();
      torrent.once('done', () => resolve());
      torrent.once('error', (err: Error) => reject(new DemoError(`download failed: ${err.message}`)));
    }),
    ms,
    `download of ${magnet} (is the sidecar announced in the DHT?)`,
  );
  return { torrent, peers };
}

/** Waits until the sidecar's index says `author`'s pointer, as last signed, is stored in the DHT. */
async function waitPointerPut(dataDir: string, author: string, ms: number, alive: () => void): Promise<{ seq: number; nodes: number }> {
  const salt = authorSalt(author).toString('hex');
  return pollUntil(
    async () => {
      alive();
      // Read-only, beside the running sidecar (LMDB readers do not block its writer).
      const store = Store.open(join(dataDir, 'index'), { readOnly: true });
      try {
        const r = store.pointers.get(salt);
        return r && r.putAt > 0 && r.putAt >= r.changedAt && r.nodes > 0 ? { seq: r.seq, nodes: r.nodes } : undefined;
      } finally {
        await store.close();
      }
    },
    ms,
    `the pointer of ${author} stored in the DHT`,
    200,
  );
}

/** `nostr-bt resolve`, the real CLI in a process of its own: knows the npub, the bridge key and the local DHT. */
async function runResolve(
  npub: string,
  bridgeKey: string,
  bootstrap: string[],
  configPath: string,
  ms: number,
): Promise<{ pid: number; code: number | null; events: NostrEvent[]; summary: ResolveSummary }> {
  const args = [
    CLI_BIN,
    'resolve',
    npub,
    '--bridge',
    bridgeKey,
    '--bootstrap',
    bootstrap.join(','),
    '--bind',
    '127.0.0.1',
    '--summary',
    'json',
    '--timeout',
    String(ms / 1000 - 5),
  ];
  // The demo's config (loopback DHT) rather than /etc/nostr-bt's, should one exist.
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOSTR_BT_CONFIG: configPath } });
  onCleanup('resolve', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await within(
    new Promise<number | null>((resolve, reject) => {
      child.once('error', (err) => reject(new DemoError(`nostr-bt resolve: ${err.message}`)));
      child.once('close', (c) => resolve(c));
    }),
    ms,
    'nostr-bt resolve',
  );
  const summaryLine = stderr
    .trimEnd()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (code !== 0 || !summaryLine) throw new DemoError(`nostr-bt resolve exited with ${code}:\n${stderr.trimEnd()}`);
  const events = stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as NostrEvent);
  return { pid: child.pid!, code, events, summary: JSON.parse(summaryLine) as ResolveSummary };
}

function snippet(s: string, n = 40): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return JSON.stringify(one.length > n ? one.slice(0, n) + '…' : one);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const fixture = FIXTURE_CANDIDATES.find((p) => existsSync(p));
  if (!fixture)
    throw new DemoError(
      `fixture strfry-plugin-input.jsonl not found (looked in ${FIXTURE_CANDIDATES.join(', ')}); set NOSTR_BT_DEMO_FIXTURE`,
    );
  for (const bin of [SIDECAR_BIN, PLUGIN_BIN, CLI_BIN]) if (!existsSync(bin)) throw new DemoError(`${bin} is missing: run npm run build`);

  const tmp = mkdtempSync(join(tmpdir(), 'nostr-bt-demo-'));
  onCleanup('temp dir', () => rmSync(tmp, { recursive: true, force: true }));
  say(`nostr-bt demo (loopback only), working in ${tmp}`);

  // 1. local DHT ------------------------------------------------------------------------------
  const nodes: DHT[] = [];
  onCleanup('DHT nodes', async () => {
    await Promise.all(nodes.map(stopDht));
  });
  nodes.push(await startDhtNode(false)); // the first node knows nobody
  const seed = [addr(nodes[0]!)];
  const rest = await Promise.all(Array.from({ length: DHT_NODES - 1 }, () => startDhtNode(seed)));
  nodes.push(...rest);
  const bootstrap = nodes.map(addr);
  say(`1. local DHT: ${nodes.length} bittorrent-dht nodes on 127.0.0.1 (ports ${nodes.map((n) => n.address().port).join(', ')})`);

  // 2. sidecar ----------------------------------------------------------------------------------
  const dataDir = join(tmp, 'data');
  const configPath = join(tmp, 'config.toml');
  writeFileSync(
    configPath,
    stringify({
      dataDir,
      bundle: { windowSeconds: WINDOW_SECONDS, rewriteIntervalSeconds: 2 },
      // The demo's transfer is TCP over loopback; without uTP the sidecar opens no UDP socket on 0.0.0.0.
      bittorrent: { port: 0, utp: false },
      dht: { host: '127.0.0.1', port: 0, bootstrap },
      discovery: { listen: '127.0.0.1:0' },
      status: { listen: '127.0.0.1:0' },
      log: { level: 'info' },
    }),
  );
  const sidecar = new SidecarProcess(configPath, dataDir);
  current.sidecar = sidecar;
  onCleanup('sidecar', async () => {
    await sidecar.stop(15_000);
  });
  await sidecar.start(15_000);
  const rt = sidecar.runtime!;
  const assertAlive = () => {
    if (sidecar.exited) throw new DemoError(`the sidecar exited unexpectedly: ${sidecar.tail(2000)}`);
  };
  say(
    `2. sidecar up (pid ${rt.pid}): ingest socket ${rt.socket}, status http://${rt.status}, torrent port ${rt.torrentPort}, DHT port ${rt.dhtPort}`,
  );
  const dhtUp = await pollUntil(
    async () => {
      assertAlive();
      const s = await getStatus(rt).catch(() => undefined);
      return s?.dht?.ready ? s : undefined;
    },
    10_000,
    "sidecar's DHT node bootstrapped",
  );
  say(`   sidecar's DHT node bootstrapped (${dhtUp.dht!.nodes} nodes known)`);

  // 3. feed the plugin --------------------------------------------------------------------------
  const lines = readFileSync(fixture, 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0);
  // Start at the beginning of a bundle window so that every event lands in one bundle.
  const windowMs = WINDOW_SECONDS * 1000;
  const intoWindow = Date.now() % windowMs;
  if (intoWindow > windowMs - 2000) await sleep(windowMs - intoWindow + 50);
  const plugin = new PluginDriver(`'${process.execPath}' '${PLUGIN_BIN}'`, { ...process.env, NOSTR_BT_CONFIG: configPath });
  onCleanup('plugin', async () => {
    await plugin.close(3000);
  });
  const verdicts = new Map<string, number>();
  for (const line of lines) {
    const id = /"id":"([0-9a-f]{64})"/.exec(line)?.[1];
    if (!id) throw new DemoError(`fixture line without an event id: ${line.slice(0, 120)}`);
    const r = await plugin.send(line, id, 10_000);
    verdicts.set(r.action, (verdicts.get(r.action) ?? 0) + 1);
  }
  const accepted = verdicts.get('accept') ?? 0;
  say(
    `3. fed ${lines.length} strfry plugin lines from ${fixture.replace(ROOT + '/', '')} through the plugin: ` +
      [...verdicts].map(([a, n]) => `${n} ${a}`).join(', '),
  );

  // 4. the bundle -------------------------------------------------------------------------------
  const ingested = await pollUntil(
    async () => {
      assertAlive();
      const s = await getStatus(rt).catch(() => undefined);
      return s && s.events.received >= accepted && (s.ingest?.backlog ?? 0) === 0 ? s : undefined;
    },
    10_000,
    `sidecar received the ${accepted} accepted lines`,
  );
  await plugin.close(3000);
  const skipped = Object.entries(ingested.skippedByPolicy).map(([k, n]) => `${n} ${k}`);
  const removed = Object.entries(ingested.removed).map(([k, n]) => `${n} ${k}`);
  say(
    `   sidecar: ${ingested.events.received} received, ${ingested.events.indexed} indexed, ${ingested.events.duplicates} duplicate` +
      (skipped.length ? `, skipped by policy: ${skipped.join(', ')}` : '') +
      (removed.length ? `, removed: ${removed.join(', ')}` : '') +
      ` → ${ingested.events.stored} stored`,
  );
  const expected = ingested.events.stored;
  if (expected === 0) throw new DemoError('the sidecar stored no event');
  const st = await pollUntil(
    async () => {
      assertAlive();
      const s = await getStatus(rt).catch(() => undefined);
      const b = s?.bundles;
      return b && b.active >= 1 && b.events >= expected && b.pendingRewrites === 0 && b.newest ? s : undefined;
    },
    (WINDOW_SECONDS + 15) * 1000,
    `a bundle holding the ${expected} stored events (window ${WINDOW_SECONDS} s)`,
  );
  const bundlesDir = join(dataDir, 'bundles');
  const newest = st.bundles!.newest!;
  let ihs = listBundles(bundlesDir);
  if (!ihs.includes(newest)) ihs.push(newest);
  if (ihs.length !== st.bundles!.active) {
    // a retired bundle's files may still be on their way out
    await sleep(500);
    ihs = listBundles(bundlesDir);
  }
  ihs.sort((a, b) => (a === newest ? 1 : b === newest ? -1 : a.localeCompare(b))); // newest last
  const bundles = ihs.map((ih) => readBundle(bundlesDir, ih));
  say(
    `4. ${st.bundles!.active} bundle${st.bundles!.active > 1 ? 's' : ''} seeded, ${st.bundles!.events} events, ${st.bundles!.bytes} bytes`,
  );
  for (const b of bundles) {
    say(`   infohash ${b.ih}${b.ih === newest ? ' (newest)' : ''}`);
    say(`   name ${b.name}, ${b.bytes} bytes in ${b.files.length} author files, piece length ${b.pieceLength}`);
    say(`   magnet ${b.magnet}`);
  }

  // 5. download through the DHT -----------------------------------------------------------------
  const leechDht = await startDhtNode(bootstrap);
  nodes.push(leechDht); // stopped with the others, after the leecher
  const leecher = await startLeecher(leechDht);
  onCleanup('leecher', () => stopLeecher(leecher));
  const outDir = join(tmp, 'download');
  let verified = 0;
  let totalEvents = 0;
  const eventsByAuthor = new Map<string, NostrEvent[]>();
  const seederAddr = `127.0.0.1:${rt.torrentPort}`;
  for (const b of bundles) {
    const started = Date.now();
    // The sidecar announces a bundle right after seeding it; a lookup that races the announce
    // finds nobody, and WebTorrent would only look again 15 min later. Asked from another node:
    // the leecher's own lookup must be its first for this infohash (bittorrent-dht's announce
    // skips the lookup, and so finds no peers, when a lookup's result is cached).
    const announcedMs = await waitForAnnounce(nodes[0]!, b.ih, rt.torrentPort, 15_000);
    say(`   the DHT lists the sidecar as a peer of ${b.ih.slice(0, 12)}… (after ${announcedMs} ms)`);
    const { torrent, peers } = await download(leecher, b.magnet, outDir, 30_000);
    const ms = Date.now() - started;
    const via = [...peers].join(', ') || 'no wire?';
    say(
      `5. downloaded ${b.name} (${torrent.length} bytes) in ${ms} ms from ${via}${peers.has(seederAddr) ? ' (the sidecar), found through the DHT' : ''}`,
    );
    for (const f of [...torrent.files].sort((x, y) => x.path.localeCompare(y.path))) {
      const pubkey = f.name.replace(/\.jsonl$/, '');
      const got = readFileSync(join(outDir, f.path));
      const original = Buffer.from((await readAuthorFile(bundlesDir, b.ih, pubkey)) ?? '');
      if (!got.equals(original)) throw new DemoError(`${f.path}: downloaded bytes differ from the sidecar's file`);
      const events = got
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as NostrEvent);
      for (const e of events) {
        if (e.pubkey !== pubkey) throw new DemoError(`${f.path}: event ${e.id} is by ${e.pubkey}`);
        if (!verifyEvent(e)) throw new DemoError(`${f.path}: event ${e.id} fails id/signature verification`);
        verified++;
      }
      totalEvents += events.length;
      eventsByAuthor.set(pubkey, [...(eventsByAuthor.get(pubkey) ?? []), ...events]);
      const first = events[0]!;
      say(
        `   ${pubkey.slice(0, 12)}….jsonl: ${events.length} event${events.length === 1 ? '' : 's'}, first kind ${first.kind} ${snippet(first.content)}`,
      );
    }
  }
  say(`   ${verified} events verified (id and Schnorr signature, nostr-tools)`);
  if (totalEvents !== st.bundles!.events)
    throw new DemoError(`downloaded ${totalEvents} events, the sidecar reports ${st.bundles!.events} in its bundles`);

  await within(stopLeecher(leecher), 10_000, 'leecher stop');

  // 6. resolve an author through the DHT, from another process -----------------------------------
  // The author with the most events; the reader knows only that key and the bridge's.
  const [author] = [...eventsByAuthor].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))[0]!;
  const bridgeKey = st.bridge?.publicKey;
  if (!bridgeKey) throw new DemoError('the sidecar reports no bridge key');
  const put = await waitPointerPut(dataDir, author, 15_000, assertAlive);
  say(`6. the sidecar put ${author.slice(0, 12)}…'s pointer in the DHT (seq ${put.seq}, stored on ${put.nodes} nodes)`);
  const npub = npubEncode(author);
  const resolved = await runResolve(npub, bridgeKey, bootstrap, configPath, 30_000);
  const got = resolved.events;
  for (const e of got) {
    if (e.pubkey !== author) throw new DemoError(`resolve printed event ${e.id} by ${e.pubkey}, not by the author asked for`);
    if (!verifyEvent(e)) throw new DemoError(`resolve printed event ${e.id}, which fails id/signature verification`);
  }
  const archivedIds = new Set(eventsByAuthor.get(author)!.map((e) => e.id));
  const strays = got.filter((e) => !archivedIds.has(e.id));
  if (strays.length > 0) throw new DemoError(`resolve printed ${strays.length} event(s) that are not in the bridge's archive`);
  if (got.length === 0) throw new DemoError(`resolve found no event of ${author}`);
  const s6 = resolved.summary;
  say(
    `   $ nostr-bt resolve ${npub.slice(0, 16)}… --bridge ${bridgeKey.slice(0, 12)}… --bootstrap <the local DHT>   (pid ${resolved.pid}, exit ${resolved.code})`,
  );
  for (const e of got) {
    say(
      `     kind ${String(e.kind).padEnd(5)} ${new Date(e.created_at * 1000).toISOString().slice(0, 19)}Z  ${e.id.slice(0, 12)}…  ${snippet(e.content)}`,
    );
  }
  for (const b of s6.bridges)
    say(`   from bridge ${b.bridge.slice(0, 16)}…: pointer ${b.status}, seq ${b.seq ?? '-'}, ${b.bundles ?? 0} bundle(s) listed`);
  for (const b of s6.bundles) {
    say(
      `   from bundle ${b.infoHash}: ${b.ok ? `${b.events} events, ${b.fileBytes} bytes of the author's file only` : `not read (${b.reason})`} (through the swarm)`,
    );
  }
  const left = Object.entries({
    superseded: s6.events.superseded,
    deleted: s6.events.deleted,
    expired: s6.events.expired,
    ephemeral: s6.events.ephemeral,
  }).filter(([, n]) => n);
  say(
    `   ${got.length} events verified by the reader (id, signature, author) in ${(s6.ms / 1000).toFixed(1)} s, sources: ${Object.entries(
      s6.sources,
    )
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}` + (left.length ? `; left out as a client would: ${left.map(([k, n]) => `${n} ${k}`).join(', ')}` : ''),
  );

  // 7. stop -------------------------------------------------------------------------------------
  const code = await sidecar.stop(15_000);
  if (code !== 0) throw new DemoError(`the sidecar exited with code ${code} on SIGTERM`);
  say(`7. sidecar stopped gracefully (SIGTERM, exit code 0)`);
  await within(Promise.all(nodes.map(stopDht)), 10_000, 'DHT nodes stop');
  say(`   ${nodes.length} DHT nodes stopped (the ${DHT_NODES} local ones and the downloader's)`);
  if (VERBOSE) console.log(`--- the sidecar's log ---\n${sidecar.stderr.trimEnd()}\n---`);
  const problems = sidecar.problems();
  if (problems.length > 0) {
    say(`   note: the sidecar logged ${problems.length} warning/error line(s):`);
    for (const p of problems.slice(0, 5)) console.log(`     ${p.line.slice(0, 300)}`);
  }
  console.log(
    `\nOK: ${lines.length} strfry lines → ${expected} archived events → ${bundles.length} bundle torrent${bundles.length > 1 ? 's' : ''} → ` +
      `fetched by magnet through a local DHT of ${DHT_NODES} nodes → ${verified} events verified → ` +
      `nostr-bt resolve read ${got.length} events of ${npub.slice(0, 16)}… back from its DHT pointer, in ${((Date.now() - t0) / 1000).toFixed(1)} s.`,
  );
  console.log(
    [
      '',
      'Next:',
      '  npm test                                               # the whole suite: real processes, loopback only',
      '  README.md, "Try the pipeline by hand"                  # sidecar, plugin and `nostr-bt status` yourself, offline',
      '  sudo scripts/install-systemd.sh --strfry-user strfry   # on your relay: README.md, "Operator path"',
    ].join('\n'),
  );
}

const watchdog = setTimeout(() => {
  console.error(`demo: FAILED: did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  void cleanup().finally(() => process.exit(1));
}, OVERALL_TIMEOUT_MS);

try {
  await main();
  await cleanup();
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  console.error(`\ndemo: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  if (!(err instanceof DemoError) && err instanceof Error && err.stack) console.error(err.stack);
  if (current.sidecar?.stderr) console.error(`--- last lines of the sidecar's log ---\n${current.sidecar.tail()}`);
  await cleanup();
  clearTimeout(watchdog);
  process.exit(1);
}
