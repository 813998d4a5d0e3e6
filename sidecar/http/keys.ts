// Keys in gateway paths: an author (64 hex or npub1…) and a bridge (64 hex or 52 z-base-32).
import { decode as nip19decode } from 'nostr-tools/nip19';
import { zbase32Decode } from '../formats/zbase32.js';

const HEX64 = /^[0-9a-fA-F]{64}$/;
const Z32_52 = /^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/;

/** An author's public key as 64 lowercase hex, or null when `s` is neither hex nor an npub. */
export function authorKey(s: string): string | null {
  if (HEX64.test(s)) return s.toLowerCase();
  if (s.length > 100 || !/^npub1[02-9ac-hj-np-z]+$/.test(s)) return null;
  try {
    const d = nip19decode(s as `npub1${string}`);
    return d.type === 'npub' ? d.data : null;
  } catch {
    return null;
  }
}

/** A bridge's ed25519 public key (32 bytes), or null. */
export function bridgeKey(s: string): Buffer | null {
  if (HEX64.test(s)) return Buffer.from(s, 'hex');
  if (Z32_52.test(s)) {
    const k = zbase32Decode(s);
    if (k.length === 32) return k;
  }
  return null;
}

/** An infohash as 40 lowercase hex, or null. */
export function infoHash(s: string): string | null {
  return /^[0-9a-fA-F]{40}$/.test(s) ? s.toLowerCase() : null;
}
