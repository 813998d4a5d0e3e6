// From an author's key to that author's verified events, with no relay: each bridge's pointer
// (§7) → the bundles it lists → only the author's file from each (§6) → every event verified →
// merged and deduplicated. Relays, when given, come after the swarm: for what is newer than the
// archive, or for everything when the swarm could not give it all. The summary says which source
// served what and what was rejected and why.
import type { Filter } from 'nostr-tools/filter';
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import type { ReaderContext } from './reader-context.js';
import { lookupAuthorPointer, type PointerLookup } from './pointer-lookup.js';
import { EventMerger, type EventFilter } from './event-merge.js';
import { LineChecker, Rejections, verifyEvent } from './verify-events.js';
import { PieceLineAssembler } from './piece-lines.js';
import { queryRelay } from './relay-source.js';
import {
  DEFAULT_LIMITS,
  type BridgeReport,
  type BundleReport,
  type EventOrigin,
  type RelayMode,
  type RelayReport,
  type ResolveLimits,
  type ResolveResult,
  type ResolveSummary,
} from './reader-types.js';

export { DEFAULT_LIMITS };
export type { BridgeReport, BundleReport, EventOrigin, RelayMode, RelayReport, ResolveLimits, ResolveResult, ResolveSummary };

export interface ResolveRequest {
  author: string;
  /** The bridges to ask: a list, or a feed that hands them over as they are found (discovery). */
  bridges: Iterable<Buffer> | AsyncIterable<Buffer>;
  relays?: string[];
  relayMode?: RelayMode;
  filter?: EventFilter;
  limits?: Partial<ResolveLimits>;
  signal?: AbortSignal;
  /** Each verified event the first time it is seen (before merging: superseded versions too). */
  onEvent?: (e: NostrEvent, source: string, origin: EventOrigin) => void;
}

const short = (k: Buffer) => k.toString('hex').slice(0, 16);

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

/** Pointer lookups at once (each is a few DHT gets, one per page). */
const POINTER_LOOKUPS_AT_ONCE = 8;

export async function resolveAuthor(ctx: ReaderContext, req: ResolveRequest): Promise<ResolveResult> {
  const t0 = Date.now();
  const limits = { ...DEFAULT_LIMITS, ...req.limits };
  const merger = new EventMerger();
  const rejections = new Rejections();
  let firstEventMs: number | null = null;
  const accept = (events: NostrEvent[], source: string, origin: EventOrigin): number => {
    let added = 0;
    for (const e of events) {
      if (!merger.add(e, source)) continue;
      added++;
      if (firstEventMs === null) firstEventMs = Date.now() - t0;
      req.onEvent?.(e, source, origin);
    }
    return added;
  };

  const swarmAbort = new AbortController();
  const swarmTimer = setTimeout(() => swarmAbort.abort(), limits.swarmTimeoutMs);
  const onOuterAbort = () => swarmAbort.abort();
  req.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (req.signal?.aborted) swarmAbort.abort();

  // 1. Pointers, a few bridges at a time, each as soon as it is known (a discovery feed hands
  // bridges over while it runs); each pointer's bundles join the queue the moment it answers.
  const tPointers = Date.now();
  const bridges: BridgeReport[] = [];
  const listedBy = new Map<string, string[]>();
  const listedByKey = new Map<string, string[]>();
  const order: string[] = [];
  // Bundle workers with nothing to do wait on `changed`; a pointer answering, the lookups ending
  // or the deadline wakes them all.
  let wakeAll = () => {};
  let changed = new Promise<void>((r) => (wakeAll = r));
  const poke = () => {
    const wake = wakeAll;
    changed = new Promise<void>((r) => (wakeAll = r));
    wake();
  };
  swarmAbort.signal.addEventListener('abort', poke, { once: true });
  const record = (slot: number, key: Buffer, l: PointerLookup) => {
    if (l.status !== 'found') {
      bridges[slot] = { bridge: key.toString('hex'), status: l.status, ...(l.status === 'invalid' ? { reason: l.reason } : {}) };
      return;
    }
    const p = l.pointer;
    bridges[slot] = {
      bridge: key.toString('hex'),
      status: 'found',
      bundles: p.infoHashes.length,
      n: p.n,
      pages: p.pages,
      seq: p.seq,
      complete: p.complete,
      ...(p.problems.length ? { problems: p.problems } : {}),
    };
    for (const ih of p.infoHashes) {
      const by = listedBy.get(ih);
      if (by) {
        by.push(short(key));
        listedByKey.get(ih)!.push(key.toString('hex'));
      } else {
        listedBy.set(ih, [short(key)]);
        listedByKey.set(ih, [key.toString('hex')]);
        order.push(ih);
      }
    }
  };
  let pointersDone = false;
  let tPointersDone = tPointers;
  const pointers = (async () => {
    const asked = new Set<string>();
    const inFlight = new Set<Promise<void>>();
    const feed = Symbol.asyncIterator in req.bridges ? req.bridges[Symbol.asyncIterator]() : toAsync(req.bridges);
    const deadline = new Promise<null>((resolve) => {
      if (swarmAbort.signal.aborted) resolve(null);
      swarmAbort.signal.addEventListener('abort', () => resolve(null), { once: true });
    });
    try {
      for (;;) {
        // The deadline ends the wait for a feed that has nothing more yet (discovery still running).
        const step = await Promise.race([feed.next(), deadline]);
        if (step === null || step.done) break;
        const key = step.value;
        const hex = key.toString('hex');
        if (asked.has(hex)) continue;
        asked.add(hex);
        const slot = bridges.length;
        bridges.length++;
        const p = lookupAuthorPointer(ctx.dht, key, req.author, limits.pointerTimeoutMs).then((l) => {
          record(slot, key, l);
          poke();
        });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        while (inFlight.size >= POINTER_LOOKUPS_AT_ONCE) await Promise.race(inFlight);
      }
    } finally {
      if (swarmAbort.signal.aborted) void feed.return?.();
      await Promise.all(inFlight);
      pointersDone = true;
      tPointersDone = Date.now();
      poke();
    }
  })();

  // 2. Bundles, newest first, a few at a time, within the byte budget and the swarm deadline.
  let tBundles: number | null = null;
  const bundles: BundleReport[] = [];
  const receivedAtStart = ctx.fetcher.received();
  let fileBytes = 0;
  let metadataBytes = 0;
  // Bytes off the wire (pieces include the file and any neighbours' bytes sharing its pieces).
  const spent = () => ctx.fetcher.received() - receivedAtStart + metadataBytes;
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (next >= order.length) {
        if (pointersDone) return;
        await changed;
        continue;
      }
      tBundles ??= Date.now();
      const ih = order[next++]!;
      const report: BundleReport = { infoHash: ih, bridges: listedBy.get(ih)!, ok: false, fileBytes: 0, events: 0, rejected: 0, ms: 0 };
      bundles.push(report);
      if (swarmAbort.signal.aborted) {
        report.reason = 'deadline';
        continue;
      }
      const room = limits.maxBytes - spent();
      if (room <= 0) {
        report.reason = 'budget';
        continue;
      }
      // Events are verified and passed on while the file downloads, piece by piece.
      const rej = new Rejections();
      const bridgesOf = listedByKey.get(ih)!;
      let piecePeers: readonly string[] = [];
      const checker = new LineChecker(req.author, rej, (e) => {
        report.events++;
        accept([e], 'swarm', { from: 'swarm', infoHash: ih, bridges: bridgesOf, peers: [...piecePeers] });
      });
      let lines: PieceLineAssembler | null = null;
      const out = await ctx.fetcher.fetchAuthorFile(
        ih,
        req.author,
        { maxMetadataBytes: limits.maxMetadataBytes, maxFileBytes: Math.min(limits.maxFileBytes, room), timeoutMs: limits.bundleTimeoutMs },
        {
          signal: swarmAbort.signal,
          onPiece: (index, count, data, peers) => {
            lines ??= new PieceLineAssembler(count, limits.maxEventBytes, checker);
            piecePeers = peers;
            lines.push(index, data);
          },
        },
      );
      report.ms = out.stats.ms;
      report.metadataMs = out.stats.metadataMs;
      report.firstByteMs = out.stats.firstByteMs;
      metadataBytes += out.stats.metadataBytes;
      report.rejected = rej.total;
      rejections.merge(rej);
      if (!out.ok) {
        // What verified before the failure stays: every event stands on its own signature.
        report.reason = out.reason === 'aborted' ? 'deadline' : out.reason;
        report.detail = out.detail;
        continue;
      }
      report.ok = true;
      report.fileBytes = out.fileBytes;
      fileBytes += out.fileBytes;
    }
  };
  await Promise.all([pointers, ...Array.from({ length: Math.max(1, limits.concurrency) }, worker)]);
  clearTimeout(swarmTimer);
  req.signal?.removeEventListener('abort', onOuterAbort);

  const anyFound = bridges.some((b) => b.status === 'found');
  const swarmComplete =
    anyFound && bridges.every((b) => b.status === 'absent' || (b.status === 'found' && b.complete)) && bundles.every((b) => b.ok);

  // 3. Relays: what the swarm could not give.
  const tRelays = Date.now();
  const relays: RelayReport[] = [];
  let relayBytes = 0;
  if (req.relays?.length && !req.signal?.aborted) {
    const userFilter = req.filter ?? {};
    const full = req.relayMode === 'full' || !swarmComplete || merger.size === 0;
    const since = full ? userFilter.since : Math.max(userFilter.since ?? 0, merger.newestCreatedAt());
    const filter: Filter = { authors: [req.author] };
    if (since !== undefined) filter.since = since;
    if (userFilter.until !== undefined) filter.until = userFilter.until;
    if (userFilter.kinds) filter.kinds = userFilter.kinds;
    const answers = await Promise.all(
      req.relays.map((url) => queryRelay(url, filter, { timeoutMs: limits.relayTimeoutMs, alreadyHave: (id) => merger.has(id) })),
    );
    for (const a of answers) {
      relayBytes += a.bytes;
      const rej = new Rejections();
      const verified: NostrEvent[] = [];
      for (const v of a.events) {
        const r = verifyEvent(v, req.author);
        if (typeof r === 'string') rej.add(r);
        else verified.push(r);
      }
      rejections.merge(rej);
      relays.push({
        url: a.url,
        ok: a.ok,
        ...(a.error ? { error: a.error } : {}),
        asked: full ? 'full' : 'newer-than-archive',
        ...(since !== undefined ? { since } : {}),
        received: a.events.length + a.alreadyHad,
        alreadyHad: a.alreadyHad,
        newEvents: accept(verified, a.url, { from: 'relay', url: a.url }),
        rejected: rej.total,
      });
    }
  }

  const { events, counts } = merger.result(req.filter);
  const sources: Record<string, number> = {};
  for (const { source } of events) sources[source] = (sources[source] ?? 0) + 1;
  return {
    events: events.map((x) => x.e),
    summary: {
      author: req.author,
      ms: Date.now() - t0,
      found: events.length > 0,
      swarmComplete,
      bridges,
      bundles,
      relays,
      events: { output: events.length, ...counts },
      rejected: rejections.counts,
      sources,
      bytes: { files: fileBytes, received: ctx.fetcher.received() - receivedAtStart, metadata: metadataBytes, relays: relayBytes },
      firstEventMs,
      // Pointers and bundles overlap: each from its first start to its last end.
      phasesMs: { pointers: tPointersDone - tPointers, bundles: tBundles === null ? 0 : tRelays - tBundles, relays: Date.now() - tRelays },
    },
  };
}

/** Exit status of a resolve: 0 found (complete), 1 not found, 3 failed, 4 found but incomplete. */
export function resolveExitCode(s: ResolveSummary, relaysAsked: boolean): 0 | 1 | 3 | 4 {
  const bridgeFailed = s.bridges.some((b) => b.status === 'timeout' || b.status === 'invalid');
  const bundleFailed = s.bundles.some((b) => !b.ok);
  const relayFailed = relaysAsked && s.relays.some((r) => !r.ok);
  const anythingAnswered = s.bridges.some((b) => b.status === 'found' || b.status === 'absent') || s.relays.some((r) => r.ok);
  if (!s.found) {
    if (!anythingAnswered || bundleFailed) return 3;
    return 1;
  }
  return bridgeFailed || bundleFailed || relayFailed ? 4 : 0;
}
