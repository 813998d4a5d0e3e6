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
 * Splits a bundle file (§6: one event per line, each line ending in \n) as its bytes arrive and
 * verifies each line; a line longer than `maxEventBytes` is skipped unparsed ('too-large') and
 * never buffered whole. A last line without its \n that does not parse is 'truncated'.
 */
export class JsonlVerifier {
  private parts: Buffer[] = [];
  private partLen = 0;
  private overflow = false;

  constructor(
    private readonly author: string,
    private readonly rejections: Rejections,
    private readonly opts: VerifyOptions,
    private readonly onEvent: (e: NostrEvent) => void,
  ) {}

  push(chunk: Buffer): void {
    // Lines are decoded with Buffer#toString: a plain Uint8Array would not do.
    if (!Buffer.isBuffer(chunk)) chunk = Buffer.from((chunk as Uint8Array).buffer, (chunk as Uint8Array).byteOffset, (chunk as Uint8Array).byteLength);
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.overflow) {
        if (this.partLen + (end - start) > this.opts.maxEventBytes) {
          this.overflow = true;
          this.parts = [];
          this.partLen = 0;
        } else if (end > start) {
          this.parts.push(chunk.subarray(start, end));
          this.partLen += end - start;
        }
      }
      if (nl === -1) return;
      this.line(true);
      start = nl + 1;
    }
  }

  /** The input is over: a pending unterminated line is checked too. */
  end(): void {
    if (this.partLen > 0 || this.overflow) this.line(false);
  }

  private line(terminated: boolean): void {
    if (this.overflow) {
      this.rejections.add('too-large');
    } else if (this.partLen > 0) {
      const text = (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partLen)).toString('utf8');
      let value: unknown;
      let parsed = true;
      try {
        value = JSON.parse(text);
      } catch {
        parsed = false;
      }
      if (!parsed) this.rejections.add(terminated ? 'malformed' : 'truncated');
      else {
        const r = verifyEvent(value, this.author);
        if (typeof r === 'string') this.rejections.add(r);
        else this.onEvent(r);
      }
    }
    this.parts = [];
    this.partLen = 0;
    this.overflow = false;
  }
}

/** A whole bundle file at once (see JsonlVerifier). */
export function verifyJsonl(buf: Buffer, author: string, rejections: Rejections, opts: VerifyOptions): NostrEvent[] {
  const out: NostrEvent[] = [];
  const v = new JsonlVerifier(author, rejections, opts, (e) => out.push(e));
  v.push(buf);
  v.end();
  return out;
}
