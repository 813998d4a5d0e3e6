// Lines and event JSON travel as text (spool files, tests, inline judging) or as the UTF-8 bytes
// they arrived in (the socket, a judge worker's answer): one way to size and copy either.

export type TextOrBytes = string | Uint8Array;

/** UTF-8 bytes of `x`. */
export function byteLengthOf(x: TextOrBytes): number {
  return typeof x === 'string' ? Buffer.byteLength(x) : x.length;
}

/** Copies `x` as UTF-8 into `buf` at `offset` (room checked by the caller); returns the bytes written. */
export function writeInto(buf: Buffer, x: TextOrBytes, offset: number): number {
  if (typeof x === 'string') return buf.write(x, offset);
  buf.set(x, offset);
  return x.length;
}
