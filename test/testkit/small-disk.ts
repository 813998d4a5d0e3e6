// A small tmpfs to fill a disk for real (needs root with CAP_SYS_ADMIN); used by the disk-full tests.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Mounts a tmpfs of `sizeMb` under `dir`; returns its path, or null when mounting is not allowed. */
export function mountSmallDisk(dir: string, sizeMb: number): string | null {
  const mnt = join(dir, 'small-disk');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', mnt], { stdio: 'ignore' });
    return mnt;
  } catch {
    return null;
  }
}

export function unmountSmallDisk(mnt: string): void {
  try {
    execFileSync('umount', ['-l', mnt]);
  } catch {
    /* already gone */
  }
}
