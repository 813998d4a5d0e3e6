// The web-of-trust crawl: the root's newest contact list (kind 3) from the archive, its `p` tags
// followed breadth-first to a depth, every author found resolved. Only verified contact lists
// are followed (a forged one — bad signature, another author — never reaches this code: the
// resolver rejects it). Bounded in authors, bytes and time, a few authors at a time.
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import type { ReaderContext } from './reader-context.js';
import { resolveAuthor, type RelayMode, type ResolveLimits, type ResolveSummary } from './resolve.js';
import type { EventFilter } from './event-merge.js';
import type { RejectReason } from './verify-events.js';
import { DEFAULT_CRAWL_BUDGET, type CrawlBudget, type CrawlProgress, type CrawlSummary } from './reader-types.js';

export { DEFAULT_CRAWL_BUDGET };
export type { CrawlBudget, CrawlProgress, CrawlSummary };

export interface CrawlRequest {
  root: string;
  depth: number;
  bridges: Buffer[];
  relays?: string[];
  relayMode?: RelayMode;
  /** Applied to the output; contact lists are read whatever the filter says. */
  filter?: EventFilter;
  limits?: Partial<ResolveLimits>;
  budget?: Partial<CrawlBudget>;
  /** Called once per resolved author with the events to output (may be awaited for backpressure). */
  onAuthor?: (a: { author: string; depth: number; events: NostrEvent[]; summary: ResolveSummary }) => void | Promise<void>;
  onProgress?: (p: CrawlProgress) => void;
  /** Stops the crawl (stoppedBy 'aborted'); authors being resolved end with what they have. */
  signal?: AbortSignal;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** The follows of a contact list: valid `p` tags, lowercase, each once. */
export function followsOf(contactList: NostrEvent): string[] {
  const out = new Set<string>();
  for (const t of contactList.tags) if (t[0] === 'p' && typeof t[1] === 'string' && HEX64.test(t[1])) out.add(t[1].toLowerCase());
  return [...out];
}

/** The newest kind 3 among an author's verified events (lowest id on a tie, as NIP-01 says). */
export function newestContactList(events: NostrEvent[], author: string): NostrEvent | null {
  let best: NostrEvent | null = null;
  for (const e of events) {
    if (e.kind !== 3 || e.pubkey !== author) continue;
    if (!best || e.created_at > best.created_at || (e.created_at === best.created_at && e.id < best.id)) best = e;
  }
  return best;
}

export async function crawl(ctx: ReaderContext, req: CrawlRequest): Promise<CrawlSummary> {
  const t0 = Date.now();
  const budget = { ...DEFAULT_CRAWL_BUDGET, ...req.budget };
  const summary: CrawlSummary = {
    root: req.root,
    depth: req.depth,
    ms: 0,
    authorsByDepth: [],
    authors: { resolved: 0, found: 0, notFound: 0, failed: 0, leftInQueue: 0 },
    events: 0,
    bytes: 0,
    rejected: {},
    contactListsFollowed: 0,
    rootContactList: null,
    stoppedBy: null,
  };
  const abort = new AbortController();
  const timer = setTimeout(() => {
    summary.stoppedBy ??= 'timeout';
    abort.abort();
  }, budget.timeoutMs);
  const onOuterAbort = () => {
    summary.stoppedBy ??= 'aborted';
    abort.abort();
  };
  if (req.signal?.aborted) onOuterAbort();
  req.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const queue: { author: string; depth: number }[] = [{ author: req.root, depth: 0 }];
  const seen = new Set<string>([req.root]);
  let started = 0;
  let active = 0;
  const receivedAtStart = ctx.fetcher.received();
  let relayBytes = 0;
  const progress = () =>
    req.onProgress?.({
      done: summary.authors.resolved,
      queued: queue.length,
      active,
      bytes: summary.bytes,
      events: summary.events,
      elapsedMs: Date.now() - t0,
    });

  const outputFilter = req.filter ?? {};
  // Contact lists must be seen whatever --kinds/--since say; the output is filtered afterwards.
  const readFilter: EventFilter = {};

  const step = async (item: { author: string; depth: number }) => {
    const { events, summary: s } = await resolveAuthor(ctx, {
      author: item.author,
      bridges: req.bridges,
      relays: req.relays,
      relayMode: req.relayMode,
      filter: readFilter,
      limits: { ...req.limits, maxBytes: Math.min(req.limits?.maxBytes ?? Infinity, Math.max(0, budget.maxBytes - summary.bytes)) },
      signal: abort.signal,
    });
    summary.authors.resolved++;
    summary.authorsByDepth[item.depth] = (summary.authorsByDepth[item.depth] ?? 0) + 1;
    summary.bytes = ctx.fetcher.received() - receivedAtStart + (relayBytes += s.bytes.relays);
    for (const [k, v] of Object.entries(s.rejected))
      summary.rejected[k as RejectReason] = (summary.rejected[k as RejectReason] ?? 0) + (v ?? 0);
    if (s.found) summary.authors.found++;
    else if (s.bundles.some((b) => !b.ok) || s.bridges.every((b) => b.status === 'timeout' || b.status === 'invalid'))
      summary.authors.failed++;
    else summary.authors.notFound++;

    if (item.depth < req.depth) {
      const cl = newestContactList(events, item.author);
      if (cl) {
        summary.contactListsFollowed++;
        const follows = followsOf(cl);
        if (item.depth === 0) summary.rootContactList = { id: cl.id, created_at: cl.created_at, follows: follows.length };
        for (const f of follows) {
          if (seen.has(f)) continue;
          seen.add(f);
          queue.push({ author: f, depth: item.depth + 1 });
        }
      }
    }
    const out = events.filter(
      (e) =>
        (outputFilter.since === undefined || e.created_at >= outputFilter.since) &&
        (outputFilter.until === undefined || e.created_at <= outputFilter.until) &&
        (outputFilter.kinds === undefined || outputFilter.kinds.includes(e.kind)),
    );
    summary.events += out.length;
    await req.onAuthor?.({ author: item.author, depth: item.depth, events: out, summary: s });
    if (summary.bytes >= budget.maxBytes) {
      summary.stoppedBy ??= 'max-bytes';
      abort.abort();
    }
    progress();
  };

  // A pool of workers over a FIFO queue that grows as contact lists are read (breadth first:
  // an author is queued at the depth it is first seen at).
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (active < budget.concurrency && queue.length > 0 && !abort.signal.aborted) {
        if (started >= budget.maxAuthors) {
          summary.stoppedBy ??= 'max-authors';
          break;
        }
        const item = queue.shift()!;
        started++;
        active++;
        progress();
        step(item)
          .catch(() => {
            summary.authors.failed++;
          })
          .finally(() => {
            active--;
            pump();
          });
      }
      if (active === 0) resolve();
    };
    pump();
  });
  clearTimeout(timer);
  req.signal?.removeEventListener('abort', onOuterAbort);
  summary.authors.leftInQueue = queue.length;
  summary.ms = Date.now() - t0;
  return summary;
}
