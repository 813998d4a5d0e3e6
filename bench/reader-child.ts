// A reader in its own process for the benchmarks: `node dist/bench/reader-child.js '<json>'`.
// Imports only the reader (not the sidecar), like a user's `nostr-bt resolve` would, runs one
// read through the swarm (the library behind `nostr-bt resolve`) or a relay REQ, and prints one
// JSON line of figures. A lingering swarm reader then keeps serving what it downloaded until its
// stdin closes, and prints what it uploaded.
// The swarm modules (WebTorrent, the DHT: ~0.5 s of CPU to load) are imported only by swarm
// readers, so that 20 relay readers starting at once do not pay for them.
import { queryRelay } from '../scripts/reader/relay-source.js';
import { initSignatureCheck, verifyEvent } from '../scripts/reader/verify-events.js';

export interface SwarmChildArgs {
  mode: 'swarm';
  bootstrap: string[];
  bridge: string;
  author: string;
  /** Keep serving after the download until stdin closes. */
  linger?: boolean;
  uploadLimit?: number;
}

export interface RelayChildArgs {
  mode: 'relay';
  url: string;
  author: string;
}

export interface ChildResult {
  ok: boolean;
  error?: string;
  /** Process start → reader ready (DHT bootstrapped; for relay: 0). */
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
}

let startedAt = Date.now();

/** The child side: run one read, print one JSON line; a lingering swarm reader then waits. */
async function childMain(json: string): Promise<void> {
  const args = JSON.parse(json) as SwarmChildArgs | RelayChildArgs;
  const swarm = args.mode === 'swarm' ? await Promise.all([import('../scripts/reader/reader-context.js'), import('../scripts/reader/resolve.js')]) : null;
  startedAt = Date.now(); // as with static imports: readyMs leaves module loading out
  await initSignatureCheck();
  // Written before exiting: a pipe write is asynchronous and process.exit() would cut it.
  const out = (r: unknown) => new Promise<void>((resolve) => process.stdout.write(JSON.stringify(r) + '\n', () => resolve()));
  if (args.mode === 'relay') {
    const t0 = Date.now();
    let first: number | null = null;
    const a = await queryRelay(args.url, { authors: [args.author] }, { timeoutMs: 300_000, pageSize: 500, onEvent: () => (first ??= Date.now() - t0) });
    let events = 0;
    for (const v of a.events) if (typeof verifyEvent(v, args.author) !== 'string') events++;
    const r: ChildResult = { ok: a.ok, ...(a.error ? { error: a.error } : {}), readyMs: 0, firstEventMs: first, allMs: Date.now() - t0, events, downloaded: a.bytes, fileBytes: a.bytes, uploaded: 0 };
    await out(r);
    process.exit(0);
  }
  const [{ ReaderContext }, { resolveAuthor }] = swarm!;
  const ctx = await ReaderContext.open({
    bootstrap: args.bootstrap,
    bindHost: '127.0.0.1',
    maxPacketsPerSecondPerNode: 500,
    uploadLimit: args.uploadLimit,
  });
  const readyMs = Date.now() - startedAt;
  const { events, summary } = await resolveAuthor(ctx, { author: args.author, bridges: [Buffer.from(args.bridge, 'hex')], limits: { bundleTimeoutMs: 240_000, swarmTimeoutMs: 300_000 } });
  const r: ChildResult = {
    ok: summary.swarmComplete,
    readyMs,
    firstEventMs: summary.firstEventMs,
    allMs: summary.ms,
    events: events.length,
    downloaded: summary.bytes.received + summary.bytes.metadata,
    fileBytes: summary.bytes.files,
    uploaded: ctx.fetcher.uploaded(),
    fetchMs: Math.max(0, ...summary.bundles.map((b) => b.ms)),
    phases: { ...summary.phasesMs, bundles: summary.bundles.map((b) => ({ metadataMs: b.metadataMs, firstByteMs: b.firstByteMs, ms: b.ms })) },
  };
  await out(r);
  if (args.linger) {
    await new Promise<void>((resolve) => {
      process.stdin.on('end', () => resolve()).on('close', () => resolve()).resume();
    });
    await out({ uploaded: ctx.fetcher.uploaded() });
  }
  await Promise.race([ctx.close(), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(0);
}


void childMain(process.argv[2]!);
