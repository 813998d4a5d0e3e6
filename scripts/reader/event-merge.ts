// Merging verified events from several bundles, bridges and relays into what a client should see:
// one copy per id; for replaceable (0, 3, 10000–19999) and addressable (30000–39999, per `d` tag)
// events only the newest version; nothing the author deleted (NIP-09, honoured from the events
// themselves, so a stale copy of an old bundle cannot bring a deleted note back); no ephemeral
// or expired events (the archive never keeps them); then the user's filter. Newest first.
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { expirationOf, isEphemeral, replaceKeyOf } from '../../sidecar/formats/event-kinds.js';

export interface EventFilter {
  since?: number;
  until?: number;
  kinds?: number[];
}

export interface MergeCounts {
  /** Distinct verified events seen. */
  unique: number;
  duplicates: number;
  superseded: number;
  deleted: number;
  ephemeral: number;
  expired: number;
  /** Left out by --since/--until/--kinds. */
  filtered: number;
}

/** Newer first; for equal created_at the lower id wins (NIP-01), so it sorts first. */
function newerFirst(a: NostrEvent, b: NostrEvent): number {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class EventMerger {
  private readonly byId = new Map<string, { e: NostrEvent; source: string }>();
  private duplicates = 0;

  /** Adds a verified event; returns false if that id was already there. */
  add(e: NostrEvent, source: string): boolean {
    if (this.byId.has(e.id)) {
      this.duplicates++;
      return false;
    }
    this.byId.set(e.id, { e, source });
    return true;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Newest created_at among the events held (0 if none). */
  newestCreatedAt(): number {
    let m = 0;
    for (const { e } of this.byId.values()) if (e.created_at > m) m = e.created_at;
    return m;
  }

  /** The events to output, newest first, with where each came from and what was left out. */
  result(
    filter: EventFilter = {},
    nowSec = Math.floor(Date.now() / 1000),
  ): { events: { e: NostrEvent; source: string }[]; counts: MergeCounts } {
    const counts: MergeCounts = {
      unique: this.byId.size,
      duplicates: this.duplicates,
      superseded: 0,
      deleted: 0,
      ephemeral: 0,
      expired: 0,
      filtered: 0,
    };
    // NIP-09 deletions: `e` ids, and `a` addresses up to the deletion's created_at. Only the
    // author's own deletions count (a reader may merge several authors' events).
    const deletedIds = new Map<string, string>();
    const deletedAddrs = new Map<string, number>();
    for (const { e } of this.byId.values()) {
      if (e.kind !== 5) continue;
      for (const t of e.tags) {
        if (t[0] === 'e' && t[1]) deletedIds.set(t[1], e.pubkey);
        else if (t[0] === 'a' && t[1]) {
          const parts = t[1].split(':');
          if (parts[1] !== e.pubkey || !/^\d+$/.test(parts[0] ?? '')) continue;
          const addr = parts.length === 2 ? `${t[1]}:` : t[1];
          deletedAddrs.set(addr, Math.max(deletedAddrs.get(addr) ?? 0, e.created_at));
        }
      }
    }
    const newestBySlot = new Map<string, { e: NostrEvent; source: string }>();
    const kept: { e: NostrEvent; source: string }[] = [];
    for (const item of this.byId.values()) {
      const { e } = item;
      if (isEphemeral(e.kind)) {
        counts.ephemeral++;
        continue;
      }
      const exp = expirationOf(e);
      if (exp !== undefined && exp <= nowSec) {
        counts.expired++;
        continue;
      }
      if (e.kind !== 5 && deletedIds.get(e.id) === e.pubkey) {
        counts.deleted++;
        continue;
      }
      const slot = replaceKeyOf(e);
      if (slot === undefined) {
        kept.push(item);
        continue;
      }
      const delAt = deletedAddrs.get(slot);
      if (delAt !== undefined && e.created_at <= delAt) {
        counts.deleted++;
        continue;
      }
      const cur = newestBySlot.get(slot);
      if (!cur) newestBySlot.set(slot, item);
      else {
        counts.superseded++;
        if (newerFirst(e, cur.e) < 0) newestBySlot.set(slot, item);
      }
    }
    kept.push(...newestBySlot.values());
    const events = kept.filter(({ e }) => {
      const ok =
        (filter.since === undefined || e.created_at >= filter.since) &&
        (filter.until === undefined || e.created_at <= filter.until) &&
        (filter.kinds === undefined || filter.kinds.includes(e.kind));
      if (!ok) counts.filtered++;
      return ok;
    });
    events.sort((a, b) => newerFirst(a.e, b.e));
    return { events, counts };
  }
}
