// One author's bundle file (`<pubkey>.jsonl`, one event per line, docs/protocol.md §6) checked in
// the browser as the CLI reader checks it: shape and id with the sidecar's own validateEvent, the
// author, and the Schnorr signature with nostr-tools. What fails is kept with its reason, for the
// page to show; nothing here throws on bad data.
import { verifyEvent as schnorrVerified } from 'nostr-tools/pure';
import { InvalidEvent, validateEvent, type NostrEvent } from '../../../sidecar/formats/nostr-event.js';

export type RejectReason = 'malformed' | 'truncated' | 'bad-field' | 'bad-id' | 'bad-sig' | 'wrong-author' | 'too-large';

export interface Rejected {
  reason: RejectReason;
  /** What was wrong, in words. */
  detail: string;
  /** Where: the bundle (infohash) and line number (1-based). */
  bundle: string;
  line: number;
  /** The start of the line, or of the event's content. */
  preview: string;
}

/** A line longer than this is not parsed (the sidecar's ingest.maxEventBytes default is 256 KiB). */
export const MAX_LINE_BYTES = 1024 * 1024;

const NEWLINE = 0x0a;

const REASON_TEXT: Record<RejectReason, string> = {
  malformed: 'not a JSON event',
  truncated: 'the file ends inside this line',
  'bad-field': 'a field has the wrong type or format',
  'bad-id': 'the id is not the sha256 of the event (content or tags were altered)',
  'bad-sig': 'the Schnorr signature does not verify',
  'wrong-author': 'signed by another key than the author asked for',
  'too-large': `longer than ${MAX_LINE_BYTES} bytes`,
};

export function checkValue(value: unknown, author: string): NostrEvent | { reason: RejectReason; detail: string } {
  let e: NostrEvent;
  try {
    e = validateEvent(value);
  } catch (err) {
    const reason = err instanceof InvalidEvent && (err.reason === 'bad-field' || err.reason === 'bad-id') ? err.reason : 'malformed';
    return { reason, detail: err instanceof InvalidEvent && reason !== 'bad-id' ? err.message : REASON_TEXT[reason] };
  }
  if (e.pubkey !== author) return { reason: 'wrong-author', detail: `${REASON_TEXT['wrong-author']} (${e.pubkey.slice(0, 12)}…)` };
  // A fresh object: nostr-tools caches a verdict on the object it is given.
  const copy = { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig };
  if (!schnorrVerified({ ...copy })) return { reason: 'bad-sig', detail: REASON_TEXT['bad-sig'] };
  return copy;
}

/** Checks every line of one bundle file; returns the verified events and what was rejected. */
export function checkFile(bytes: Uint8Array, author: string, bundle: string): { events: NostrEvent[]; rejected: Rejected[] } {
  const events: NostrEvent[] = [];
  const rejected: Rejected[] = [];
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    line++;
    let end = bytes.indexOf(NEWLINE, start);
    const terminated = end >= 0;
    if (!terminated) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const reject = (reason: RejectReason, detail = REASON_TEXT[reason], preview = '') =>
      rejected.push({ reason, detail, bundle, line, preview });
    if (raw.length > MAX_LINE_BYTES) {
      reject('too-large');
      continue;
    }
    let text: string;
    let value: unknown;
    try {
      text = utf8.decode(raw);
    } catch {
      reject('malformed', 'not UTF-8');
      continue;
    }
    try {
      value = JSON.parse(text);
    } catch {
      reject(terminated ? 'malformed' : 'truncated', undefined, text.slice(0, 120));
      continue;
    }
    const r = checkValue(value, author);
    if ('reason' in r) {
      const content =
        value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string'
          ? (value as { content: string }).content
          : text;
      reject(r.reason, r.detail, content.slice(0, 120));
    } else events.push(r);
  }
  return { events, rejected };
}
