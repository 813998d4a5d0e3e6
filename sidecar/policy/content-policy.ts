// Content policy: what the archive keeps. Pure functions over one event; the store applies the
// effects (replacement, deletion, vanish) against the index. Each NIP's rules are in its own
// module here (nip09-deletion, nip40-expiration, nip62-vanish).
import type { Config } from '../common/config.js';
import type { NostrEvent } from '../formats/nostr-event.js';
import { expirationOf, isAddressable, isEphemeral, replaceKeyOf } from '../formats/event-kinds.js';
import { deletionTargets } from './nip09-deletion.js';
import { hasExpired } from './nip40-expiration.js';
import { vanishAimsHere } from './nip62-vanish.js';

export type SkipReason = 'ephemeral' | 'protected' | 'kind-denied' | 'kind-not-allowed' | 'expired' | 'too-large';

export interface Classified {
  skip?: SkipReason;
  /** For replaceable/addressable events: the slot only the newest event may hold. */
  replaceKey?: string;
  expiresAt?: number;
  /** kind 5: ids and addresses (`kind:pubkey:d`) the author asks to delete. */
  deletes?: { ids: string[]; addrs: string[] };
  /** kind 62 aimed at this relay: remove the author's earlier events. */
  vanish?: boolean;
}

export type PolicyConfig = Config['policy'] & { maxEventBytes: number };

/** What the policy reads of an event. */
export type PolicyEvent = Pick<NostrEvent, 'kind' | 'pubkey' | 'tags'>;

/**
 * The names of the tags classify reads on every event ('-' protects it, 'expiration'). Of the other
 * tags it reads only those of the kinds where policyReadsTags: the other events' tags need not be
 * parsed (judge/canonical-event.ts), so a new tag rule must be named here.
 */
export const POLICY_EVERY_EVENT_TAGS: readonly string[] = ['-', 'expiration'];

/** Kinds whose every tag classify may read: addressable ('d'), deletion ('e', 'a'), vanish ('relay'). */
export function policyReadsTags(kind: number): boolean {
  return isAddressable(kind) || kind === 5 || kind === 62;
}

export function classify(e: PolicyEvent, canonicalBytes: number, policy: PolicyConfig, nowSec: number): Classified {
  if (canonicalBytes > policy.maxEventBytes) return { skip: 'too-large' };
  if (isEphemeral(e.kind)) return { skip: 'ephemeral' };
  if (policy.denyKinds.includes(e.kind)) return { skip: 'kind-denied' };
  if (policy.allowKinds.length > 0 && !policy.allowKinds.includes(e.kind)) return { skip: 'kind-not-allowed' };
  for (const t of e.tags) if (t.length >= 1 && t[0] === '-') return { skip: 'protected' };
  const out: Classified = {};
  const exp = expirationOf(e);
  if (exp !== undefined) {
    if (policy.dropExpired && hasExpired(exp, nowSec)) return { skip: 'expired' };
    out.expiresAt = exp;
  }
  const key = replaceKeyOf(e);
  if (key !== undefined) out.replaceKey = key;
  if (e.kind === 5 && policy.honorDeletions) out.deletes = deletionTargets(e);
  if (e.kind === 62 && policy.honorVanish) out.vanish = vanishAimsHere(e.tags, policy.relayUrl);
  return out;
}
