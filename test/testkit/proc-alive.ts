// Whether a process is running (not gone, not a zombie), from /proc: tests that check a process
// they started was stopped.
import { readFileSync } from 'node:fs';

export function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
