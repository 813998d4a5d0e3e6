// The messages between the ingest thread and a judge worker (judge/pool.ts, judge/worker.ts).
// Cheap for the ingest thread, which never decodes or encodes an event: a batch's lines go out as
// the bytes they arrived in, copied into one buffer, and the events come back as columns
// (judge/event-batch.ts): their lines (canonical JSON and newline, as the log stores them), ids and
// pubkeys as bytes, and the other fields as typed arrays, all in transferred buffers
// (bench/judge-bench.ts measures both directions).
import { judgeLine, type Judged } from './line-judge.js';
import type { Classified, PolicyConfig } from '../policy/content-policy.js';
import { clsReader, headAt, isEmptyCls, jsonAt, type EventBatch } from './event-batch.js';
import { byteLengthOf, writeInto, type TextOrBytes } from '../common/text-or-bytes.js';
import { CANONICAL_EVENT, CANONICAL_SKIPPED, CanonicalEventReader, NOT_CANONICAL } from './canonical-event.js';
import type { ArrayBufferPool } from '../common/array-buffer-pool.js';

/** This thread's reader of canonical lines (judgeRequest's fast path). */
const canonical = new CanonicalEventReader();

/**
 * A batch of input lines as one UTF-8 buffer: the ingest thread copies the bytes it received
 * into it (no decoding there); the worker decodes each line.
 */
export interface LineBatch {
  bytes: Uint8Array;
  /** Where each line ends in `bytes`. */
  ends: Uint32Array;
}

export function packLines(lines: readonly TextOrBytes[]): LineBatch {
  const packer = new LinePacker();
  for (const l of lines) packer.add(l);
  return packer.done();
}

/** Builds a LineBatch from single lines and runs of lines (a socket chunk's), in order. */
export class LinePacker {
  private readonly parts: TextOrBytes[] = [];
  /** Per part: 0 for a single line, else the lines of a run. */
  private readonly runLines: number[] = [];
  private byteCount = 0;
  private lineCount = 0;

  add(line: TextOrBytes): void {
    this.parts.push(line);
    this.runLines.push(0);
    this.byteCount += byteLengthOf(line);
    this.lineCount++;
  }

  /** `lines` lines, each ending with a newline (the newlines are not packed). */
  addRun(run: Buffer, lines: number): void {
    this.parts.push(run);
    this.runLines.push(lines);
    this.byteCount += run.length - lines;
    this.lineCount += lines;
  }

  /** The packed batch; in a buffer from `pool` when given (see ArrayBufferPool). Can be called again. */
  done(pool?: ArrayBufferPool): LineBatch {
    const bytes = pool ? Buffer.from(pool.take(this.byteCount), 0, this.byteCount) : Buffer.allocUnsafeSlow(this.byteCount);
    const ends = new Uint32Array(this.lineCount);
    let off = 0;
    let i = 0;
    for (let p = 0; p < this.parts.length; p++) {
      const part = this.parts[p]!;
      const lines = this.runLines[p]!;
      if (lines === 0) {
        ends[i++] = off += writeInto(bytes, part, off);
        continue;
      }
      const run = part as Buffer;
      for (let l = 0, from = 0; l < lines; l++) {
        const nl = run.indexOf(0x0a, from);
        ends[i++] = off += run.copy(bytes, off, from, nl);
        from = nl + 1;
      }
    }
    return { bytes, ends };
  }
}

export function lineCount(b: LineBatch): number {
  return b.ends.length;
}

export function lineText(b: LineBatch, i: number): string {
  const start = i === 0 ? 0 : b.ends[i - 1]!;
  return Buffer.from(b.bytes.buffer, b.bytes.byteOffset + start, b.ends[i]! - start).toString('utf8');
}

export interface JudgeRequest {
  seq: number;
  lines: LineBatch;
  /**
   * One flag for every line (true = check the signature), or per line VERIFY_ID,
   * VERIFY_SIGNATURE or ID_VERIFIED.
   */
  verify: boolean | Uint8Array;
  nowSec: number;
  /** Sent when it differs from the previous request's: the worker keeps it. */
  policy?: PolicyConfig;
  /**
   * The lines' buffer was transferred (the sender no longer has it): the reply gives it back as
   * `input`.
   */
  returnInput?: boolean;
  /** Test only: make the worker throw (an uncaught error ends it). */
  crash?: boolean;
}

/** Buffers the ingest thread is done with, for the worker to write its next replies into. */
export interface JudgeSpares {
  spares: ArrayBuffer[];
}

/** Tells the worker to let its spare buffers go (ingest is idle). */
export interface JudgeTrim {
  trim: true;
}

export type JudgeMessage = JudgeRequest | JudgeSpares | JudgeTrim;

export const EVENT = 0;
export const SKIPPED = 1;
export const INVALID = 2;

/** The request's lines judged: per line a status, and the events as columns (judge/event-batch.ts). */
export interface JudgeReply extends EventBatch {
  seq: number;
  /** Per line: EVENT, SKIPPED or INVALID. */
  status: Uint8Array;
  /** The reasons of the SKIPPED and INVALID lines, in line order. */
  reasons: string[];
  /** The request's lines, when it asked for them back (returnInput). */
  input?: LineBatch;
}

/** Per-line verification (JudgeRequest.verify): the id is checked, the signature too, or neither. */
export const VERIFY_ID = 0;
export const VERIFY_SIGNATURE = 1;
/** strfry checked id and signature before the line reached its plugin: neither is checked again. */
export const ID_VERIFIED = 2;

export function verifyAt(verify: boolean | Uint8Array, i: number): boolean {
  return typeof verify === 'boolean' ? verify : verify[i] === VERIFY_SIGNATURE;
}

function idVerifiedAt(verify: boolean | Uint8Array, i: number): boolean {
  return typeof verify !== 'boolean' && verify[i] === ID_VERIFIED;
}

/** JudgeRequest.verify for these per-line flags: a boolean when they are all the same and not ID_VERIFIED. */
export function verifyFlags(flags: readonly number[]): boolean | Uint8Array {
  const first = flags[0] ?? VERIFY_ID;
  if (first !== ID_VERIFIED && flags.every((f) => f === first)) return first === VERIFY_SIGNATURE;
  return Uint8Array.from(flags);
}

/**
 * Worker side: judges the request's lines (judgeLine, unchanged) and packs the results. Each
 * event's JSON and keys go into the reply's buffers as soon as it is judged, so a line's objects
 * die young: a batch's worth of parsed events kept to the end was promoted by every scavenge and
 * made this thread's garbage collection cost as much as the judging.
 */
export function judgeRequest(req: JudgeRequest, policy: PolicyConfig, spares?: ArrayBufferPool): JudgeReply {
  const lines = req.lines;
  const n = lineCount(lines);
  const status = new Uint8Array(n);
  const reasons: string[] = [];
  // Own ArrayBuffers (not Node's shared pool), so they can be transferred; sized for every line.
  const keyBytes = Buffer.from(new ArrayBuffer(64 * n));
  const createdAt = new Float64Array(n);
  const kinds = new Uint16Array(n);
  const lineEnds = new Uint32Array(n);
  const out = new LineBytes(lines.bytes.length + n + 1024, spares);
  const clsAt: number[] = [];
  const cls: Classified[] = [];
  // A plain Uint8Array (in a worker it is one; inline it may be a Buffer, whose views cost more).
  const bytes = new Uint8Array(lines.bytes.buffer, lines.bytes.byteOffset, lines.bytes.length);
  canonical.use(bytes);
  let m = 0;
  /** Records event m (its id and pubkey are in keyBytes already) and its line's end in `out`. */
  const addEvent = (i: number, c: number, kind: number, lineEnd: number, classified: Classified) => {
    status[i] = EVENT;
    createdAt[m] = c;
    kinds[m] = kind;
    lineEnds[m] = lineEnd;
    if (!isEmptyCls(classified)) {
      clsAt.push(m);
      cls.push(classified);
    }
    m++;
  };
  for (let i = 0; i < n; i++) {
    const verify = verifyAt(req.verify, i);
    if (!verify) {
      let start = i === 0 ? 0 : lines.ends[i - 1]!;
      let end = lines.ends[i]!;
      const checkId = !idVerifiedAt(req.verify, i);
      let fast = canonical.judge(start, end, policy, req.nowSec, keyBytes, 64 * m, checkId);
      // A relay's line: the event inside strfry's wrapper.
      if (fast === NOT_CANONICAL && canonical.unwrap(start, end)) {
        start = canonical.eventStart;
        end = canonical.eventEnd;
        fast = canonical.judge(start, end, policy, req.nowSec, keyBytes, 64 * m, checkId);
      }
      if (fast === CANONICAL_SKIPPED) {
        status[i] = SKIPPED;
        reasons.push(canonical.skip);
        continue;
      }
      if (fast === CANONICAL_EVENT) {
        addEvent(i, canonical.createdAt, canonical.kind, out.appendLineBytes(bytes, start, end), canonical.cls);
        continue;
      }
    }
    const j = judgeLine(lineText(lines, i), verify, policy, req.nowSec);
    if (j.kind !== 'event') {
      status[i] = j.kind === 'skipped' ? SKIPPED : INVALID;
      reasons.push(j.reason);
      continue;
    }
    const e = j.event;
    keyBytes.write(e.id, 64 * m, 'hex');
    keyBytes.write(e.pubkey, 64 * m + 32, 'hex');
    addEvent(i, e.created_at, e.kind, out.appendLine(j.json as string), j.cls);
  }
  canonical.release();
  return {
    seq: req.seq,
    status,
    reasons,
    keyBytes: keyBytes.subarray(0, 64 * m),
    createdAt: createdAt.subarray(0, m),
    kinds: kinds.subarray(0, m),
    lines: out.bytes(),
    lineEnds: lineEnds.subarray(0, m),
    clsAt: Uint32Array.from(clsAt),
    cls,
    ...(req.returnInput ? { input: lines } : {}),
  };
}

/** Lines of UTF-8 text appended to one transferable buffer, which grows when one might not fit. */
class LineBytes {
  private buf: Buffer;
  private end = 0;

  constructor(capacity: number, pool?: ArrayBufferPool) {
    this.buf = Buffer.from(pool ? pool.take(capacity) : new ArrayBuffer(capacity));
  }

  /** Appends `text` and a newline; returns the end offset. */
  appendLine(text: string): number {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: only then is the exact length needed.
    if (this.buf.length - this.end < 3 * text.length + 1) this.room(Buffer.byteLength(text) + 1);
    this.end += this.buf.write(text, this.end);
    this.buf[this.end++] = 0x0a;
    return this.end;
  }

  /** Appends bytes [start, end) of `from` and a newline; returns the end offset. */
  appendLineBytes(from: Uint8Array, start: number, end: number): number {
    this.room(end - start + 1);
    this.buf.set(from.subarray(start, end), this.end);
    this.end += end - start;
    this.buf[this.end++] = 0x0a;
    return this.end;
  }

  private room(bytes: number): void {
    const need = this.end + bytes;
    if (need <= this.buf.length) return;
    const grown = Buffer.from(new ArrayBuffer(Math.max(need, 2 * this.buf.length)));
    this.buf.copy(grown, 0, 0, this.end);
    this.buf = grown;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.end);
  }
}

/** The buffers a reply can transfer instead of copying. */
export function transferables(r: JudgeReply): ArrayBuffer[] {
  const list = [
    r.status.buffer,
    r.createdAt.buffer,
    r.kinds.buffer,
    r.clsAt.buffer,
    r.lines.buffer,
    r.lineEnds.buffer,
    r.keyBytes.buffer,
  ] as ArrayBuffer[];
  if (r.input) list.push(r.input.bytes.buffer as ArrayBuffer);
  return list;
}

/** The reply as judgeLine's results, one per line (tests and benches compare the two). */
export function unpackReply(r: JudgeReply): Judged[] {
  const clsOf = clsReader(r);
  let k = 0;
  let x = 0;
  return Array.from(r.status, (status): Judged => {
    if (status !== EVENT) return { kind: status === SKIPPED ? 'skipped' : 'invalid', reason: r.reasons[x++]! };
    const j: Judged = {
      kind: 'event',
      event: headAt(r, k),
      json: jsonAt(r, k),
      keyBytes: r.keyBytes.subarray(64 * k, 64 * k + 64),
      cls: clsOf(k),
    };
    k++;
    return j;
  });
}
