// ed25519 with node:crypto (measured ~10× faster than pure JS here). Raw 32-byte keys.
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface Ed25519Key {
  publicKey: Buffer;
  sign(msg: Uint8Array): Buffer;
}

export function keyFromSeed(seed: Uint8Array): Ed25519Key {
  if (seed.length !== 32) throw new Error('ed25519 seed must be 32 bytes');
  const priv: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return {
    publicKey: Buffer.from(spki.subarray(SPKI_PREFIX.length)),
    sign: (msg) => cryptoSign(null, msg, priv),
  };
}

const keyCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const hex = Buffer.from(publicKey).toString('hex');
  let key = keyCache.get(hex);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (keyCache.size >= 10_000) keyCache.clear();
    keyCache.set(hex, key);
  }
  return key;
}

/** Never throws: anything off the wire that is not a valid signature is just "not valid". */
export function verifyEd25519(sig: unknown, msg: unknown, publicKey: unknown): boolean {
  try {
    if (!(sig instanceof Uint8Array) || !(msg instanceof Uint8Array) || !(publicKey instanceof Uint8Array)) return false;
    if (sig.length !== 64 || publicKey.length !== 32) return false;
    return cryptoVerify(null, msg, publicKeyObject(publicKey), sig);
  } catch {
    return false;
  }
}
