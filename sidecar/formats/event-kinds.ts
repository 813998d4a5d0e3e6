// What NIP-01 and NIP-40 say an event is, from its kind and tags: ephemeral, replaceable or
// addressable (and the slot its versions share), and when it expires. Shared by the sidecar's
// policy and index and by the reader's merge.
import { type NostrEvent, tagValue } from './nostr-event.js';

/** What these rules read of an event. */
export type KindedEvent = Pick<NostrEvent, 'kind' | 'pubkey' | 'tags'>;

export function isEphemeral(kind: number): boolean {
  return kind >= 20000 && kind < 30000;
}

export function isReplaceable(kind: number): boolean {
  return kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000);
}

export function isAddressable(kind: number): boolean {
  return kind >= 30000 && kind < 40000;
}

/** Slot key shared by every version of a replaceable/addressable event: `kind:pubkey:d`. */
export function replaceKeyOf(e: KindedEvent): string | undefined {
  if (isReplaceable(e.kind)) return `${e.kind}:${e.pubkey}:`;
  if (isAddressable(e.kind)) return `${e.kind}:${e.pubkey}:${tagValue(e, 'd') ?? ''}`;
  return undefined;
}

export function expirationOf(e: Pick<NostrEvent, 'tags'>): number | undefined {
  const v = tagValue(e, 'expiration');
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined;
  return Number(v);
}
