// Shared parts of the reader benchmarks: an in-process bridge (Sidecar) on a local DHT whose
// windows the benchmark cuts by hand (so a whole archive lands in one bundle), signed event
// generation, and readers (bench/reader-run.ts: the swarm reader, the library behind `nostr-bt
// resolve`, or a relay REQ client), each in its own process or several to a worker thread, each
// reporting its figures. A lingering swarm reader keeps serving what it downloaded until released.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { Sidecar } from '../sidecar/sidecar.js';
import type { IngestSink } from '../sidecar/ingest/ingestor.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { authorSalt } from '../sidecar/formats/pointer-item.js';
import type { LocalDht } from '../test/testkit/local-dht.js';
import { contentOf, pluginLine, signer } from '../test/testkit/events.js';
import { CLI_BIN } from '../test/testkit/sidecar-process.js';
import { makeTempDir, onCleanup, stopOnce, withTimeout } from './common.js';

const sink: IngestSink = { source: 'bench', trusted: true, committed: () => {} };

export interface InProcessBridge {
  sc: Sidecar;
  /** Bridge public key, hex. */
  key: string;
  /**
   * Indexes the events, cuts them into one window bundle, waits until the publisher has put
   * every author's pointer and `mustReach` authors' pointers reached DHT nodes.
   */
  archive(events: NostrEvent[], mustReach: string[]): Promise<{ bundles: number; bytes: number }>;
  stop(): Promise<void>;
}

/** Config sections the benchmark adds (e.g. `media`), merged over the bridge's own overrides. */
export interface BridgeOverrides {
  media?: Record<string, unknown>;
}

export async function startBridgeInProcess(dht: Pick<LocalDht, 'bootstrap'>, extra: BridgeOverrides = {}): Promise<InProcessBridge> {
  const dir = makeTempDir('nostr-bt-reader-bench-');
  const config = loadConfig({
    dataDir: join(dir, 'data'),
    env: {},
    overrides: {
      // Local bittorrent-dht nodes: pacing far above Mainline's 5/s per node, and few puts at once
      // so that no node's pacing queue overflows.
      dht: {
        port: 0,
        host: '127.0.0.1',
        bootstrap: dht.bootstrap,
        putsPerSecond: 1000,
        maxInFlightPuts: 32,
        maxPacketsPerSecondPerNode: 1000,
      },
      bittorrent: { port: 0 },
      discovery: { listen: '127.0.0.1:0' },
      status: { listen: '127.0.0.1:0' },
      bundle: { windowSeconds: 3600, windowMaxBytes: 1024 ** 3 },
      ...(extra.media ? { media: extra.media } : {}),
    },
  });
  const sc = new Sidecar(config, createLogger('bench', 'silent'), { statusHttp: false, bundleSchedule: false });
  await sc.start();
  const stop = stopOnce(() => sc.stop());
  const deadline = Date.now() + 10_000;
  while (sc.dht!.nodes.count() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return {
    sc,
    key: sc.identity!.publicKey.toString('hex'),
    archive: async (events, mustReach) => {
      for (let i = 0; i < events.length; i++) {
        sc.ingestor.submit(pluginLine(events[i]!), sink);
        if (i % 2000 === 1999) await sc.ingestor.idle();
      }
      await sc.ingestor.idle();
      const made = await sc.bundler!.closeWindow(Date.now() + 3_600_000);
      // Every author's pointer signed and put (publisher.idle() would also wait for the bridge
      // item, which is coalesced over the window: an hour here); the ones the benchmark reads
      // stored on DHT nodes (a put that reached no node — the DHT nodes share this process and
      // answer late under load — is put again).
      const authors = [...new Set(events.map((e) => e.pubkey))];
      const until = Date.now() + 180_000;
      const rec = (a: string) => sc.store.pointers.get(authorSalt(a).toString('hex'));
      let reputAt = 0;
      for (;;) {
        const dirty = sc.store.pointers.hasDirty();
        const unput = dirty ? authors.length : authors.filter((a) => !rec(a) || rec(a)!.putAt < rec(a)!.changedAt).length;
        const unreached = mustReach.filter((a) => !rec(a) || rec(a)!.nodes === 0);
        if (unput === 0 && unreached.length === 0) break;
        if (Date.now() > until) throw new Error(`pointers not published within 180 s: ${unput} not put, ${unreached.length} on no node`);
        if (unput === 0 && Date.now() > reputAt) {
          sc.publisher!.republishAll();
          reputAt = Date.now() + 5000;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      return { bundles: made.length, bytes: made.reduce((n, b) => n + b.bytes, 0) };
    },
    stop,
  };
}

const DHT_WORKER = join(dirname(fileURLToPath(import.meta.url)), 'dht-worker.js');

/** startLocalDht(n) in a worker thread (bench/dht-worker.ts): only its bootstrap list is used here. */
export async function startLocalDhtInWorker(nodes: number): Promise<Pick<LocalDht, 'bootstrap' | 'stop'>> {
  const w = new Worker(DHT_WORKER, { workerData: { nodes } });
  const stop = stopOnce(async () => {
    const stopped = new Promise<void>((r) => w.once('message', () => r()));
    w.postMessage('stop');
    await withTimeout(stopped, 5000, undefined);
    await w.terminate();
  });
  const up = await new Promise<{ bootstrap?: string[]; error?: string }>((resolve) => {
    w.once('message', resolve);
    w.once('error', (err) => resolve({ error: err.message }));
    w.once('exit', (code) => resolve({ error: `exited with code ${code}` }));
  });
  if (!up.bootstrap) {
    await stop();
    throw new Error(`local DHT worker: ${up.error}`);
  }
  return { bootstrap: up.bootstrap, stop };
}

export type Signer = Awaited<ReturnType<typeof signer>>;

/** `count` kind-1 notes of about `contentBytes` each, one second apart. */
export function notes(s: Signer, count: number, contentBytes: number, seed = 0, t0 = 1_700_000_000): NostrEvent[] {
  return Array.from({ length: count }, (_, i) => s.sign({ kind: 1, created_at: t0 + i, content: contentOf(contentBytes, seed + i) }));
}

export const archiveBytes = (events: NostrEvent[]) => events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)) + 1, 0);

// ---------------------------------------------------------------------------------------------
// Readers: in their own process each, or several to a worker thread

export type { SwarmChildArgs, RelayChildArgs, ChildResult, ReaderArgs } from './reader-run.js';
import type { ReaderArgs, ChildResult } from './reader-run.js';
import type { FromWorker, ToWorker } from './reader-worker.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'reader-child.js');
const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'reader-worker.js');

export interface ReaderChild {
  result: Promise<ChildResult>;
  /** Lets a lingering reader stop serving; resolves with what it uploaded in all. */
  release(): Promise<number>;
}

/** One reader in its own process (`reader-child.js '<json>'`). */
export function spawnReader(args: ReaderArgs): ReaderChild {
  const proc = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const lines: string[] = [];
  const waiters: ((l: string | null) => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  proc.once('exit', () => {
    for (const w of waiters.splice(0)) w(null);
  });
  const nextLine = () =>
    new Promise<string | null>((r) => (lines.length ? r(lines.shift()!) : proc.exitCode !== null ? r(null) : waiters.push(r)));
  onCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const result = nextLine().then((l) => {
    if (l === null) throw new Error(`reader child exited without a result: ${stderr}`);
    return JSON.parse(l) as ChildResult;
  });
  return {
    result,
    release: async () => {
      proc.stdin!.end();
      const l = await withTimeout(nextLine(), 10_000, null);
      return l ? (JSON.parse(l) as { uploaded: number }).uploaded : 0;
    },
  };
}

/** `readers` readers over `workers` worker threads (ReaderPool), or a process each with `workers` = 0. */
export function readerPool(workers: number, readers: number): { start(a: ReaderArgs): ReaderChild; close(): Promise<void> } {
  return workers === 0 ? { start: spawnReader, close: async () => {} } : new ReaderPool(Math.min(workers, readers));
}

/**
 * Readers spread over `workers` worker threads (bench/reader-worker.ts), started as the first
 * reader is given to each. Every reader is still its own client (its own DHT node, WebTorrent
 * client, peer id, ports and piece store); the readers of one thread share its event loop and
 * its loaded modules. A process per reader loaded WebTorrent and the DHT (~0.5 s of CPU) once
 * per reader, and 20 of them at once on 2 cores was most of a quick run's offload benchmark.
 */
export class ReaderPool {
  private readonly threads: (Worker | null)[];
  private readonly pending = new Map<number, { ok: (m: FromWorker) => void; fail: (e: Error) => void }>();
  private readonly releases = new Map<number, (uploaded: number) => void>();
  private nextId = 0;
  private readonly stop: () => Promise<void>;

  constructor(workers: number) {
    this.threads = Array.from({ length: Math.max(1, workers) }, () => null);
    this.stop = stopOnce(async () => {
      await Promise.all(this.threads.map((w) => w?.terminate()));
    });
  }

  private thread(i: number): Worker {
    const have = this.threads[i];
    if (have) return have;
    const w = new Worker(WORKER);
    w.on('message', (m: FromWorker) => {
      if ('uploaded' in m) return this.releases.get(m.id)?.(m.uploaded);
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if ('error' in m) p?.fail(new Error(`reader ${m.id} failed: ${m.error}`));
      else p?.ok(m);
    });
    const died = (err: Error) => {
      for (const p of this.pending.values()) p.fail(err);
      this.pending.clear();
      for (const r of this.releases.values()) r(0);
    };
    w.on('error', died);
    w.on('exit', (code) => died(new Error(`reader worker exited (code ${code})`)));
    this.threads[i] = w;
    return w;
  }

  start(args: ReaderArgs): ReaderChild {
    const id = this.nextId++;
    const w = this.thread(id % this.threads.length);
    const result = new Promise<ChildResult>((resolve, reject) => {
      this.pending.set(id, { ok: (m) => resolve((m as { result: ChildResult }).result), fail: reject });
    });
    w.postMessage({ start: id, args } satisfies ToWorker);
    return {
      result,
      release: () =>
        withTimeout(
          new Promise<number>((resolve) => {
            this.releases.set(id, resolve);
            w.postMessage({ release: id } satisfies ToWorker);
          }),
          10_000,
          0,
        ),
    };
  }

  close(): Promise<void> {
    return this.stop();
  }
}

/** An author's notes archived by an in-process bridge next to `others` authors' (`perOther` notes each), in one bundle. */
export async function archivedAuthor(o: { dhtNodes: number; events: number; others: number; perOther: number }): Promise<{
  dht: Pick<LocalDht, 'bootstrap' | 'stop'>;
  bridge: InProcessBridge;
  author: Signer;
  mine: NostrEvent[];
  made: Awaited<ReturnType<InProcessBridge['archive']>>;
}> {
  const dht = await startLocalDhtInWorker(o.dhtNodes);
  const bridge = await startBridgeInProcess(dht);
  const author = await signer();
  const mine = notes(author, o.events, 300, 0);
  const rest: NostrEvent[] = [];
  for (let i = 0; i < o.others; i++) rest.push(...notes(await signer(), o.perOther, 300, i * 10));
  const made = await bridge.archive([...mine, ...rest], [author.pubkey]);
  return { dht, bridge, author, mine, made };
}

/** `nostr-bt resolve` of one author on one bridge, paced for local DHT nodes (500 packets/s each, 0.5 s query timeout), no summary. */
export function resolveCommand(bootstrap: string[], bridge: string, author: string): string[] {
  return [
    CLI_BIN,
    'resolve',
    author,
    '--bridge',
    bridge,
    '--bootstrap',
    bootstrap.join(','),
    '--bind',
    '127.0.0.1',
    '--dht-node-rate',
    '500',
    '--dht-query-timeout',
    '0.5',
    '--summary',
    'none',
  ];
}
