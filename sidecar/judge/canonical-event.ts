// Judging a line that is exactly one event in canonical form (keys sorted, no spaces, only the
// escapes JSON.stringify writes: what `strfry export` writes and what the sidecar stores) from its
// bytes. Such a line is its own canonical JSON and its parts are the id serialization's parts, so
// there is nothing to parse or re-serialize: the content is scanned once, the hex decoded in
// place, the serialization hashed from copies of the line's bytes. On Node 20 that is a fraction
// of JSON.parse, the escape test and the template strings of the general path (judge/line-judge.ts),
// which judged every backfilled line (bench/judge-bench.ts). strfry's plugin input line wraps the
// event it stores, in the same form, in a few fields of its own (unwrap() finds it): a relay's
// every line can take this path too. Anything else — another key order, spaces, other escapes, a
// wrapper of another shape, a bad id, a signature to check — is not accepted here and takes the
// general path, which gives the same result for every line this accepts
// (test/canonical-event.test.ts compares both, line by line).
import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { classify, POLICY_EVERY_EVENT_TAGS, policyReadsTags, type Classified, type PolicyConfig } from '../policy/content-policy.js';

const lit = (s: string) => Buffer.from(s, 'latin1');
const OPEN = lit('{"content":"');
const CREATED_AT = lit(',"created_at":');
const ID = lit(',"id":"');
const KIND = lit('","kind":');
const PUBKEY = lit(',"pubkey":"');
const SIG = lit('","sig":"');
const TAGS = lit('","tags":');
const PREFIX = lit('[0,"');
// strfry's plugin input line (keys sorted, minified; docs/strfry-plugin-protocol.md): the event,
// then receivedAt, sourceInfo, sourceType and type; "authed" (a pubkey) first when the client
// authenticated.
const WRAP_EVENT = lit('{"event":');
const WRAP_AUTHED = lit('{"authed":"');
const WRAP_AUTHED_EVENT = lit('","event":');
const WRAP_EVENT_END = lit('},"receivedAt":');
const WRAP_RECEIVED_AT = lit(',"receivedAt":');
const WRAP_SOURCE_INFO = lit(',"sourceInfo":"');
const WRAP_SOURCE_TYPE = lit(',"sourceType":"');
const WRAP_END = lit('","type":"new"}');
const QUOTE = 0x22;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
const CLOSE_BRACE = 0x7d;

/** Hex digit values of lowercase hex (what ids, pubkeys and signatures must be), else -1. */
const HEX = new Int8Array(256).fill(-1);
for (let d = 0; d < 10; d++) HEX[0x30 + d] = d;
for (let d = 0; d < 6; d++) HEX[0x61 + d] = 10 + d;

/** Escapes after a backslash that JSON.stringify writes itself: \" \\ \b \f \n \r \t. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const c of '"\\bfnrt') SHORT_ESCAPE[c.charCodeAt(0)] = 1;

const EMPTY = new Uint8Array(0);
/** Given to the policy for an event without tags, or with none it reads (see policyReadsTags). */
const NO_TAGS: string[][] = [];
const POLICY_TAG_NAMES = POLICY_EVERY_EVENT_TAGS.map((name) => Buffer.from(name, 'utf8'));
/** The shortest canonical event: empty content and tags, one-digit numbers. */
const MIN_LENGTH = 333;

export const NOT_CANONICAL = 0;
export const CANONICAL_EVENT = 1;
export const CANONICAL_SKIPPED = 2;

/**
 * Reads canonical event lines; one instance per thread, reused for every line (its fields hold
 * the last line's results).
 */
export class CanonicalEventReader {
  createdAt = 0;
  kind = 0;
  /** The last event's classification (CANONICAL_EVENT) or skip reason (CANONICAL_SKIPPED). */
  cls: Classified = {};
  skip = '';
  private scratch = Buffer.allocUnsafeSlow(4096);
  private line: Buffer = Buffer.alloc(0);
  /** The same bytes as a plain Uint8Array (its subarrays are cheaper than a Buffer's). */
  private view: Uint8Array = new Uint8Array(0);
  /** The same memory as 32-bit words from its buffer's start (for scanning 4 bytes at a time). */
  private words: Uint32Array = new Uint32Array(0);
  /** Whether the last content string scanned has a byte ≥ 0x80 (then its UTF-8 is checked). */
  private highBytes = false;

  /** The event's bytes in the line unwrap() accepted last. */
  eventStart = 0;
  eventEnd = 0;

  /** Lets go of the batch in use (its memory may be large). */
  release(): void {
    this.use(EMPTY);
  }

  /** Judges lines from `bytes` from now on. */
  use(bytes: Uint8Array): void {
    this.line = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    this.view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    this.words = new Uint32Array(bytes.buffer, 0, (bytes.byteOffset + bytes.length) >>> 2);
  }

  /**
   * Judges bytes [start, end) of the batch in use (a line without its newline) if it is a canonical event: writes its id and pubkey
   * as 64 bytes at `keys[keysAt]` and returns CANONICAL_EVENT (fields: createdAt, kind, cls) or
   * CANONICAL_SKIPPED (skip). NOT_CANONICAL: the line needs the general path (`keys` may have
   * been written). `checkId` false: the id is taken as it is (strfry verified it: ID_VERIFIED in
   * judge/wire.ts), which saves hashing the event's serialization, the largest part of this.
   */
  judge(start: number, end: number, policy: PolicyConfig, nowSec: number, keys: Uint8Array, keysAt: number, checkId = true): number {
    const line = this.line;
    if (end - start < MIN_LENGTH || !startsWith(line, start, OPEN) || line[end - 1] !== CLOSE_BRACE) return NOT_CANONICAL;
    const contentAt = start + OPEN.length - 1;
    const quoteAt = this.stringEnd(contentAt + 1, end);
    if (quoteAt < 0) return NOT_CANONICAL;
    const contentEnd = quoteAt + 1;
    if (!startsWith(line, contentEnd, CREATED_AT)) return NOT_CANONICAL;
    const createdAtAt = contentEnd + CREATED_AT.length;
    const createdAtEnd = digitsEnd(line, createdAtAt, 16);
    if (createdAtEnd < 0) return NOT_CANONICAL;
    const createdAt = digitsValue(line, createdAtAt, createdAtEnd);
    if (createdAt > Number.MAX_SAFE_INTEGER || !startsWith(line, createdAtEnd, ID)) return NOT_CANONICAL;
    const idAt = createdAtEnd + ID.length;
    if (!decodeHex(line, idAt, keys, keysAt) || !startsWith(line, idAt + 64, KIND)) return NOT_CANONICAL;
    const kindAt = idAt + 64 + KIND.length;
    const kindEnd = digitsEnd(line, kindAt, 5);
    if (kindEnd < 0) return NOT_CANONICAL;
    const kind = digitsValue(line, kindAt, kindEnd);
    if (kind > 65535 || !startsWith(line, kindEnd, PUBKEY)) return NOT_CANONICAL;
    const pubkeyAt = kindEnd + PUBKEY.length;
    if (!decodeHex(line, pubkeyAt, keys, keysAt + 32) || !startsWith(line, pubkeyAt + 64, SIG)) return NOT_CANONICAL;
    const sigAt = pubkeyAt + 64 + SIG.length;
    if (!isHex(line, sigAt, 128) || !startsWith(line, sigAt + 128, TAGS)) return NOT_CANONICAL;
    const tagsAt = sigAt + 128 + TAGS.length;
    const tagsEnd = end - 1;
    const tags = this.tags(kind, tagsAt, tagsEnd);
    if (tags === null) return NOT_CANONICAL;
    if (this.highBytes && !isUtf8(this.view.subarray(contentAt, contentEnd))) return NOT_CANONICAL;
    if (
      checkId &&
      !this.idMatches(line, pubkeyAt, createdAtAt, createdAtEnd, kindAt, kindEnd, tagsAt, tagsEnd, contentAt, contentEnd, keys, keysAt)
    )
      return NOT_CANONICAL;
    const pubkey = line.toString('latin1', pubkeyAt, pubkeyAt + 64);
    const cls = classify({ kind, pubkey, tags }, end - start, policy, nowSec);
    if (cls.skip) {
      this.skip = cls.skip;
      return CANONICAL_SKIPPED;
    }
    this.createdAt = createdAt;
    this.kind = kind;
    this.cls = cls;
    return CANONICAL_EVENT;
  }

  /** Whether sha256 of [0,"<pubkey>",<created_at>,<kind>,<tags>,<content>], all copied as they are, is the id at keys[keysAt]. */
  private idMatches(
    line: Buffer,
    pubkeyAt: number,
    createdAtAt: number,
    createdAtEnd: number,
    kindAt: number,
    kindEnd: number,
    tagsAt: number,
    tagsEnd: number,
    contentAt: number,
    contentEnd: number,
    keys: Uint8Array,
    keysAt: number,
  ): boolean {
    const s = this.scratchFor(tagsEnd - tagsAt + contentEnd - contentAt + 128);
    let n = copyBytes(PREFIX, 0, PREFIX.length, s, 0);
    n = copyBytes(line, pubkeyAt, pubkeyAt + 64, s, n);
    s[n++] = QUOTE;
    s[n++] = COMMA;
    n = copyBytes(line, createdAtAt, createdAtEnd, s, n);
    s[n++] = COMMA;
    n = copyBytes(line, kindAt, kindEnd, s, n);
    s[n++] = COMMA;
    s.set(this.view.subarray(tagsAt, tagsEnd), n);
    n += tagsEnd - tagsAt;
    s[n++] = COMMA;
    s.set(this.view.subarray(contentAt, contentEnd), n);
    n += contentEnd - contentAt;
    s[n++] = 0x5d;
    const id = hash('sha256', s.subarray(0, n), 'buffer');
    for (let k = 0; k < 32; k++) if (id[k] !== keys[keysAt + k]) return false;
    return true;
  }

  /**
   * Whether bytes [start, end) of the batch in use are strfry's plugin input line around one
   * event, in exactly the shape strfry writes; the event's bytes are then [eventStart, eventEnd),
   * for judge() to read (which checks them as it checks any line). The first quote of the tail
   * cannot be inside a string of the event (there every quote is escaped), so the last
   * `},"receivedAt":` of the line ends the event if the line has this shape at all.
   */
  unwrap(start: number, end: number): boolean {
    const line = this.line;
    let at: number;
    if (startsWith(line, start, WRAP_EVENT)) at = start + WRAP_EVENT.length;
    else if (
      startsWith(line, start, WRAP_AUTHED) &&
      isHex(line, start + WRAP_AUTHED.length, 64) &&
      startsWith(line, start + WRAP_AUTHED.length + 64, WRAP_AUTHED_EVENT)
    ) {
      at = start + WRAP_AUTHED.length + 64 + WRAP_AUTHED_EVENT.length;
    } else return false;
    if (end - WRAP_EVENT_END.length < at) return false;
    // Scanned here rather than with lastIndexOf: the tail is ~100 bytes, less than the call costs.
    let close = end - WRAP_EVENT_END.length;
    while (close >= at && !(line[close] === CLOSE_BRACE && startsWith(line, close, WRAP_EVENT_END))) close--;
    if (close < at || !isWrapperTail(line, close + 1, end)) return false;
    this.eventStart = at;
    this.eventEnd = close + 1;
    return true;
  }

  /**
   * The tags, if bytes [from, to) are exactly JSON.stringify of an array of arrays of strings (and
   * valid UTF-8), else null. Parsed only when the policy reads them (policyReadsTags): for most
   * events the check of their bytes is all they cost.
   */
  private tags(kind: number, from: number, to: number): string[][] | null {
    const line = this.line;
    if (to - from === 2 && line[from] === 0x5b && line[from + 1] === 0x5d) return NO_TAGS;
    let high = false;
    let named = false;
    let i = from;
    if (line[i++] !== 0x5b) return null;
    for (;;) {
      if (line[i++] !== 0x5b) return null;
      if (line[i] === 0x5d) {
        i++;
      } else {
        for (let first = true; ; first = false) {
          if (line[i] !== QUOTE) return null;
          const q = this.stringEnd(i + 1, to);
          if (q < 0) return null;
          high ||= this.highBytes;
          if (first && !named) named = isPolicyTagName(line, i + 1, q);
          i = q + 1;
          const c = line[i++];
          if (c === 0x5d) break;
          if (c !== COMMA) return null;
        }
      }
      const c = line[i++];
      if (c === 0x5d) break;
      if (c !== COMMA) return null;
    }
    if (i !== to) return null;
    if (high && !isUtf8(this.view.subarray(from, to))) return null;
    if (!named && !policyReadsTags(kind)) return NO_TAGS;
    return JSON.parse(line.toString('utf8', from, to)) as string[][];
  }

  /**
   * Where the JSON string from `from` (after its opening quote) ends: its closing quote, if its
   * bytes are printable and its escapes are the short ones JSON.stringify writes (it writes no
   * others, and always these), so that the bytes are exactly the string's JSON. Else -1. Goes 4
   * bytes at a time while no byte of a word is a quote, a backslash or a control character.
   */
  private stringEnd(from: number, end: number): number {
    const line = this.line;
    const words = this.words;
    const base = line.byteOffset;
    let high = 0;
    let i = from;
    for (;;) {
      if (((base + i) & 3) === 0 && i + 4 <= end) {
        const w = words[(base + i) >>> 2]!;
        const q = w ^ 0x22222222;
        const b = w ^ 0x5c5c5c5c;
        // Bit 7 of a byte is set where it is < 0x20, a quote or a backslash (bithacks "hasless").
        if (((((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((b - 0x01010101) & ~b)) & 0x80808080) === 0) {
          high |= w;
          i += 4;
          continue;
        }
      }
      if (i >= end) return -1;
      const c = line[i]!;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        if (SHORT_ESCAPE[line[i + 1]!] !== 1) return -1;
        i += 2;
        continue;
      }
      if (c < 0x20) return -1;
      high |= c;
      i++;
    }
    this.highBytes = (high & 0x80808080) !== 0;
    return i;
  }

  private scratchFor(bytes: number): Buffer {
    if (this.scratch.length < bytes) this.scratch = Buffer.allocUnsafeSlow(Math.max(bytes, 2 * this.scratch.length));
    return this.scratch;
  }
}

function startsWith(line: Buffer, at: number, prefix: Buffer): boolean {
  if (at + prefix.length > line.length) return false;
  for (let k = 0; k < prefix.length; k++) if (line[at + k] !== prefix[k]) return false;
  return true;
}

/**
 * Whether bytes [from, end) are `,"receivedAt":<n>,"sourceInfo":"<s>","sourceType":"<t>","type":"new"}`
 * with <n> an integer as JSON writes it, <s> any JSON string body (valid escapes, no control
 * characters) and <t> up to 32 letters and digits: only what JSON.parse reads as these four
 * fields, so a line with this tail is valid JSON exactly when its event is.
 */
function isWrapperTail(line: Buffer, from: number, end: number): boolean {
  if (!startsWith(line, from, WRAP_RECEIVED_AT)) return false;
  let i = digitsEnd(line, from + WRAP_RECEIVED_AT.length, 16);
  if (i < 0 || !startsWith(line, i, WRAP_SOURCE_INFO)) return false;
  for (i += WRAP_SOURCE_INFO.length; ; ) {
    if (i >= end) return false;
    const c = line[i]!;
    if (c === QUOTE) break;
    if (c < 0x20) return false;
    if (c !== BACKSLASH) {
      i++;
      continue;
    }
    const e = line[i + 1];
    if (e === 0x75 /* u */) {
      if (i + 6 > end) return false;
      for (let k = i + 2; k < i + 6; k++) if (!isAnyHex(line[k]!)) return false;
      i += 6;
    } else if (i + 2 <= end && (SHORT_ESCAPE[e!] === 1 || e === 0x2f) /* / */) i += 2;
    else return false;
  }
  i++;
  if (!startsWith(line, i, WRAP_SOURCE_TYPE)) return false;
  i += WRAP_SOURCE_TYPE.length;
  const typeAt = i;
  while (i < end && i - typeAt <= 32 && isAlnum(line[i]!)) i++;
  return i - typeAt <= 32 && i + WRAP_END.length === end && startsWith(line, i, WRAP_END);
}

function isAnyHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

/** End of 1..max decimal digits at `at` with no leading zero (JSON.stringify's form), else -1. */
function digitsEnd(line: Buffer, at: number, max: number): number {
  let i = at;
  while (i < line.length && i - at <= max && line[i]! >= 0x30 && line[i]! <= 0x39) i++;
  const n = i - at;
  if (n === 0 || n > max || (n > 1 && line[at] === 0x30)) return -1;
  return i;
}

function digitsValue(line: Buffer, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (line[i]! - 0x30);
  return v;
}

/** 64 lowercase hex digits at `at` into 32 bytes at `out[outAt]`; false if any is not one. */
function decodeHex(line: Buffer, at: number, out: Uint8Array, outAt: number): boolean {
  if (at + 64 > line.length) return false;
  for (let k = 0; k < 32; k++) {
    const hi = HEX[line[at + 2 * k]!]!;
    const lo = HEX[line[at + 2 * k + 1]!]!;
    if ((hi | lo) < 0) return false;
    out[outAt + k] = (hi << 4) | lo;
  }
  return true;
}

/** Whether the string at [from, to) is a tag name the policy reads on every event. */
function isPolicyTagName(line: Buffer, from: number, to: number): boolean {
  for (const name of POLICY_TAG_NAMES) {
    if (to - from !== name.length) continue;
    let k = 0;
    while (k < name.length && line[from + k] === name[k]) k++;
    if (k === name.length) return true;
  }
  return false;
}

function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): number {
  for (let k = start; k < end; k++) to[at++] = from[k]!;
  return at;
}

function isHex(line: Buffer, at: number, count: number): boolean {
  if (at + count > line.length) return false;
  for (let k = 0; k < count; k++) if (HEX[line[at + k]!]! < 0) return false;
  return true;
}
