// Hostile input lines for the plugin and the sidecar socket: valid events, truncated JSON, random
// bytes, deep nesting, wrong types, and now and then a huge line (MBs). Deterministic per seed and
// generated lazily, so a million lines never sit in memory at once.
import { unsignedEvent, pluginLine, pubkeyN } from './events.js';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * JSON of the wrong shape for a plugin line or an event: the plugin's fuzz test feeds these (with
 * an empty and a blank line) to strfry's side; the socket's adds hello lines of the wrong shape.
 */
export const WRONG_SHAPES: readonly string[] = [
  '{"event":{"id":5}}',
  '{"event":"x"}',
  '{"event":null}',
  '{"event":{"id":"abc"}}',
  '{"event":{"id":["a"]}}',
  '{}',
  '[]',
  'null',
  '123',
  '"str"',
  '{"event":{"id":"' + 'f'.repeat(64) + '"',
  '{"authed":"x","event":{"content":"\\"id\\":\\"' + 'a'.repeat(64) + '\\""}',
];

const WRONG_TYPES = [...WRONG_SHAPES, '{"hello":5}', '{"hello":"backfill","trusted":"yes"}', '', ' '];

export interface HostileOptions {
  /** One huge line (≥ 1 MB) every this many lines (0: none). */
  hugeEvery?: number;
  /** Told the id of every well-formed event line of ordinary size (an oracle for what is stored). */
  onValid?: (id: string) => void;
}

/** `n` hostile lines (no newlines inside). */
export function* hostileLines(n: number, seed: number, opts: HostileOptions = {}): Generator<string> {
  const rnd = prng(seed);
  const event = (i: number, size: number) =>
    unsignedEvent(pubkeyN(i % 97), { kind: 1, created_at: 1_700_000_000 + seed * 10_000_000 + i, content: 'v'.repeat(size) });
  const valid = (i: number, size = 100, report = true) => {
    const e = event(i, size);
    if (report) opts.onValid?.(e.id);
    return pluginLine(e);
  };
  const garbage = (len: number) => {
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) {
      let c = Math.floor(rnd() * 256);
      if (c === 10 || c === 13) c = 32; // one generated line = one input line
      b[i] = c;
    }
    return b.toString('latin1');
  };
  let huge = 0;
  for (let i = 0; i < n; i++) {
    if (opts.hugeEvery && i % opts.hugeEvery === opts.hugeEvery - 1) {
      const k = huge++ % 3;
      yield k === 0 ? valid(i, 1_200_000, false) : k === 1 ? garbage(2_000_000) : '{"event":{"content":"' + 'x'.repeat(5_000_000);
      continue;
    }
    const r = rnd();
    if (r < 0.25) yield valid(i);
    else if (r < 0.45) {
      const v = valid(i, 100, false);
      yield v.slice(0, Math.floor(rnd() * v.length));
    } else if (r < 0.6) yield garbage(1 + Math.floor(rnd() * 300));
    else if (r < 0.7) yield WRONG_TYPES[Math.floor(rnd() * WRONG_TYPES.length)]!;
    else if (r < 0.75) yield '{"event":' + '['.repeat(1 + Math.floor(rnd() * 20_000));
    else if (r < 0.78) yield '{"event":{"id":"x","tags":' + '['.repeat(3000) + ']'.repeat(3000) + '}}';
    else if (r < 0.85) yield JSON.stringify({ event: { id: garbage(8), kind: 'one', tags: 'x' }, sourceType: 5 });
    else yield valid(i, 10 + Math.floor(rnd() * 2000));
  }
}

/** The id an independent reader gets from a line, if it is a well-formed plugin request. */
export function requiredId(line: string): string | null {
  try {
    const m = JSON.parse(line) as { event?: { id?: unknown } } | null;
    const id = m && typeof m === 'object' && m.event && typeof m.event === 'object' ? m.event.id : undefined;
    return typeof id === 'string' && id.length > 0 && id.length <= 256 ? id : null;
  } catch {
    return null;
  }
}

/** Event ids written as `"id":"<64 hex>"` somewhere in a line (what a salvage may answer). */
export function salvageableIds(line: string): string[] {
  return [...line.matchAll(/"id":"([0-9a-f]{64})"/g)].map((m) => m[1]!);
}
