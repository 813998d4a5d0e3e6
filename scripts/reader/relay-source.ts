// Asking a Nostr relay (NIP-01 REQ through nostr-tools) for an author's events: the reader's
// fallback for what the swarm did not give. Relays cap how many events one REQ returns, so the
// query pages backwards with `until` until a page brings nothing new. Events are handed back
// unverified; the caller verifies them exactly like events from bundles.
import { AbstractRelay } from 'nostr-tools/abstract-relay';
import type { Filter } from 'nostr-tools/filter';
import WebSocket from 'ws';

export interface RelayQueryOptions {
  /** Deadline for the whole query, connection included. */
  timeoutMs: number;
  /** `limit` asked per REQ. */
  pageSize?: number;
  maxPages?: number;
  /** Stop after this many events. */
  maxEvents?: number;
  /** Ids the caller already holds: counted, not handed back. */
  alreadyHave?: (id: string) => boolean;
  /** Called for each event as it arrives (unverified). */
  onEvent?: (e: unknown) => void;
}

export interface RelayAnswer {
  url: string;
  ok: boolean;
  error?: string;
  /** Every event value received (unverified), in arrival order. */
  events: unknown[];
  /** Events the relay sent that the caller already had. */
  alreadyHad: number;
  /** JSON bytes of the events received (what the relay sent for them, roughly). */
  bytes: number;
  pages: number;
}

export function isRelayUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'wss:' || u.protocol === 'ws:') && u.hostname.length > 0;
  } catch {
    return false;
  }
}

export async function queryRelay(url: string, filter: Filter, opts: RelayQueryOptions): Promise<RelayAnswer> {
  const answer: RelayAnswer = { url, ok: false, events: [], alreadyHad: 0, bytes: 0, pages: 0 };
  const deadline = Date.now() + opts.timeoutMs;
  const pageSize = opts.pageSize ?? 500;
  const maxPages = opts.maxPages ?? 1000;
  const maxEvents = opts.maxEvents ?? 1_000_000;
  const relay = new AbstractRelay(url, {
    verifyEvent: () => true,
    websocketImplementation: WebSocket as never,
    enableReconnect: false,
  });
  const seen = new Set<string>();
  try {
    await relay.connect({ timeout: Math.max(1, deadline - Date.now()) });
    let until = filter.until;
    for (let page = 0; page < maxPages && answer.events.length < maxEvents; page++) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('relay query timed out');
      const got = await reqOnce(relay, { ...filter, ...(until !== undefined ? { until } : {}), limit: pageSize }, left, opts.onEvent);
      answer.pages++;
      let fresh = 0;
      let oldest = Number.MAX_SAFE_INTEGER;
      for (const e of got.events) {
        const ev = e as { id?: unknown; created_at?: unknown };
        if (typeof ev.created_at === 'number' && ev.created_at < oldest) oldest = ev.created_at;
        if (typeof ev.id === 'string') {
          if (seen.has(ev.id)) continue;
          seen.add(ev.id);
          if (opts.alreadyHave?.(ev.id)) {
            answer.alreadyHad++;
            continue;
          }
        }
        answer.events.push(e);
        answer.bytes += JSON.stringify(e).length;
        fresh++;
      }
      if (got.timedOut) throw new Error('relay query timed out');
      // Fewer than a page: the relay has no more. A full page of nothing new at the same
      // `until`: more events share one second than a page holds; stop rather than loop.
      if (got.events.length < pageSize || oldest === Number.MAX_SAFE_INTEGER) break;
      if (fresh === 0 && oldest === until) break;
      until = oldest;
    }
    answer.ok = true;
  } catch (err) {
    answer.error = typeof err === 'string' ? err : ((err as Error)?.message ?? String(err));
  } finally {
    try {
      relay.close();
    } catch {
      /* already closed */
    }
  }
  return answer;
}

/** One REQ until EOSE (or the deadline). */
function reqOnce(
  relay: AbstractRelay,
  filter: Filter,
  timeoutMs: number,
  onEach?: (e: unknown) => void,
): Promise<{ events: unknown[]; timedOut: boolean }> {
  return new Promise((resolve) => {
    const events: unknown[] = [];
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.close();
      resolve({ events, timedOut });
    };
    const onEvent = (e: unknown) => {
      events.push(e);
      onEach?.(e);
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    const sub = relay.subscribe([filter], {
      onevent: onEvent,
      oninvalidevent: onEvent,
      oneose: () => finish(false),
      onclose: () => finish(false),
      eoseTimeout: timeoutMs,
    });
  });
}
