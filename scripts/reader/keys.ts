// Parsing the keys a reader is given on the command line: an author (npub, nprofile or 64 hex)
// and a bridge (the ed25519 key `nostr-bt key` prints, in hex or z-base-32).
import { decode as nip19decode } from 'nostr-tools/nip19';
import { zbase32Decode } from '../../sidecar/formats/zbase32.js';
import { ReaderError } from './errors.js';

/** Bad input from the user (a key, an address): reported as is, exit code 2. */
export class InputError extends ReaderError {
  override name = 'InputError';
  constructor(message: string) {
    super('BAD_INPUT', message);
  }
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** An author's public key as 64 lowercase hex. */
export function parseAuthorKey(input: string): string {
  const s = input.trim();
  if (HEX64.test(s)) return s.toLowerCase();
  if (/^nsec1/i.test(s))
    throw new InputError("that is a secret key (nsec): give the author's public key (npub or hex), and keep the nsec private");
  if (/^(npub1|nprofile1)/i.test(s)) {
    let d: ReturnType<typeof nip19decode>;
    try {
      d = nip19decode(s.toLowerCase());
    } catch (err) {
      throw new InputError(`not a valid ${s.slice(0, s.indexOf('1') + 1)} key: ${(err as Error).message}`);
    }
    if (d.type === 'npub') return d.data;
    if (d.type === 'nprofile') return d.data.pubkey;
  }
  throw new InputError(`not an author key: ${JSON.stringify(input.slice(0, 80))} (expected npub1…, nprofile1… or 64 hex characters)`);
}

/** A bridge's ed25519 public key (32 bytes) from 64 hex or 52 z-base-32 characters. */
export function parseBridgeKey(input: string): Buffer {
  const s = input.trim();
  if (HEX64.test(s)) return Buffer.from(s, 'hex');
  if (/^[ybndrfg8ejkmcpqxot1uwisza345h769]{52}$/.test(s)) {
    const k = zbase32Decode(s);
    if (k.length === 32) return k;
  }
  throw new InputError(
    `not a bridge key: ${JSON.stringify(input.slice(0, 80))} (expected the 64-hex or 52-character z-base-32 key that \`nostr-bt key\` prints on the bridge)`,
  );
}
