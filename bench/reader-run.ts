// One reader for the benchmarks, wherever it runs (its own process: reader-child.ts; a worker
// thread shared with other readers: reader-worker.ts): one read through the swarm (the library
// behind `nostr-bt resolve`, with its own DHT node, its own WebTorrent client and its own piece
// store) or a relay REQ, and its figures. A lingering swarm reader then keeps serving what it
// downloaded until released.
// The swarm modules (WebTorrent, the DHT: ~0.5 s of CPU to load) are imported only by swarm
// readers, so that relay readers starting at once do not pay for them.
import { queryRelay } from '../scripts/reader/relay-source.js';
import { initSignatureCheck, verifyEvent } from '../scripts/reader/verify-events.js';

export interface SwarmChildArgs {
  mode: 'swarm';
  bootstrap: string[];
  bridge: string;
  author: string;
  /** Keep serving after the download until released (otherwise the reader closes at once). */
  linger?: boolean;
  uploadLimit?: number;
}

export interface RelayChildArgs {
  mode: 'relay';
  url: string;
  author: string;
}

/** One blob by infohash through the swarm (a WebTorrent client on its own DHT node), sha256-checked. */
export interface BlobChildArgs {
  mode: 'blob';
  bootstrap: string[];
  infoHash: string;
  sha256: string;
  linger?: boolean;
  uploadLimit?: number;
}

export type ReaderArgs = SwarmChildArgs | RelayChildArgs | BlobChildArgs;

export interface ChildResult {
  ok: boolean;
  error?: string;
  /** Reader start (its modules loaded) → reader ready (DHT bootstrapped; for relay: 0). */
  readyMs: number;
  /** From the start of the read: first verified event, all events. */
  firstEventMs: number | null;
  allMs: number;
  events: number;
  /** Swarm: piece bytes received + metadata; relay: event JSON bytes received. */
  downloaded: number;
  fileBytes: number;
  uploaded: number;
  /** Swarm: the slowest bundle read (download, with verification as the bytes arrive). */
  fetchMs?: number;
  phases?: unknown;
  /** Blob readers: wall clock (ms since the epoch) of the first piece byte received. */
  firstByteAt?: number;
  /** Blob readers: the swarm as this reader saw it when it finished or gave up (bench/media-offload-bench.ts prints it). */
  swarm?: BlobSwarmView;
}

/** One blob reader's view of its swarm: who it was connected to, what each wire gave and took, and choke state. */
export interface BlobSwarmView {
  /** This reader's peer id (hex), and each wire's remote one. */
  peerId: string;
  peers: number;
  /** Requests cancelled as stale (scripts/reader/stale-requests.ts). */
  cancelled: number;
  piecesMissing: number;
  wires: { peerId: string; port: number; dl: number; ul: number; peerChoking: boolean; amChoking: boolean; reqs: number }[];
}

export interface FinishedRead {
  result: ChildResult;
  /**
   * Ends the reader (a swarm reader keeps serving until then): closes it (waiting at most 5 s)
   * and resolves with what it uploaded in all (relay: 0).
   */
  release(): Promise<number>;
}

const CLOSE_WAIT_MS = 5000;

const swarmModules = () => Promise.all([import('../scripts/reader/reader-context.js'), import('../scripts/reader/resolve.js')]);

export async function runRead(args: ReaderArgs): Promise<FinishedRead> {
  const swarm = args.mode !== 'relay' ? await swarmModules() : null;
  const startedAt = Date.now(); // readyMs leaves module loading out
  await initSignatureCheck();
  if (args.mode === 'relay') {
    const t0 = Date.now();
    let first: number | null = null;
    const a = await queryRelay(
      args.url,
      { authors: [args.author] },
      { timeoutMs: 300_000, pageSize: 500, onEvent: () => (first ??= Date.now() - t0) },
    );
    let events = 0;
    for (const v of a.events) if (typeof verifyEvent(v, args.author) !== 'string') events++;
    const result: ChildResult = {
      ok: a.ok,
      ...(a.error ? { error: a.error } : {}),
      readyMs: 0,
      firstEventMs: first,
      allMs: Date.now() - t0,
      events,
      downloaded: a.bytes,
      fileBytes: a.bytes,
      uploaded: 0,
    };
    return { result, release: async () => 0 };
  }
  if (args.mode === 'blob') return readBlob(args, startedAt);
  const [{ ReaderContext }, { resolveAuthor }] = swarm!;
  const ctx = await ReaderContext.open({
    bootstrap: args.bootstrap,
    bindHost: '127.0.0.1',
    maxPacketsPerSecondPerNode: 500,
    uploadLimit: args.uploadLimit,
  });
  const readyMs = Date.now() - startedAt;
  const { events, summary } = await resolveAuthor(ctx, {
    author: args.author,
    bridges: [Buffer.from(args.bridge, 'hex')],
    limits: { bundleTimeoutMs: 240_000, swarmTimeoutMs: 300_000 },
  });
  const result: ChildResult = {
    ok: summary.swarmComplete,
    readyMs,
    firstEventMs: summary.firstEventMs,
    allMs: summary.ms,
    events: events.length,
    downloaded: summary.bytes.received + summary.bytes.metadata,
    fileBytes: summary.bytes.files,
    uploaded: ctx.fetcher.uploaded(),
    fetchMs: Math.max(0, ...summary.bundles.map((b) => b.ms)),
    phases: {
      ...summary.phasesMs,
      bundles: summary.bundles.map((b) => ({ metadataMs: b.metadataMs, firstByteMs: b.firstByteMs, ms: b.ms })),
    },
  };
  let released: Promise<number> | null = null;
  return {
    result,
    release: () =>
      (released ??= (async () => {
        const uploaded = ctx.fetcher.uploaded();
        await Promise.race([ctx.close(), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS))]);
        return uploaded;
      })()),
  };
}

/** A blob torrent from the swarm: the whole file, rarest first, serving others meanwhile; ok when its bytes hash to `sha256`. */
async function readBlob(args: BlobChildArgs, startedAt: number): Promise<FinishedRead> {
  const [{ ReaderContext }] = await swarmModules();
  const { createHash } = await import('node:crypto');
  const { default: MemoryChunkStore } = await import('memory-chunk-store');
  const ctx = await ReaderContext.open({
    bootstrap: args.bootstrap,
    bindHost: '127.0.0.1',
    maxPacketsPerSecondPerNode: 500,
    uploadLimit: args.uploadLimit,
  });
  const readyMs = Date.now() - startedAt;
  const t0 = Date.now();
  const client = ctx.fetcher.client;
  // As the bundle fetcher: rarest first, every asking reader unchoked, no preference for fast peers.
  const torrent = client.add(`magnet:?xt=urn:btih:${args.infoHash}`, {
    announce: [],
    strategy: 'rarest',
    uploads: 64,
    store: MemoryChunkStore,
  } as never);
  // The end game WebTorrent lacks, and every peer equally fast (scripts/reader/stale-requests.ts); NBT_NO_ENDGAME=1 measures without the first.
  const { cancelStaleRequests, evenWireSpeed } = await import('../scripts/reader/stale-requests.js');
  torrent.on('wire', (wire: unknown) => evenWireSpeed(wire));
  const stale = process.env.NBT_NO_ENDGAME ? null : cancelStaleRequests(torrent);
  const lookup = setInterval(() => {
    if (torrent.numPeers < 10 && !ctx.dht.destroyed) ctx.dht.lookup(args.infoHash);
  }, 2000);
  let firstByteMs: number | null = null;
  let firstByteAt: number | undefined;
  torrent.once('download', () => {
    firstByteAt = Date.now();
    firstByteMs = firstByteAt - t0;
  });
  let lastD = -1;
  let lastAt = Date.now();
  let dumped = false;
  const diag = setInterval(() => {
    const tt = torrent as any;
    if (tt.done || !tt.pieces) return;
    if (tt.downloaded !== lastD) {
      lastD = tt.downloaded;
      lastAt = Date.now();
      return;
    }
    if (dumped || Date.now() - lastAt < 15_000 || !process.env.NBT_DIAG) return;
    dumped = true;
    const missing: number[] = [];
    for (let i = 0; i < tt.pieces.length; i++) if (!tt.bitfield.get(i)) missing.push(i);
    const out = missing.slice(0, 5).map((i: number) => ({
      i,
      piece: tt.pieces[i] ? { missing: tt.pieces[i].missing, reserved: tt.pieces[i]._reservations } : null,
      res: (tt._reservations[i] ?? []).map((w: any) => (w ? `${w.remotePort}` : null)),
    }));
    const wires = tt.wires.map((w: any) => ({
      port: w.remotePort,
      choking: w.peerChoking,
      amChoking: w.amChoking,
      interested: w.amInterested,
      peerInterested: w.peerInterested,
      reqs: w.requests.length,
      reqPieces: w.requests.map((r: any) => r.piece).slice(0, 5),
      has: missing.slice(0, 5).map((i: number) => w.peerPieces.get(i)),
      dl: w.downloaded,
      fast: w.hasFast,
    }));
    process.stderr.write(
      `DIAG ${args.infoHash.slice(0, 6)} port=${ctx.fetcher.port} missing=${missing.length} ${JSON.stringify(out)} wires=${JSON.stringify(wires)} selections=${JSON.stringify(tt._selections?._items ?? tt._selections)}\n`,
    );
  }, 1000);
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 300_000);
    torrent.once('error', () => resolve(false));
    torrent.once('done', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  clearInterval(lookup);
  clearInterval(diag);
  stale?.stop();
  const allMs = Date.now() - t0;
  const tw = torrent as unknown as {
    numPeers: number;
    pieces: unknown[];
    bitfield?: { get(i: number): boolean };
    wires: {
      peerId: string;
      remotePort: number;
      downloaded: number;
      uploaded: number;
      peerChoking: boolean;
      amChoking: boolean;
      requests: unknown[];
    }[];
  };
  let piecesMissing = 0;
  for (let i = 0; i < (tw.pieces?.length ?? 0); i++) if (!tw.bitfield?.get(i)) piecesMissing++;
  const swarmView: BlobSwarmView = {
    peerId: (client as unknown as { peerId: string }).peerId,
    peers: tw.numPeers,
    cancelled: stale?.cancelled ?? 0,
    piecesMissing,
    wires: tw.wires.map((w) => ({
      peerId: w.peerId,
      port: w.remotePort,
      dl: w.downloaded,
      ul: w.uploaded,
      peerChoking: w.peerChoking,
      amChoking: w.amChoking,
      reqs: w.requests.length,
    })),
  };
  let verified = false;
  if (ok) {
    const h = createHash('sha256');
    for await (const chunk of (torrent.files[0] as unknown as { createReadStream(): AsyncIterable<Buffer> }).createReadStream())
      h.update(chunk);
    verified = h.digest('hex') === args.sha256;
  }
  const t = torrent as unknown as { received: number; length: number };
  const result: ChildResult = {
    ok: ok && verified,
    ...(ok && !verified ? { error: 'sha256 mismatch' } : ok ? {} : { error: 'not complete in 300 s' }),
    readyMs,
    firstEventMs: firstByteMs,
    allMs,
    events: verified ? 1 : 0,
    downloaded: t.received,
    fileBytes: t.length,
    uploaded: torrent.uploaded,
    ...(firstByteAt !== undefined ? { firstByteAt } : {}),
    swarm: swarmView,
  };
  let released: Promise<number> | null = null;
  return {
    result,
    release: () =>
      (released ??= (async () => {
        const uploaded = torrent.uploaded;
        await Promise.race([ctx.close(), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS))]);
        return uploaded;
      })()),
  };
}
