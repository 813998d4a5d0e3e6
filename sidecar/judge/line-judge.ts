// What one input line is, before the index is consulted: an event to index (its head, canonical
// JSON and policy class), an event the content policy skips, or an invalid line. Shared by ingest
// and by backfill's dry run, so both judge a line the same way.
import { eventFromLine, hasValidSignature, InvalidEvent, validatedEventJson, type NostrEvent } from '../formats/nostr-event.js';
import { classify, type Classified, type PolicyConfig } from '../policy/content-policy.js';
import type { EventJson } from '../formats/nostr-event.js';

/** The fields the index needs from an event (the rest is in its canonical JSON). */
export type EventHead = Pick<NostrEvent, 'id' | 'pubkey' | 'created_at' | 'kind'>;

export type Judged =
  | { kind: 'event'; event: EventHead; json: EventJson; cls: Classified; keyBytes?: Uint8Array }
  | { kind: 'skipped'; reason: string }
  | { kind: 'invalid'; reason: string };

export function judgeLine(line: string, verifySignature: boolean, policy: PolicyConfig, nowSec: number): Judged {
  try {
    const { event, json } = validatedEventJson(eventFromLine(line));
    if (verifySignature && !hasValidSignature(event)) throw new InvalidEvent('bad-sig', 'signature does not verify');
    const cls = classify(event, Buffer.byteLength(json), policy, nowSec);
    if (cls.skip) return { kind: 'skipped', reason: cls.skip };
    return { kind: 'event', event: { id: event.id, pubkey: event.pubkey, created_at: event.created_at, kind: event.kind }, json, cls };
  } catch (err) {
    return { kind: 'invalid', reason: err instanceof InvalidEvent ? err.reason : 'error' };
  }
}
