// pread until the buffer is full: readSync may return fewer bytes than asked for.
import { readSync } from 'node:fs';

/** Reads `length` bytes at `position` into `buf`; returns how many it got (fewer only at the end of the file). */
export function readFullyAt(fd: number, buf: Uint8Array, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
