// Images an event points to by sha256 (NIP-92 imeta `x`, NIP-94 kind 1063 `x`, Blossom URLs
// whose path is the sha256): the page shows them from the gateway's Blossom endpoint
// (`GET <gateway>/<sha256>`), which serves only blobs the bridge archived and verified.
import type { NostrEvent } from '../../../sidecar/formats/nostr-event.js';

const SHA256 = /^[0-9a-f]{64}$/;
const IMAGE_EXT = /\.(png|jpe?g|gif|webp|avif|svg)$/i;
const BLOSSOM_URL = /https?:\/\/[^\s/]+\/([0-9a-f]{64})(\.[a-z0-9]{1,5})?(?=[\s?#]|$)/gi;

export interface ImageRef {
  sha256: string;
  /** The URL the event gave, for the caption. */
  url?: string;
}

export function imagesOf(e: NostrEvent): ImageRef[] {
  const out = new Map<string, ImageRef>();
  for (const t of e.tags) {
    if (t[0] === 'imeta') {
      const f = new Map<string, string>();
      for (const part of t.slice(1)) {
        const i = part.indexOf(' ');
        if (i > 0) f.set(part.slice(0, i), part.slice(i + 1));
      }
      const x = f.get('x');
      const mime = f.get('m') ?? '';
      const url = f.get('url');
      if (x && SHA256.test(x) && (mime.startsWith('image/') || (url && IMAGE_EXT.test(new URL(url, 'https://x').pathname))))
        out.set(x, { sha256: x, url });
    }
  }
  if (e.kind === 1063) {
    const x = e.tags.find((t) => t[0] === 'x')?.[1];
    const mime = e.tags.find((t) => t[0] === 'm')?.[1] ?? '';
    if (x && SHA256.test(x) && mime.startsWith('image/')) out.set(x, { sha256: x, url: e.tags.find((t) => t[0] === 'url')?.[1] });
  }
  for (const m of e.content.matchAll(BLOSSOM_URL)) {
    const sha = m[1]!.toLowerCase();
    if (m[2] && IMAGE_EXT.test(m[2]) && !out.has(sha)) out.set(sha, { sha256: sha, url: m[0] });
  }
  return [...out.values()];
}
