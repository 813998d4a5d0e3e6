// The origin bridge of the mirror and restore benchmarks: a local DHT of bittorrent-dht nodes
// (127.0.0.1, in a worker thread) and a sidecar child process holding an archive of signed events
// fed through its ingest socket (as the plugin would), cut into bundles by its own schedule, with
// its catalog built, every author's pointer published and the bridge item naming that catalog.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as stringifyToml } from 'smol-toml';
import { dataPathOf, torrentPathOf } from '../sidecar/bundles/builder.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { Store } from '../sidecar/index/store.js';
import type { BundleRecord } from '../sidecar/index/bundle-records.js';
import type { SidecarProcess } from '../test/testkit/sidecar-process.js';
import { ingestClient } from '../test/testkit/ingest-client.js';
import { contentOf, pluginLine, signer } from '../test/testkit/events.js';
import { runCli } from '../test/testkit/reader-rig.js';
import { log, fmt, makeTempDir, sleep, startSidecarChild, writeConfig } from './common.js';
import { startLocalDhtInWorker } from './reader-support.js';

export interface Origin {
  sidecar: SidecarProcess;
  key: string;
  bootstrap: string[];
  /** The seeder's BitTorrent port (127.0.0.1). */
  seedPort: number;
  catalog: string;
  authors: number;
  events: number;
  /** The active bundles: infohash, .torrent and data file paths, bytes, events. */
  bundles: { ih: string; torrent: string; data: string; bytes: number; events: number }[];
  bundleDir: string;
  /** The archive as JSONL (each event once, canonical order of generation). */
  jsonlPath: string;
  jsonlBytes: number;
  /** Signing and feeding, and waiting until bundles, catalog, pointers and bridge item were out. */
  buildMs: { sign: number; feed: number; publish: number };
}

/** Config sections every benchmark sidecar on the local DHT shares (pacing far above Mainline's 5/s per node). */
export const localDhtSections = (bootstrap: string[]) => ({
  dht: { port: 0, host: '127.0.0.1', bootstrap, putsPerSecond: 500, maxPacketsPerSecondPerNode: 500 },
});

export function sidecarConfig(prefix: string, sections: Record<string, unknown>): { configPath: string; dataDir: string } {
  const dir = makeTempDir(prefix);
  const dataDir = join(dir, 'data');
  return { configPath: writeConfig(dir, dataDir, stringifyToml(sections)), dataDir };
}

export async function startOrigin(opts: { events: number; authors: number; contentBytes: number; dhtNodes: number }): Promise<Origin> {
  const dht = await startLocalDhtInWorker(opts.dhtNodes);
  const { configPath, dataDir } = sidecarConfig('nostr-bt-origin-', {
    ...localDhtSections(dht.bootstrap),
    bundle: { windowSeconds: 2, rewriteIntervalSeconds: 1 },
    catalog: { intervalSeconds: 1 },
  });
  const sidecar = await startSidecarChild(configPath, dataDir, 30_000);
  const up = await sidecar.waitFor((s) => (s.dht?.nodes ?? 0) > 0 && Boolean(s.bridge?.publicKey) && (s.seeding?.port ?? 0) > 0, 30_000);
  const key = up.bridge!.publicKey;

  let t = Date.now();
  const signers = await Promise.all(Array.from({ length: opts.authors }, () => signer()));
  const perAuthor = Math.ceil(opts.events / opts.authors);
  const events: NostrEvent[] = [];
  for (let i = 0; i < perAuthor && events.length < opts.events; i++)
    for (const [a, s] of signers.entries()) {
      if (events.length >= opts.events) break;
      events.push(s.sign({ kind: 1, created_at: 1_700_000_000 + i, content: contentOf(opts.contentBytes, a * perAuthor + i) }));
    }
  const jsonlPath = join(dataDir, '..', 'archive.jsonl');
  const jsonl = events.map((e) => JSON.stringify(e) + '\n').join('');
  writeFileSync(jsonlPath, jsonl);
  const sign = Date.now() - t;

  t = Date.now();
  const client = await ingestClient(sidecar.socketPath);
  try {
    await client.send(events.map((e) => pluginLine(e)));
    if (!(await client.waitAcked(events.length, 300_000))) throw new Error(`ingest acknowledged ${client.acked()} of ${events.length}`);
  } finally {
    client.close();
  }
  const feed = Date.now() - t;

  t = Date.now();
  const st = await sidecar.waitFor(
    (s) =>
      s.events.stored === events.length &&
      s.bundles?.pendingEvents === 0 &&
      s.bundles?.pendingRewrites === 0 &&
      Boolean(s.catalog?.infoHash) &&
      !s.catalog!.pending &&
      s.catalog!.bundles === s.bundles?.active &&
      s.pointers?.dirtyAuthors === 0,
    600_000,
  );
  const catalog = st.catalog!.infoHash!;
  // The bridge item naming this catalog is out (re-signed at most once per catalog interval).
  const net = ['--bridge', key, '--bootstrap', dht.bootstrap.join(','), '--bind', '127.0.0.1'];
  let named = false;
  for (let i = 0; i < 120 && !named; i++) {
    const c = await runCli(['catalog', ...net, '--no-verify', '--format', 'json'], 60_000);
    named = c.code === 0 && (JSON.parse(c.stdout) as { infoHash: string }).infoHash === catalog;
    if (!named) await sleep(500);
  }
  if (!named) throw new Error(`the bridge item does not name catalog ${catalog}`);
  const publish = Date.now() - t;

  const bundleDir = join(dataDir, 'bundles');
  const store = Store.open(join(dataDir, 'index'), { readOnly: true });
  let records: BundleRecord[];
  try {
    records = [...store.bundles.all()].filter((b) => b.state === 'active');
  } finally {
    await store.close();
  }
  const bundles = records.map((b) => ({
    ih: b.ih,
    torrent: torrentPathOf(bundleDir, b.ih),
    data: dataPathOf(bundleDir, b.ih),
    bytes: b.bytes,
    events: b.events,
  }));
  if (bundles.length !== st.catalog!.bundles)
    throw new Error(`index lists ${bundles.length} active bundles, catalog ${st.catalog!.bundles}`);
  log(
    `  origin ${key.slice(0, 12)}…: ${fmt(events.length)} events of ${opts.authors} authors, ${bundles.length} bundles ` +
      `(${fmt(bundles.reduce((n, b) => n + b.bytes, 0) / 1e6, 1)} MB); signed in ${fmt(sign)} ms, fed in ${fmt(feed)} ms, ` +
      `bundled + catalog + pointers + bridge item in ${fmt(publish)} ms`,
  );
  return {
    sidecar,
    key,
    bootstrap: dht.bootstrap,
    seedPort: up.seeding!.port,
    catalog,
    authors: opts.authors,
    events: events.length,
    bundles,
    bundleDir,
    jsonlPath,
    jsonlBytes: Buffer.byteLength(jsonl),
    buildMs: { sign, feed, publish },
  };
}
