// Reading one author's archive in the browser: the signed pointer, then each bundle it lists
// (newest first) as a torrent in WebTorrent with only the author's file selected, its bytes from
// the other readers' tabs and the bridge over WebRTC (the gateway's WebSocket tracker) and from
// the BEP-19 web seed, every line checked, and the events merged as the CLI reader merges them.
import WebTorrent from 'webtorrent/dist/webtorrent.min.js';
import MemoryChunkStore from 'memory-chunk-store';
import type { Torrent, TorrentFile, Wire } from 'webtorrent';
import type { NostrEvent } from '../../../sidecar/formats/nostr-event.js';
import { EventMerger, type MergeCounts } from '../event-merge.js';
import { checkFile, type Rejected } from './events-check.js';
import { fetchPointer, type AuthorPointer } from './pointer.js';

/** When the web seed is used: at once, never, or when peers do not deliver (no peer, or a stall). */
export type WebSeedMode = 'auto' | 'now' | 'never';

export interface ReadOptions {
  /** The gateway, e.g. https://archive.example.org (the page's own origin by default). */
  base: string;
  bridgeKey: string;
  /** ws(s)://…/announce, or null: no WebRTC. */
  tracker: string | null;
  author: string;
  webSeed: WebSeedMode;
  /** auto: the web seed is added when no peer byte arrived for this long. */
  stallMs: number;
  /** A bundle not read by then is reported and skipped. */
  bundleTimeoutMs: number;
  /** Largest author file read from one bundle. */
  maxFileBytes: number;
  /** Largest .torrent accepted. */
  maxTorrentBytes: number;
  /** ICE servers for WebRTC (none on a loopback gateway). */
  iceServers: RTCIceServer[];
  onProgress: (p: Progress) => void;
}

export interface BundleProgress {
  infoHash: string;
  state: 'waiting' | 'torrent' | 'downloading' | 'verified' | 'failed';
  fileBytes: number;
  fileDone: number;
  events: number;
  rejected: number;
  peers: number;
  webSeedAdded: boolean;
  problem?: string;
}

export interface Progress {
  phase: 'pointer' | 'bundles' | 'done' | 'error';
  pointer?: AuthorPointer;
  bundles: BundleProgress[];
  fromWebSeed: number;
  fromPeers: number;
  uploaded: number;
  rejected: Rejected[];
  error?: string;
}

export interface ReadResult {
  pointer: AuthorPointer;
  events: NostrEvent[];
  counts: MergeCounts;
  progress: Progress;
}

const FLAT_FILE = /^[0-9a-f]{64}\.jsonl$/;

/** One WebTorrent client per page: its torrents keep seeding to other tabs after a read. */
let client: InstanceType<typeof WebTorrent> | null = null;

function clientFor(o: ReadOptions): InstanceType<typeof WebTorrent> {
  // webSeeds off: a .torrent's url-list is not used by itself; download() adds the web seed when
  // the mode says so (addWebSeed works either way).
  client ??= new WebTorrent({ webSeeds: false, tracker: { rtcConfig: { iceServers: o.iceServers } } } as never);
  return client;
}

/** Piece bytes this tab sent to other readers over WebRTC (its torrents keep seeding after a read). */
let uploadedToPeers = 0;

export function uploadedBytes(): number {
  return uploadedToPeers;
}

export async function readArchive(o: ReadOptions): Promise<ReadResult> {
  const progress: Progress = { phase: 'pointer', bundles: [], fromWebSeed: 0, fromPeers: 0, uploaded: 0, rejected: [] };
  const report = () => o.onProgress(progress);
  report();
  let pointer: AuthorPointer;
  try {
    pointer = await fetchPointer(o.base, o.bridgeKey, o.author);
  } catch (err) {
    progress.phase = 'error';
    progress.error = (err as Error).message;
    report();
    throw err;
  }
  progress.pointer = pointer;
  progress.phase = 'bundles';
  progress.bundles = pointer.infoHashes.map((infoHash) => ({
    infoHash,
    state: 'waiting',
    fileBytes: 0,
    fileDone: 0,
    events: 0,
    rejected: 0,
    peers: 0,
    webSeedAdded: false,
  }));
  report();
  const merger = new EventMerger();
  const wt = clientFor(o);
  const ticker = setInterval(() => {
    progress.uploaded = uploadedToPeers;
    report();
  }, 500);
  try {
    // Bundles one after another, newest first: the newest events show first, and a tab's
    // connections stay on one swarm at a time.
    for (const b of progress.bundles) {
      try {
        const { events, rejected } = await readBundle(wt, o, b, progress, report);
        for (const e of events) merger.add(e, b.infoHash);
        b.events = events.length;
        b.rejected = rejected.length;
        progress.rejected.push(...rejected);
        b.state = 'verified';
      } catch (err) {
        b.state = 'failed';
        b.problem = (err as Error).message;
      }
      report();
    }
  } finally {
    clearInterval(ticker);
  }
  const { events, counts } = merger.result();
  progress.uploaded = uploadedToPeers;
  progress.phase = 'done';
  report();
  return { pointer, events: events.map((x) => x.e), counts, progress };
}

async function readBundle(
  wt: InstanceType<typeof WebTorrent>,
  o: ReadOptions,
  b: BundleProgress,
  progress: Progress,
  report: () => void,
): Promise<{ events: NostrEvent[]; rejected: Rejected[] }> {
  b.state = 'torrent';
  report();
  const res = await fetch(`${o.base}/torrent/${b.infoHash}.torrent`);
  if (!res.ok) throw new Error(`the gateway answered ${res.status} for the .torrent`);
  const torrentFile = new Uint8Array(await res.arrayBuffer());
  if (torrentFile.length > o.maxTorrentBytes) throw new Error(`the .torrent is ${torrentFile.length} bytes, over ${o.maxTorrentBytes}`);
  const existing = await wt.get(b.infoHash);
  const torrent: Torrent =
    existing ??
    (await new Promise<Torrent>((resolve, reject) => {
      let t: Torrent;
      try {
        // In memory: WebTorrent would otherwise keep the pieces in the origin's private file
        // system, where they outlive the tab (and another tab would read them from there).
        t = wt.add(torrentFile, { announce: o.tracker ? [o.tracker] : [], deselect: true, store: MemoryChunkStore });
      } catch (err) {
        reject(err as Error);
        return;
      }
      const onError = (err: Error) => reject(err);
      t.once('error', onError);
      t.once('ready', () => {
        t.removeListener('error', onError);
        resolve(t);
      });
    }));
  if (torrent.infoHash !== b.infoHash) {
    wt.remove(torrent);
    throw new Error(`the gateway served a .torrent for ${torrent.infoHash}, not ${b.infoHash}`);
  }
  const names = torrent.files.map((f) => f.path.slice(torrent.name.length + 1));
  if (torrent.files.some((f, i) => !f.path.startsWith(`${torrent.name}/`) || !FLAT_FILE.test(names[i]!))) {
    wt.remove(torrent);
    throw new Error('the torrent is not a bundle (a flat list of <pubkey>.jsonl files)');
  }
  const file = torrent.files[names.indexOf(`${o.author}.jsonl`)];
  if (!file) throw new Error('the bundle holds no file for this author (the pointer names a bundle without them)');
  if (file.length > o.maxFileBytes) throw new Error(`the author's file is ${file.length} bytes, over ${o.maxFileBytes}`);
  b.fileBytes = file.length;
  b.state = 'downloading';
  report();
  await download(torrent, file, o, b, progress, report);
  const bytes = new Uint8Array(await file.arrayBuffer());
  return checkFile(bytes, o.author, b.infoHash);
}

/** The read whose byte counters the wires add to (one read at a time per page). */
let counting: Progress | null = null;
const hooked = new WeakSet<Torrent>();
/** When each torrent last got a byte from a peer (not the web seed): the stall the web seed waits for. */
const lastPeerByte = new WeakMap<Torrent, number>();
/** When each torrent last got a byte from another reader (a peer without every piece, not a seed). */
const lastReaderByte = new WeakMap<Torrent, number>();

/** Counts a wire's bytes once, whichever read it serves: downloads by source, uploads to peers. */
function countWire(torrent: Torrent, wire: Wire): void {
  if (wire.type !== 'webSeed') wire.on('upload', (n: number) => (uploadedToPeers += n));
  wire.on('download', (n: number) => {
    if (!counting) return;
    if (wire.type === 'webSeed') counting.fromWebSeed += n;
    else {
      counting.fromPeers += n;
      lastPeerByte.set(torrent, performance.now());
      if (!(wire as unknown as { isSeeder?: boolean }).isSeeder) lastReaderByte.set(torrent, performance.now());
    }
  });
}

/** auto: other readers delivered within this long (and the web seed has been on at least as long): drop it. */
const WEB_SEED_DROP_MS = 1000;

/** Selects only the author's file and waits for it, counting where the bytes came from. */
function download(
  torrent: Torrent,
  file: TorrentFile,
  o: ReadOptions,
  b: BundleProgress,
  progress: Progress,
  report: () => void,
): Promise<void> {
  const webSeedUrl = `${o.base}/webseed/${b.infoHash}/`;
  const t = torrent as unknown as { addWebSeed(url: string): void; removePeer(id: string): void };
  let webSeedOn = false;
  let webSeedSince = 0;
  const addWebSeed = () => {
    if (webSeedOn) return;
    webSeedOn = true;
    webSeedSince = performance.now();
    b.webSeedAdded = true;
    t.addWebSeed(webSeedUrl);
  };
  // The web seed never chokes and answers at once, so once added it would take most of the
  // remaining pieces: in auto mode it is dropped again as soon as other readers deliver (and
  // re-added on the next stall), so it only bridges gaps and the tabs go on sharing. Bytes from a
  // seed (the bridge itself, a mirror) do not drop it: those the bridge sends either way, and a
  // lone tab reads faster from both.
  const dropWebSeed = () => {
    if (!webSeedOn) return;
    webSeedOn = false;
    t.removePeer(webSeedUrl);
  };
  counting = progress;
  lastPeerByte.set(torrent, performance.now());
  if (!hooked.has(torrent)) {
    hooked.add(torrent);
    for (const w of torrent.wires) countWire(torrent, w);
    torrent.on('wire', (w: Wire) => countWire(torrent, w));
  }
  file.select();
  if (o.webSeed === 'now' || !o.tracker) addWebSeed();
  return new Promise<void>((resolve, reject) => {
    if (file.done) return resolve();
    const started = performance.now();
    const timer = setInterval(() => {
      b.fileDone = Math.min(file.length, Math.round(file.progress * file.length));
      b.peers = torrent.wires.filter((w) => w.type !== 'webSeed').length;
      // Rarest first while other readers are connected: tabs reading at once then ask the bridge
      // for different pieces and swap them, instead of all asking it for the same ones. Alone (the
      // bridge and web seed only) in order, WebTorrent's default: its rarest pick scans every
      // piece for each request, which costs a lone tab time for nothing.
      const readers = torrent.wires.some((w) => w.type !== 'webSeed' && !(w as unknown as { isSeeder?: boolean }).isSeeder);
      (torrent as unknown as { strategy: string }).strategy = readers ? 'rarest' : 'sequential';
      if (o.webSeed === 'auto') {
        const now = performance.now();
        if (now - (lastPeerByte.get(torrent) ?? 0) > o.stallMs) addWebSeed();
        else if (webSeedOn && now - (lastReaderByte.get(torrent) ?? 0) < WEB_SEED_DROP_MS && now - webSeedSince > WEB_SEED_DROP_MS)
          dropWebSeed();
      }
      if (performance.now() - started > o.bundleTimeoutMs) {
        clearInterval(timer);
        reject(new Error(`not downloaded within ${Math.round(o.bundleTimeoutMs / 1000)} s (${Math.round(file.progress * 100)}%)`));
      }
      report();
    }, 250);
    file.once('done', () => {
      clearInterval(timer);
      b.fileDone = file.length;
      b.peers = torrent.wires.filter((w) => w.type !== 'webSeed').length;
      resolve();
    });
  });
}
