// When strfry accepted a line: its plugin request carries `"receivedAt":<unix seconds>` after the
// event (docs/protocol.md). The ingestor reads it from the first line of each committed batch (the
// oldest: lines are committed in order), so status and metrics can say how far behind strfry the
// index is, counting the time a line waited in the plugin and the socket while the sidecar was
// starved of CPU, which the age of the oldest line the sidecar holds cannot see.
import type { TextOrBytes } from '../common/text-or-bytes.js';

const KEY = '"receivedAt":';
const KEY_BYTES = Buffer.from(KEY);
const NOT_FOUND = null;

/**
 * strfry's `receivedAt` (unix seconds) of the first line of `lines` (one line, or a run of
 * newline-ended lines), or null when that line is not a strfry plugin request (a bare event, a
 * backfill line).
 */
export function receivedAtOf(lines: TextOrBytes): number | null {
  if (typeof lines === 'string') {
    const nl = lines.indexOf('\n');
    const end = nl < 0 ? lines.length : nl;
    // The event's strings cannot hold the key unescaped: its quotes would be \".
    const at = lines.lastIndexOf(KEY, end - KEY.length);
    return at < 0 ? NOT_FOUND : digitsAt(lines, at + KEY.length, end);
  }
  const buf = Buffer.isBuffer(lines) ? lines : Buffer.from(lines.buffer, lines.byteOffset, lines.byteLength);
  const nl = buf.indexOf(0x0a);
  const end = nl < 0 ? buf.length : nl;
  if (end < KEY_BYTES.length) return NOT_FOUND;
  const at = buf.lastIndexOf(KEY_BYTES, end - KEY_BYTES.length);
  return at < 0 ? NOT_FOUND : digitsAt(buf, at + KEY_BYTES.length, end);
}

function digitsAt(s: string | Buffer, from: number, end: number): number | null {
  let v = 0;
  let i = from;
  for (; i < end && i < from + 16; i++) {
    const c = typeof s === 'string' ? s.charCodeAt(i) : s[i]!;
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  return i === from ? null : v;
}
