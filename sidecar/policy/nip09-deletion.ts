// NIP-09 (event deletion requests): which ids and addresses a kind-5 event asks to delete, and
// what the request does to the events it names. Pure decisions; the index applies them in its
// write transaction and keeps tombstones (index/tombstones.ts) so a copy arriving later stays out.

/** What a deletion reads of an event. */
export interface DeletionEvent {
  pubkey: string;
  kind: number;
  tags: readonly (readonly string[])[];
}

/** The ids (`e` tags) and addresses (`a` tags, `kind:pubkey:d`) a kind-5 event asks to delete. */
export function deletionTargets(e: DeletionEvent): { ids: string[]; addrs: string[] } {
  const ids: string[] = [];
  const addrs: string[] = [];
  for (const t of e.tags) {
    if (t[0] === 'e' && t[1] && /^[0-9a-f]{64}$/.test(t[1])) ids.push(t[1]);
    else if (t[0] === 'a' && t[1]) {
      const [kind, pubkey] = t[1].split(':');
      // Only the author may delete; the address names the author.
      if (pubkey === e.pubkey && /^\d+$/.test(kind ?? '')) addrs.push(t[1].split(':').length === 2 ? `${t[1]}:` : t[1]);
    }
  }
  return { ids, addrs };
}

/** Whether a deletion by `deleter` removes this indexed event it names by id: only the author's, and never a deletion. */
export function deletionRemoves(target: { pubkey: string; kind: number }, deleter: string): boolean {
  return target.pubkey === deleter && target.kind !== 5;
}

/**
 * Whether an address deleted up to `deletedUntil` (created_at of the deletion) refuses or
 * removes a version of it created at `createdAt`: every version up to the deletion goes.
 */
export function addressDeletionCovers(deletedUntil: number | undefined, createdAt: number): boolean {
  return deletedUntil !== undefined && createdAt <= deletedUntil;
}

/** Whether a deletion at `at` moves an address's tombstone (the newest deletion is kept). */
export function laterDeletion(prev: number | undefined, at: number): boolean {
  return prev === undefined || prev < at;
}
