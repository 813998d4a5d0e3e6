// Every line of a downloaded bundle checked as a reader checks it (docs/protocol.md §7, Reading):
// each file `<author>.jsonl` holds only events whose id is the sha256 of their NIP-01
// serialization, whose pubkey is that author and whose Schnorr signature verifies, one per line.
// A mirror seeds a bundle under its origin's infohash, so it cannot drop a bad line: one bad line
// refuses the whole bundle. Read in chunks; a line is bounded by `maxEventBytes`.
import { open } from 'node:fs/promises';
import { hasValidSignature, validateEvent } from '../formats/nostr-event.js';

export interface BundleVerdict {
  ok: boolean;
  events: number;
  /** Why it was refused (the first bad line), when it was. */
  problem?: string;
}

const CHUNK = 1024 * 1024;
const FILE = /^([0-9a-f]{64})\.jsonl$/;

export async function verifyBundleData(
  dataPath: string,
  files: readonly { name: string; length: number }[],
  maxEventBytes: number,
  /** Where the first of `files` starts in the data file (a worker checks a run of files). */
  startOffset = 0,
): Promise<BundleVerdict> {
  const fh = await open(dataPath, 'r');
  let events = 0;
  try {
    let offset = startOffset;
    for (const f of files) {
      const m = FILE.exec(f.name);
      if (!m) return { ok: false, events, problem: `unexpected file ${JSON.stringify(f.name).slice(0, 80)}` };
      const author = m[1]!;
      if (f.length === 0) return { ok: false, events, problem: `${f.name} is empty` };
      let pending = Buffer.alloc(0);
      let line = 0;
      for (let at = 0; at < f.length; ) {
        const n = Math.min(CHUNK, f.length - at);
        const buf = Buffer.allocUnsafe(n);
        const { bytesRead } = await fh.read(buf, 0, n, offset + at);
        if (bytesRead !== n) return { ok: false, events, problem: 'data file is truncated' };
        at += n;
        let data = pending.length ? Buffer.concat([pending, buf]) : buf;
        let start = 0;
        for (;;) {
          const nl = data.indexOf(0x0a, start);
          if (nl < 0) break;
          line++;
          const problem = checkLine(data.subarray(start, nl), author, maxEventBytes);
          if (problem) return { ok: false, events, problem: `${f.name} line ${line}: ${problem}` };
          events++;
          start = nl + 1;
        }
        data = data.subarray(start);
        if (data.length > maxEventBytes)
          return { ok: false, events, problem: `${f.name} line ${line + 1}: longer than ${maxEventBytes} bytes` };
        pending = Buffer.from(data);
      }
      if (pending.length > 0) return { ok: false, events, problem: `${f.name} does not end with a newline` };
      offset += f.length;
    }
    return { ok: true, events };
  } finally {
    await fh.close();
  }
}

function checkLine(bytes: Buffer, author: string, maxEventBytes: number): string | null {
  if (bytes.length > maxEventBytes) return `longer than ${maxEventBytes} bytes`;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'malformed';
  }
  let e: ReturnType<typeof validateEvent>;
  try {
    e = validateEvent(value);
  } catch (err) {
    return (err as { reason?: string }).reason ?? 'malformed';
  }
  if (e.pubkey !== author) return 'wrong-author';
  if (!hasValidSignature(e)) return 'bad-sig';
  return null;
}
