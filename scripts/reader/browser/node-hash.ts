// `hash` of node:crypto for the browser build: sidecar/formats/nostr-event.ts computes event ids
// with it, and esbuild maps `node:crypto` here (scripts/build-browser.ts), so the page checks ids
// with the very code the sidecar and the CLI reader use. sha256 only (what that module asks for).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

export function hash(algorithm: string, data: string | Uint8Array, encoding: 'hex'): string {
  if (algorithm !== 'sha256' || encoding !== 'hex')
    throw new Error(`the browser build hashes only sha256 to hex, not ${algorithm}/${encoding}`);
  return bytesToHex(sha256(typeof data === 'string' ? utf8ToBytes(data) : data));
}
