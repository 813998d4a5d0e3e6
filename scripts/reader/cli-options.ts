// Parsers for the reader's command-line values (times, kinds, sizes, durations); each throws
// InputError with a message that names the option.
import { InputError } from './keys.js';

/** Unix seconds, or an ISO date/time ("2024-05-01", "2024-05-01T12:00:00Z"). */
export function parseTime(opt: string, s: string): number {
  if (/^\d{1,12}$/.test(s)) return Number(s);
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const ms = Date.parse(s);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new InputError(`${opt}: not a time: ${JSON.stringify(s)} (unix seconds or an ISO date)`);
}

/** "1,7,30000-30010" → kinds. */
export function parseKinds(s: string): number[] {
  const out = new Set<number>();
  for (const part of s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const a = m ? Number(m[1]) : NaN;
    const b = m?.[2] !== undefined ? Number(m[2]) : a;
    if (!m || a > 65535 || b > 65535 || b < a || b - a > 65535)
      throw new InputError(`--kinds: not a kind or range: ${JSON.stringify(part)}`);
    for (let k = a; k <= b; k++) out.add(k);
  }
  if (out.size === 0) throw new InputError('--kinds: no kinds given');
  return [...out];
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1048576", "512K", "64M", "1G" → bytes. */
export function parseBytes(opt: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new InputError(`${opt}: not a size: ${JSON.stringify(s)} (bytes, or with K, M, G)`);
  const n = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InputError(`${opt}: size out of range: ${JSON.stringify(s)}`);
  return n;
}

/** Seconds (decimals allowed) → ms. */
export function parseSeconds(opt: string, s: string): number {
  const n = Number(s);
  if (!/^\d+(\.\d+)?$/.test(s.trim()) || !Number.isFinite(n) || n <= 0 || n > 86_400 * 7)
    throw new InputError(`${opt}: not a duration in seconds: ${JSON.stringify(s)}`);
  return Math.round(n * 1000);
}

export function parseCount(opt: string, s: string, max = 1_000_000): number {
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || n < 0 || n > max) throw new InputError(`${opt}: not a whole number in 0…${max}: ${JSON.stringify(s)}`);
  return n;
}

/** commander helper for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
