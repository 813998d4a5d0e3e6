// An author's media list (docs/protocol.md §8 "Media list"): the blobs a bridge holds for an
// author's archived events, one line per blob, sorted by sha256, each the JSON object
// {"ih":"<blob torrent infohash>","sha256":"<64 hex>","size":<bytes>} with keys in that order.
// The same blobs always give the same bytes, hence the same list torrent. Shared by the bridge
// (which writes and seeds it) and the reader (which parses what a peer sent, trusting nothing).

export interface MediaListEntry {
  sha256: string;
  /** The blob torrent's infohash, 40 hex. */
  ih: string;
  size: number;
}

/** The list torrent's name: `nostr-bt-media-<author pubkey>`; its one file is `<pubkey>.jsonl`. */
export function mediaListName(author: string): string {
  return `nostr-bt-media-${author}`;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX40 = /^[0-9a-f]{40}$/;
const LINE = /^\{"ih":"([0-9a-f]{40})","sha256":"([0-9a-f]{64})","size":(0|[1-9][0-9]{0,15})\}$/;

export function mediaListBytes(entries: readonly MediaListEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
  let s = '';
  let last = '';
  for (const e of sorted) {
    if (!HEX64.test(e.sha256) || !HEX40.test(e.ih) || !Number.isSafeInteger(e.size) || e.size < 0)
      throw new Error(`media list: bad entry ${JSON.stringify(e)}`);
    if (e.sha256 === last) continue;
    last = e.sha256;
    s += `{"ih":"${e.ih}","sha256":"${e.sha256}","size":${e.size}}\n`;
  }
  return Buffer.from(s);
}

export class BadMediaList extends Error {}

/** Parses a list; any line not of the exact form, or out of order, makes the whole list refused. */
export function parseMediaList(bytes: Uint8Array, maxEntries = 1_000_000): MediaListEntry[] {
  const text = Buffer.from(bytes).toString('utf8');
  if (text.length > 0 && !text.endsWith('\n')) throw new BadMediaList('the list does not end with a newline');
  const lines = text.length === 0 ? [] : text.slice(0, -1).split('\n');
  if (lines.length > maxEntries) throw new BadMediaList(`more than ${maxEntries} entries`);
  const out: MediaListEntry[] = [];
  let last = '';
  for (const [i, line] of lines.entries()) {
    const m = LINE.exec(line);
    if (!m) throw new BadMediaList(`line ${i + 1} is not a media list entry`);
    if (m[2]! <= last) throw new BadMediaList(`line ${i + 1} is out of order`);
    last = m[2]!;
    const size = Number(m[3]);
    if (!Number.isSafeInteger(size)) throw new BadMediaList(`line ${i + 1}: size out of range`);
    out.push({ ih: m[1]!, sha256: m[2]!, size });
  }
  return out;
}
