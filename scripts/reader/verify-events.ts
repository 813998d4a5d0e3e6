// Every event a reader outputs is checked here: shape, id (sha256 of the NIP-01 serialization),
// author (= the key asked for) and Schnorr signature. Whatever fails is counted by reason, never
// output. Input comes from untrusted bundles and relays, so nothing here throws on bad data.
import { hasValidSignature, initSignatureCheck, InvalidEvent, validateEvent, type NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { PieceLineAssembler } from './piece-lines.js';

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
    if (err instanceof InvalidEvent && (err.reason === 'bad-field' || err.reason === 'bad-id' || err.reason === 'malformed'))
      return err.reason;
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

/** Parses and verifies single lines (a LineSink for PieceLineAssembler), counting rejections. */
export class LineChecker {
  constructor(
    private readonly author: string,
    private readonly rejections: Rejections,
    private readonly onEvent: (e: NostrEvent) => void,
  ) {}

  line(bytes: Buffer, terminated: boolean): void {
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      this.rejections.add(terminated ? 'malformed' : 'truncated');
      return;
    }
    const r = verifyEvent(value, this.author);
    if (typeof r === 'string') this.rejections.add(r);
    else this.onEvent(r);
  }

  tooLong(): void {
    this.rejections.add('too-large');
  }
}

/** A whole bundle file at once (one event per line, each ending in \n). */
export function verifyJsonl(buf: Buffer, author: string, rejections: Rejections, opts: VerifyOptions): NostrEvent[] {
  const out: NostrEvent[] = [];
  const checker = new LineChecker(author, rejections, (e) => out.push(e));
  const assembler = new PieceLineAssembler(1, opts.maxEventBytes, checker);
  assembler.push(0, buf);
  return out;
}
