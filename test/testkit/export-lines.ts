// Generated history in `strfry export` form (canonical event JSON, one per line, ascending
// created_at), for backfill tests and the backfill benchmark. Realistic sizes: kind 1 notes with
// 300–1000 B of content and e/p tags, small kind 7 reactions, and (optionally) replaceable kind 0
// profiles and kind 3 follow lists. Signatures are placeholders: the strfry path is trusted (strfry
// verified them); ids are real.
import { createHash } from 'node:crypto';
import { contentOf, prng, pubkeyN } from './events.js';

export interface ExportOptions {
  n: number;
  authors: number;
  seed?: number;
  /** created_at of the first event, and the span the events are spread over (seconds). */
  startSec: number;
  spanSec: number;
  /** Include kind 0/3 (replaceable) events. */
  replaceable?: boolean;
}

export interface ExportLine {
  line: string;
  id: string;
  kind: number;
  pubkey: string;
  created_at: number;
}

const SIG = 'ab'.repeat(64);

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export function* exportLines(o: ExportOptions): Generator<ExportLine> {
  const seed = o.seed ?? 7;
  const rnd = prng(seed);
  const pubkeys: string[] = Array.from({ length: o.authors }, (_, i) => pubkeyN(i));
  for (let i = 0; i < o.n; i++) {
    const r = rnd();
    const kind = !o.replaceable ? (r < 0.92 ? 1 : 7) : r < 0.88 ? 1 : r < 0.97 ? 7 : r < 0.99 ? 0 : 3;
    const a = Math.floor(rnd() * o.authors);
    const pubkey = pubkeys[a]!;
    const tags: string[][] = [];
    let content: string;
    if (kind === 7) {
      tags.push(['e', sha(`target-${seed}-${i}`)], ['p', pubkeys[Math.floor(rnd() * o.authors)]!]);
      content = rnd() < 0.8 ? '+' : '🤙';
    } else if (kind === 3) {
      for (let k = 0; k < 20; k++) tags.push(['p', pubkeys[Math.floor(rnd() * o.authors)]!]);
      content = '';
    } else if (kind === 0) {
      content = JSON.stringify({
        name: `user${a}`,
        about: contentOf(200 + Math.floor(rnd() * 300), i),
        picture: `https://example.com/${a}.png`,
      });
    } else {
      if (rnd() < 0.4) tags.push(['e', sha(`root-${seed}-${i}`), '', 'root']);
      if (rnd() < 0.4) tags.push(['p', pubkeys[Math.floor(rnd() * o.authors)]!]);
      content = contentOf(300 + Math.floor(rnd() * 700), seed * 10_000_000 + i);
    }
    // Ascending, as strfry export walks its created_at index.
    const created_at = o.startSec + Math.floor((i * o.spanSec) / o.n);
    const id = createHash('sha256')
      .update(JSON.stringify([0, pubkey, created_at, kind, tags, content]))
      .digest('hex');
    const line = `{"content":${JSON.stringify(content)},"created_at":${created_at},"id":"${id}","kind":${kind},"pubkey":"${pubkey}","sig":"${SIG}","tags":${JSON.stringify(tags)}}`;
    yield { line, id, kind, pubkey, created_at };
  }
}
