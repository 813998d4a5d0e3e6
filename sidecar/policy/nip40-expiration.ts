// NIP-40 (expiration timestamp): an event whose `expiration` tag has passed is not served. Pure
// decisions; the tag is read by formats/event-kinds.ts (expirationOf), the index keeps an
// `expiry` table ordered by expiration and removes what this says has expired.

/** Whether an event expiring at `expiresAt` (unix s) has expired at `nowSec`: the second it names is already past. */
export function hasExpired(expiresAt: number, nowSec: number): boolean {
  return expiresAt <= nowSec;
}

/** The first expiration time not yet expired at `nowSec`: every earlier one has (the end of a sweep's range). */
export function firstUnexpired(nowSec: number): number {
  return nowSec + 1;
}
