// Every event a reader outputs is checked here: shape, id (sha256 of the NIP-01 serialization),
// author (= the key asked for) and Schnorr signature. Whatever fails is counted by reason, never
// output. Input comes from untrusted bundles and relays, so nothing here throws on bad data.
import { hasValidSignature, initSignatureCheck, InvalidEvent, validateEvent, type NostrEvent } from '../../sidecar/nostr-event.js';

export type RejectReason = 'malformed' | 'truncated' | 'bad-field' | 'bad-id' | 'bad-sig' | 'wrong-author' | 'too-large';

export class Rejections {
  readonly counts: Partial<Record<RejectReason, number>> = {};

  add(reason: RejectReason, n = 1): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + n;
  }

  get total(): number {
    let t = 0;
    for (const v of Object.values(this.counts)) t += v ?? 0;
    return t;
  }

  merge(other: Rejections): void {
    for (const [k, v] of Object.entries(other.counts)) this.add(k as RejectReason, v ?? 0);
  }
}

export { initSignatureCheck };

/** Checks one parsed value as an event by `author`; returns the event or why it is rejected. */
export function verifyEvent(value: unknown, author: string): NostrEvent | RejectReason {
  let e: NostrEvent;
  try {
    e = validateEvent(value);
  } catch (err) {
    if (err instanceof InvalidEvent && (err.reason === 'bad-field' || err.reason === 'bad-id' || err.reason === 'malformed')) return err.reason;
    return 'malformed';
  }
  if (e.pubkey !== author) return 'wrong-author';
  if (!hasValidSignature(e)) return 'bad-sig';
  return { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig };
}

export interface VerifyOptions {
  /** Lines longer than this are rejected unparsed ('too-large'). */
  maxEventBytes: number;
}

/**
 * Splits a bundle file (§6: one event per line, each line ending in \n) and verifies each line.
 * A last line without its \n that does not parse is 'truncated'.
 */
export function verifyJsonl(buf: Buffer, author: string, rejections: Rejections, opts: VerifyOptions): NostrEvent[] {
  const out: NostrEvent[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = buf.indexOf(0x0a, start);
    const terminated = end !== -1;
    if (!terminated) end = buf.length;
    const len = end - start;
    if (len > 0) {
      if (len > opts.maxEventBytes) rejections.add('too-large');
      else {
        let value: unknown;
        let parsed = true;
        try {
          value = JSON.parse(buf.toString('utf8', start, end));
        } catch {
          parsed = false;
        }
        if (!parsed) rejections.add(terminated ? 'malformed' : 'truncated');
        else {
          const r = verifyEvent(value, author);
          if (typeof r === 'string') rejections.add(r);
          else out.push(r);
        }
      }
    }
    start = end + 1;
  }
  return out;
}
