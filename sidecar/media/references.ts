// The media an event points to, as blobs named by sha256 (docs/protocol.md "Media"). Only a
// reference that states its hash is kept: the fetcher keeps a blob only if its bytes hash to it,
// so a URL without a stated hash (and none in its path) could never be verified and is ignored.
//
// Sources, in the order their URLs are listed:
// - NIP-92 `imeta` tags (any kind): `url`, `x` (sha256), `m`, `size`, `fallback` (repeatable);
// - NIP-94 kind 1063 file metadata: the same fields as separate tags;
// - Blossom (BUD-01) / NIP-B7 URLs, in the content or in `url` tags of any kind, whose last path
//   segment is a 64-hex sha256 with an optional extension (`…/<sha256>.jpg`).
// The work per event is bounded (limits below): events are written by strangers.

export interface MediaRef {
  /** Lowercase hex. */
  sha256: string;
  /** http(s) URLs, normalized, first-seen order, no duplicates. */
  urls: string[];
  /** `type/subtype`, lowercase, as the event states it (a hint; the server's Content-Type is checked apart). */
  mime?: string;
  /** Bytes, as the event states it (a hint for quotas; the fetch counts the real bytes). */
  size?: number;
}

export interface ReferenceLimits {
  /** Blobs kept per event; the rest are ignored. */
  maxRefsPerEvent: number;
  /** URLs kept per blob. */
  maxUrlsPerBlob: number;
  /** Longer URLs are ignored. */
  maxUrlBytes: number;
}

export const DEFAULT_REFERENCE_LIMITS: ReferenceLimits = { maxRefsPerEvent: 32, maxUrlsPerBlob: 8, maxUrlBytes: 2048 };

/** The fields this module reads; a full NostrEvent fits. */
export interface EventLike {
  kind: number;
  tags: readonly (readonly string[])[];
  content: string;
}

export const FILE_METADATA_KIND = 1063;

const HEX64 = /^[0-9a-f]{64}$/i;
/** A Blossom path's last segment: the hash and an optional short extension. */
const BLOSSOM_SEGMENT = /^([0-9a-f]{64})(?:\.[a-z0-9]{1,16})?$/i;
const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
const SIZE = /^[0-9]{1,16}$/;
/** URL candidates in free text: scheme to the next blank or quote. */
const URL_IN_TEXT = /https?:\/\/[^\s<>"'`\\]+/gi;
/** Punctuation that ends a sentence rather than a URL. */
const TRAILING_PUNCTUATION = /[.,;:!?)\]}>*_~]+$/;
/** Content scanned for URLs (a long note is not scanned past this). */
const MAX_CONTENT_SCAN = 64 * 1024;

/** The media references of an event, deduplicated by sha256. */
export function mediaReferences(event: EventLike, limits: ReferenceLimits = DEFAULT_REFERENCE_LIMITS): MediaRef[] {
  const acc = new Collector(limits);
  for (const tag of event.tags) {
    if (tag[0] === 'imeta') acc.add(fromImeta(tag, limits));
  }
  if (event.kind === FILE_METADATA_KIND) acc.add(fromFileMetadata(event.tags, limits));
  for (const tag of event.tags) {
    if (tag[0] === 'url' && typeof tag[1] === 'string') acc.addBlossom(tag[1]);
  }
  const content = typeof event.content === 'string' ? event.content.slice(0, MAX_CONTENT_SCAN) : '';
  for (const m of content.matchAll(URL_IN_TEXT)) acc.addBlossom(m[0].replace(TRAILING_PUNCTUATION, ''));
  return acc.refs();
}

/** The sha256 named by a Blossom URL's last path segment, or null. */
export function blossomHash(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  const last = u.pathname.slice(u.pathname.lastIndexOf('/') + 1);
  const m = BLOSSOM_SEGMENT.exec(last);
  return m ? m[1]!.toLowerCase() : null;
}

interface Found {
  sha256: string | null;
  urls: string[];
  mime?: string;
  size?: number;
}

/** `["imeta", "url https://…", "x <hex>", "m image/png", "size 123", "fallback https://…", …]` */
function fromImeta(tag: readonly string[], limits: ReferenceLimits): Found {
  const fields: [string, string][] = [];
  for (let i = 1; i < tag.length; i++) {
    const entry = tag[i];
    if (typeof entry !== 'string') continue;
    const sp = entry.indexOf(' ');
    if (sp <= 0) continue;
    fields.push([entry.slice(0, sp), entry.slice(sp + 1).trim()]);
  }
  return fromFields(fields, limits);
}

/** Kind 1063: `["url", …]`, `["x", …]`, `["m", …]`, `["size", …]`, `["fallback", …]` as separate tags. */
function fromFileMetadata(tags: readonly (readonly string[])[], limits: ReferenceLimits): Found {
  const fields: [string, string][] = [];
  for (const t of tags) if (typeof t[0] === 'string' && typeof t[1] === 'string') fields.push([t[0], t[1]]);
  return fromFields(fields, limits);
}

function fromFields(fields: readonly [string, string][], limits: ReferenceLimits): Found {
  let x: string | null = null;
  let url: string | null = null;
  const fallbacks: string[] = [];
  let mime: string | undefined;
  let size: number | undefined;
  for (const [k, v] of fields) {
    switch (k) {
      case 'x':
        if (x === null && HEX64.test(v)) x = v.toLowerCase();
        break;
      case 'url':
        url ??= normalUrl(v, limits);
        break;
      case 'fallback': {
        const f = normalUrl(v, limits);
        if (f !== null) fallbacks.push(f);
        break;
      }
      case 'm':
        if (mime === undefined && MIME.test(v.toLowerCase())) mime = v.toLowerCase();
        break;
      case 'size':
        if (size === undefined && SIZE.test(v) && Number.isSafeInteger(Number(v))) size = Number(v);
        break;
    }
  }
  const urls = url === null ? fallbacks : [url, ...fallbacks];
  // No stated hash: a Blossom URL names it.
  const sha256 = x ?? (urls.length > 0 ? blossomHash(urls[0]!) : null);
  const out: Found = { sha256, urls };
  if (mime !== undefined) out.mime = mime;
  if (size !== undefined) out.size = size;
  return out;
}

/** An http(s) URL in its normal form (WHATWG), or null. */
function normalUrl(raw: string, limits: ReferenceLimits): string | null {
  if (Buffer.byteLength(raw) > limits.maxUrlBytes) return null;
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (u.username !== '' || u.password !== '') return null; // credentials in a stranger's URL are never sent
  u.hash = '';
  return u.href.length > limits.maxUrlBytes ? null : u.href;
}

class Collector {
  private readonly bySha = new Map<string, MediaRef>();

  constructor(private readonly limits: ReferenceLimits) {}

  add(p: Found): void {
    if (p.sha256 === null) return;
    let ref = this.bySha.get(p.sha256);
    if (ref === undefined) {
      if (this.bySha.size >= this.limits.maxRefsPerEvent) return;
      ref = { sha256: p.sha256, urls: [] };
      this.bySha.set(p.sha256, ref);
    }
    for (const u of p.urls) if (ref.urls.length < this.limits.maxUrlsPerBlob && !ref.urls.includes(u)) ref.urls.push(u);
    if (ref.mime === undefined && p.mime !== undefined) ref.mime = p.mime;
    if (ref.size === undefined && p.size !== undefined) ref.size = p.size;
  }

  addBlossom(raw: string): void {
    const url = normalUrl(raw, this.limits);
    if (url === null) return;
    const sha256 = blossomHash(url);
    if (sha256 !== null) this.add({ sha256, urls: [url] });
  }

  /** Only blobs with somewhere to fetch them from. */
  refs(): MediaRef[] {
    return [...this.bySha.values()].filter((r) => r.urls.length > 0);
  }
}
