// Content policy: what the archive keeps. Pure functions over one event; the store applies the
// effects (replacement, deletion, vanish) against the index.
import type { Config } from '../common/config.js';
import type { NostrEvent } from '../formats/nostr-event.js';
import { expirationOf, isAddressable, isEphemeral, replaceKeyOf } from '../formats/event-kinds.js';

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

function normalizeRelayUrl(u: string): string {
  return u.trim().toLowerCase().replace(/\/+$/, '');
}

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
    if (policy.dropExpired && exp <= nowSec) return { skip: 'expired' };
    out.expiresAt = exp;
  }
  const key = replaceKeyOf(e);
  if (key !== undefined) out.replaceKey = key;
  if (e.kind === 5 && policy.honorDeletions) {
    const ids: string[] = [];
    const addrs: string[] = [];
    for (const t of e.tags) {
      if (t[0] === 'e' && t[1] && /^[0-9a-f]{64}$/.test(t[1])) ids.push(t[1]);
      else if (t[0] === 'a' && t[1]) {
        const [kind, pubkey] = t[1].split(':');
        // NIP-09: only the author may delete; the address names the author.
        if (pubkey === e.pubkey && /^\d+$/.test(kind ?? '')) addrs.push(t[1].split(':').length === 2 ? `${t[1]}:` : t[1]);
      }
    }
    out.deletes = { ids, addrs };
  }
  if (e.kind === 62 && policy.honorVanish) {
    const mine = policy.relayUrl ? normalizeRelayUrl(policy.relayUrl) : null;
    out.vanish = e.tags.some(
      (t) => t[0] === 'relay' && t[1] !== undefined && (t[1] === 'ALL_RELAYS' || mine === null || normalizeRelayUrl(t[1]) === mine),
    );
  }
  return out;
}
