// The bridge's identity: one ed25519 key for its BEP-44 items. Derived with HKDF-SHA256 from the
// operator's Nostr secret key when one is configured (same nsec → same bridge key, anywhere);
// otherwise a random secret generated once and kept in the data directory. Secrets never leave
// this module except as the signing function.
import { hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { decode as nip19decode } from 'nostr-tools/nip19';
import { keyFromSeed } from '../formats/ed25519.js';

export const HKDF_SALT = 'nostr-bt';
export const HKDF_INFO = 'nostr-bt bridge ed25519 key v1';

export interface BridgeIdentity {
  publicKey: Buffer;
  sign(msg: Uint8Array): Buffer;
  source: 'nostr-key' | 'generated';
  /** Where the key came from this time: derived from the configured Nostr key, generated now, loaded from its file. */
  origin: 'derived' | 'generated now' | 'loaded';
  /** The file it came from (the Nostr key file, or the generated key's file). */
  path: string;
}

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

/** No bridge key yet (and the caller asked not to create one). */
export class NoBridgeKeyError extends KeyFileError {
  override name = 'NoBridgeKeyError';
}

/** "generated now into /x/bridge.key" / "loaded from /x/bridge.key" / "derived from bridge.nostrKeyFile /k" */
export function describeOrigin(id: Pick<BridgeIdentity, 'origin' | 'path'>): string {
  if (id.origin === 'derived') return `derived from bridge.nostrKeyFile ${id.path} (config)`;
  return id.origin === 'generated now' ? `generated now into ${id.path}` : `loaded from ${id.path}`;
}

/** A key file must not be readable by group or others (0600 or 0400). */
function checkMode(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyFileError(
      `${path} has mode ${mode.toString(8).padStart(4, '0')}: a secret key file must be 0600 or 0400 (chmod 600 ${path})`,
    );
  }
}

/** Reads an nsec or 64-hex Nostr secret key from a file; returns the 32 raw bytes. */
export function readNostrSecret(path: string): Buffer {
  checkMode(path);
  const text = readFileSync(path, 'utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (text.startsWith('nsec1')) {
    try {
      const d = nip19decode(text as `nsec1${string}`);
      if (d.type === 'nsec') return Buffer.from(d.data);
    } catch {
      /* fall through */
    }
  }
  throw new KeyFileError(`${path}: expected an nsec1… or 64-hex Nostr secret key`);
}

export function deriveBridgeSeed(nostrSecret: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', nostrSecret, HKDF_SALT, HKDF_INFO, 32));
}

/**
 * nostrKeyFile set: derive from it; else use <dataDir>/bridge.key, created when missing unless
 * `create` is false (read-only tools: then NoBridgeKeyError).
 */
export function loadIdentity(opts: { nostrKeyFile?: string; generatedKeyFile: string; create?: boolean }): BridgeIdentity {
  let seed: Buffer;
  let source: BridgeIdentity['source'];
  let origin: BridgeIdentity['origin'];
  let path: string;
  if (opts.nostrKeyFile) {
    path = opts.nostrKeyFile;
    seed = deriveBridgeSeed(readNostrSecret(path));
    source = 'nostr-key';
    origin = 'derived';
  } else {
    path = opts.generatedKeyFile;
    origin = 'loaded';
    if (!existsSync(path)) {
      if (opts.create === false) {
        throw new NoBridgeKeyError(
          `no bridge key: ${path} does not exist and bridge.nostrKeyFile is not set (the sidecar generates the key at its first start)`,
        );
      }
      mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
      writeFileSync(path, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
      origin = 'generated now';
    }
    checkMode(path);
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new KeyFileError(`${path}: expected 64 hex characters`);
    seed = Buffer.from(text, 'hex');
    source = 'generated';
  }
  const key = keyFromSeed(seed);
  seed.fill(0);
  return { publicKey: key.publicKey, sign: key.sign, source, origin, path };
}
