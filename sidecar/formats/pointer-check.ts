// Checking a bridge's BEP-44 pointer item (docs/protocol.md §7) however it was fetched: key,
// salt, seq, size and the ed25519 signature over the salt, seq and v. No DHT here, so the
// library's format codecs can offer it to readers that get items another way (a gateway), and the
// DHT reads of the reader and the gateway share it (sidecar/dht/mutable-get.ts).
import { verifyEd25519 } from './ed25519.js';
import { MAX_V_BYTES, signedBytes, vSize } from './pointer-item.js';

export interface VerifiedItem {
  v: unknown;
  seq: number;
}

/** Why an item was not usable. */
export type ItemProblem = 'absent' | 'timeout' | 'wrong-key' | 'wrong-salt' | 'bad-signature' | 'bad-seq' | 'too-large';

/** The item (as a DHT node or a gateway returned it) if `k` signed exactly it for `salt`, else why not. */
export function checkItem(
  res: { v: unknown; k?: Uint8Array; salt?: Uint8Array; sig?: Uint8Array; seq?: number },
  k: Buffer,
  salt: Buffer,
): VerifiedItem | ItemProblem {
  if (!(res.k instanceof Uint8Array) || !k.equals(res.k)) return 'wrong-key';
  if (res.salt !== undefined && !(res.salt instanceof Uint8Array && salt.equals(res.salt))) return 'wrong-salt';
  if (typeof res.seq !== 'number' || !Number.isSafeInteger(res.seq) || res.seq < 0) return 'bad-seq';
  let size: number;
  try {
    size = vSize(res.v);
  } catch {
    return 'too-large';
  }
  if (size > MAX_V_BYTES) return 'too-large';
  if (!verifyEd25519(res.sig, signedBytes(salt, res.seq, res.v), k)) return 'bad-signature';
  return { v: res.v, seq: res.seq };
}
