// The reader's view of a bridge's author pointer; the item check itself is a format codec
// (sidecar/formats/pointer-check.ts).
export { checkItem, type ItemProblem, type VerifiedItem } from '../../sidecar/formats/pointer-check.js';

export interface AuthorPointer {
  /** Infohashes, newest bundle first, over all pages read. */
  infoHashes: string[];
  /** Bundles the pointer says exist (over all pages). */
  n: number;
  pages: number;
  seq: number;
  /** Every page was read and they list n infohashes in all. */
  complete: boolean;
  problems: string[];
  /** Page 0's `m`: the infohash of the author's media list torrent, when the bridge holds media of theirs. */
  mediaList?: string;
}

export type PointerLookup =
  | { status: 'found'; pointer: AuthorPointer }
  | { status: 'absent' | 'timeout' }
  | { status: 'invalid'; reason: string };
