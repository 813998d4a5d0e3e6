// The bridge's advertisement to Nostr clients (docs/protocol.md §10): an addressable NIP-78 event
// (kind 30078, `d` = "nostr-bt:bridge") signed by the operator's Nostr key, naming the bridge key
// and its gateway and relay. A `bridge-proof` tag, the bridge key's ed25519 signature over the
// operator's Nostr key, shows the bridge key's holder agrees to be advertised by that author, so
// nobody can advertise someone else's bridge as their own.
import { verifyEd25519 } from './ed25519.js';
import type { NostrEvent } from './nostr-event.js';

export const ADVERT_KIND = 30078;
export const ADVERT_D = 'nostr-bt:bridge';
export const ADVERT_PROOF_PREFIX = Buffer.from('nostr-bt:advert:v1', 'ascii');

/** What the bridge key signs: prefix ‖ the operator's 32-byte Nostr public key. */
export function advertProofMessage(nostrPubkeyHex: string): Buffer {
  return Buffer.concat([ADVERT_PROOF_PREFIX, Buffer.from(nostrPubkeyHex, 'hex')]);
}

export interface AdvertFields {
  /** Bridge ed25519 public key, 64 hex. */
  bridgeKey: string;
  /** Its ed25519 signature over advertProofMessage(the operator's pubkey), 128 hex. */
  proof: string;
  gateway?: string;
  relay?: string;
}

/** The unsigned event (kind, tags, content); the operator's key signs it. */
export function advertTemplate(
  f: AdvertFields,
  createdAt: number,
): { kind: number; created_at: number; tags: string[][]; content: string } {
  const tags = [
    ['d', ADVERT_D],
    ['bridge', f.bridgeKey],
    ['bridge-proof', f.proof],
  ];
  if (f.gateway) tags.push(['gateway', f.gateway]);
  if (f.relay) tags.push(['r', f.relay]);
  tags.push(['alt', "nostr-bt archive bridge: read this relay's archive from the BitTorrent swarm with the bridge key"]);
  return { kind: ADVERT_KIND, created_at: createdAt, tags, content: '' };
}

/** Reads an advert's fields after checking its proof (the event's own id and signature are checked apart). */
export function readAdvert(
  e: Pick<NostrEvent, 'kind' | 'pubkey' | 'tags'>,
): { ok: true; fields: AdvertFields } | { ok: false; reason: string } {
  if (e.kind !== ADVERT_KIND) return { ok: false, reason: `kind ${e.kind}, not ${ADVERT_KIND}` };
  const tag = (n: string) => e.tags.find((t) => t[0] === n)?.[1];
  if (tag('d') !== ADVERT_D) return { ok: false, reason: `d tag is not ${ADVERT_D}` };
  const bridgeKey = tag('bridge');
  const proof = tag('bridge-proof');
  if (!bridgeKey || !/^[0-9a-f]{64}$/.test(bridgeKey)) return { ok: false, reason: 'no bridge key (64 hex)' };
  if (!proof || !/^[0-9a-f]{128}$/.test(proof)) return { ok: false, reason: 'no bridge-proof (128 hex)' };
  if (!verifyEd25519(Buffer.from(proof, 'hex'), advertProofMessage(e.pubkey), Buffer.from(bridgeKey, 'hex')))
    return { ok: false, reason: 'bridge-proof does not verify for this author' };
  const gateway = tag('gateway');
  const relay = tag('r');
  return { ok: true, fields: { bridgeKey, proof, ...(gateway ? { gateway } : {}), ...(relay ? { relay } : {}) } };
}
