// NIP-62 (request to vanish): a kind-62 event aimed at this relay removes its author's events up
// to its created_at, and keeps them out when they arrive again. Pure decisions; the index keeps the
// newest request per author (index/tombstones.ts) and applies these in its write transaction.

/** The relay URL as compared with a request's `relay` tags. */
export function normalizeRelayUrl(u: string): string {
  return u.trim().toLowerCase().replace(/\/+$/, '');
}

/**
 * Whether a kind-62 event's `relay` tags aim it at this relay: ALL_RELAYS, or this relay's URL
 * (`relayUrl`; when it is not configured, any relay tag counts as this one).
 */
export function vanishAimsHere(tags: readonly (readonly string[])[], relayUrl: string | undefined | null): boolean {
  const mine = relayUrl ? normalizeRelayUrl(relayUrl) : null;
  return tags.some(
    (t) => t[0] === 'relay' && t[1] !== undefined && (t[1] === 'ALL_RELAYS' || mine === null || normalizeRelayUrl(t[1]) === mine),
  );
}

/**
 * Whether an author who vanished up to `vanishedUntil` keeps this event out: every event up to
 * the request, except a vanish request itself (a newer or repeated one is still honoured).
 */
export function vanishRefuses(
  vanishedUntil: number | undefined,
  e: { created_at: number; kind: number },
  isVanishRequest: boolean,
): boolean {
  return vanishedUntil !== undefined && e.created_at <= vanishedUntil && !(isVanishRequest && e.kind === 62);
}

/** Whether a vanish request removes this indexed event: the author's, up to the request's created_at, not the request itself. */
export function vanishRemoves(
  target: { id: string; pubkey: string; created_at: number },
  request: { id: string; pubkey: string; created_at: number },
): boolean {
  return target.pubkey === request.pubkey && target.created_at <= request.created_at && target.id !== request.id;
}

/** Whether a request at `at` moves the author's vanish time (the newest request is kept). */
export function laterVanish(prev: number | undefined, at: number): boolean {
  return prev === undefined || prev < at;
}
