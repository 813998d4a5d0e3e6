// The few fields of a .torrent the seeder needs (info dict bytes, name, piece length, piece
// hashes, total length), read without decoding its file list. A bundle lists one file per author:
// decoding a 50,000-file list (the bencode library builds objects for every entry) allocated
// tens of megabytes per bundle on the ingest thread, and its garbage collection cost more than
// the decoding. Values are read by walking the bytes; only small values are decoded.
import { createHash } from 'node:crypto';

export interface TorrentLayout {
  /** The bencoded info dict, as it is in the file (its SHA-1 is the infohash). */
  info: Uint8Array;
  name: string;
  pieceLength: number;
  /** SHA-1 of each piece, 20 bytes each. */
  pieces: Uint8Array;
  /** Total bytes of the torrent's files. */
  length: number;
}

const I = 0x69; // 'i'
const L = 0x6c; // 'l'
const D = 0x64; // 'd'
const E = 0x65; // 'e'
const COLON = 0x3a;

export class TorrentLayoutError extends Error {}

/** Reads a torrent's layout; throws TorrentLayoutError when it is malformed or its info dict does not hash to `infoHash`. */
export function torrentLayout(torrent: Uint8Array, infoHash: string): TorrentLayout {
  const r = new Reader(torrent);
  let info: Uint8Array | null = null;
  r.dict(0, (key, at) => {
    const end = r.skip(at);
    if (key === 'info') info = torrent.subarray(at, end);
    return end;
  });
  if (info === null) throw new TorrentLayoutError('no info dict');
  const infoBytes: Uint8Array = info;
  if (createHash('sha1').update(infoBytes).digest('hex') !== infoHash)
    throw new TorrentLayoutError(`info dict does not hash to ${infoHash}`);
  const ri = new Reader(infoBytes);
  let name: string | null = null;
  let pieceLength = 0;
  let pieces: Uint8Array | null = null;
  let length = 0;
  ri.dict(0, (key, at) => {
    switch (key) {
      case 'name': {
        const [start, end] = ri.string(at);
        name = Buffer.from(infoBytes.buffer, infoBytes.byteOffset + start, end - start).toString('utf8');
        return end;
      }
      case 'piece length':
        return ri.integer(at, (v) => (pieceLength = v));
      case 'pieces': {
        const [start, end] = ri.string(at);
        pieces = infoBytes.subarray(start, end);
        return end;
      }
      case 'length':
        return ri.integer(at, (v) => (length += v));
      case 'files':
        return ri.list(at, (fileAt) => ri.dict(fileAt, (k, v) => (k === 'length' ? ri.integer(v, (n) => (length += n)) : ri.skip(v))));
      default:
        return ri.skip(at);
    }
  });
  if (name === null || pieces === null || pieceLength <= 0) throw new TorrentLayoutError('info dict lacks name, piece length or pieces');
  const hashes: Uint8Array = pieces;
  if (hashes.length % 20 !== 0 || hashes.length / 20 !== Math.ceil(length / pieceLength))
    throw new TorrentLayoutError('piece hashes do not match the length');
  return { info: infoBytes, name, pieceLength, pieces: hashes, length };
}

/** A cursor over bencoded bytes; every method takes a position and returns the one after the value. */
class Reader {
  constructor(private readonly b: Uint8Array) {}

  /** Calls `onEntry` for each key (its value starts at `at`; it returns the position after the value). */
  dict(at: number, onEntry: (key: string, at: number) => number): number {
    if (this.b[at] !== D) throw new TorrentLayoutError(`expected a dict at byte ${at}`);
    let pos = at + 1;
    while (this.byteAt(pos) !== E) {
      const [start, end] = this.string(pos);
      pos = onEntry(Buffer.from(this.b.buffer, this.b.byteOffset + start, end - start).toString('latin1'), end);
    }
    return pos + 1;
  }

  list(at: number, onItem: (at: number) => number): number {
    if (this.b[at] !== L) throw new TorrentLayoutError(`expected a list at byte ${at}`);
    let pos = at + 1;
    while (this.byteAt(pos) !== E) pos = onItem(pos);
    return pos + 1;
  }

  integer(at: number, onValue: (v: number) => void): number {
    if (this.b[at] !== I) throw new TorrentLayoutError(`expected an integer at byte ${at}`);
    const end = this.find(E, at + 1);
    const v = this.digits(at + 1, end);
    onValue(v);
    return end + 1;
  }

  /** A byte string's content range: [start, end). */
  string(at: number): [number, number] {
    const colon = this.find(COLON, at);
    const start = colon + 1;
    const end = start + this.digits(at, colon);
    if (end > this.b.length) throw new TorrentLayoutError(`string at byte ${at} runs past the end`);
    return [start, end];
  }

  /** The position after the value at `at` (iterative: nesting depth cannot overflow the stack). */
  skip(at: number): number {
    let pos = at;
    let depth = 0;
    do {
      const c = this.byteAt(pos);
      if (c === I) pos = this.find(E, pos + 1) + 1;
      else if (c === L || c === D) {
        depth++;
        pos++;
      } else if (c === E) {
        if (depth === 0) throw new TorrentLayoutError(`unexpected end at byte ${pos}`);
        depth--;
        pos++;
      } else pos = this.string(pos)[1];
    } while (depth > 0);
    return pos;
  }

  private byteAt(pos: number): number {
    if (pos >= this.b.length) throw new TorrentLayoutError('truncated');
    return this.b[pos]!;
  }

  private find(c: number, from: number): number {
    const i = this.b.indexOf(c, from);
    if (i < 0) throw new TorrentLayoutError(`missing ${String.fromCharCode(c)} after byte ${from}`);
    return i;
  }

  private digits(start: number, end: number): number {
    let v = 0;
    let neg = false;
    for (let i = start; i < end; i++) {
      const d = this.b[i]!;
      if (i === start && d === 0x2d) neg = true;
      else if (d >= 0x30 && d <= 0x39) v = v * 10 + (d - 0x30);
      else throw new TorrentLayoutError(`not a number at byte ${i}`);
    }
    if (end === start || !Number.isSafeInteger(v)) throw new TorrentLayoutError(`bad number at byte ${start}`);
    return neg ? -v : v;
  }
}
