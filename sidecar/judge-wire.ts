// The messages between the ingest thread and a judge worker (judge-pool.ts, judge-worker.ts).
// Cheap for the ingest thread, which never decodes or encodes an event: a batch's lines go out as
// the bytes they arrived in, copied into one buffer, and the canonical JSON, ids and pubkeys come
// back as bytes in transferred buffers, next to typed arrays and the ids and pubkeys as text
// (bench/judge-bench.ts measures both directions).
import { judgeLine, type Judged } from './line-judge.js';
import type { Classified, PolicyConfig } from './policy.js';
import { byteLengthOf, writeInto, type TextOrBytes } from './text-or-bytes.js';

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
  let total = 0;
  for (const l of lines) total += byteLengthOf(l);
  const bytes = Buffer.allocUnsafeSlow(total);
  const ends = new Uint32Array(lines.length);
  let off = 0;
  for (let i = 0; i < lines.length; i++) ends[i] = off += writeInto(bytes, lines[i]!, off);
  return { bytes, ends };
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
  /** One flag for every line, or per line (1 = check the signature). */
  verify: boolean | Uint8Array;
  nowSec: number;
  /** Sent when it differs from the previous request's: the worker keeps it. */
  policy?: PolicyConfig;
  /** Test only: make the worker throw (an uncaught error ends it). */
  crash?: boolean;
}

export const EVENT = 0;
export const SKIPPED = 1;
export const INVALID = 2;

export interface JudgeReply {
  seq: number;
  /** Per line: EVENT, SKIPPED or INVALID. */
  status: Uint8Array;
  /** The reasons of the SKIPPED and INVALID lines, in line order. */
  reasons: string[];
  /** Per event, in line order. */
  ids: string[];
  pubkeys: string[];
  /** The same ids and pubkeys as raw bytes, 64 per event (id, then pubkey): the index row's form. */
  keyBytes: Uint8Array;
  createdAt: Float64Array;
  kinds: Uint16Array;
  /** Canonical JSON of every event, UTF-8, one after the other (a copy of one buffer instead of a string per event). */
  jsonBytes: Uint8Array;
  /** Where each event's JSON ends in jsonBytes. */
  jsonEnds: Uint32Array;
  /** Classifications that are not empty, and the event index (not line index) of each. */
  clsAt: Uint32Array;
  cls: Classified[];
}

export function verifyAt(verify: boolean | Uint8Array, i: number): boolean {
  return typeof verify === 'boolean' ? verify : verify[i] === 1;
}

/** Worker side: judges the request's lines (judgeLine, unchanged) and packs the results. */
export function judgeRequest(req: JudgeRequest, policy: PolicyConfig): JudgeReply {
  const lines = req.lines;
  const n = lineCount(lines);
  const status = new Uint8Array(n);
  const reasons: string[] = [];
  const heads: Judged[] = [];
  for (let i = 0; i < n; i++) {
    const j = judgeLine(lineText(lines, i), verifyAt(req.verify, i), policy, req.nowSec);
    if (j.kind === 'event') {
      status[i] = EVENT;
      heads.push(j);
    } else {
      status[i] = j.kind === 'skipped' ? SKIPPED : INVALID;
      reasons.push(j.reason);
    }
  }
  const m = heads.length;
  const ids = new Array<string>(m);
  const pubkeys = new Array<string>(m);
  const json = new Array<string>(m);
  let jsonTotal = 0;
  const createdAt = new Float64Array(m);
  const kinds = new Uint16Array(m);
  const clsAt: number[] = [];
  const cls: Classified[] = [];
  for (let k = 0; k < m; k++) {
    const j = heads[k] as Extract<Judged, { kind: 'event' }>;
    ids[k] = j.event.id;
    pubkeys[k] = j.event.pubkey;
    createdAt[k] = j.event.created_at;
    kinds[k] = j.event.kind;
    json[k] = j.json as string;
    jsonTotal += Buffer.byteLength(json[k]!);
    if (!isEmpty(j.cls)) {
      clsAt.push(k);
      cls.push(j.cls);
    }
  }
  // Its own ArrayBuffer (not Node's shared pool), so it can be transferred.
  const jsonBytes = Buffer.from(new ArrayBuffer(jsonTotal));
  const jsonEnds = new Uint32Array(m);
  const keyBytes = Buffer.from(new ArrayBuffer(64 * m));
  for (let k = 0; k < m; k++) {
    keyBytes.write(ids[k]!, 64 * k, 'hex');
    keyBytes.write(pubkeys[k]!, 64 * k + 32, 'hex');
  }
  for (let k = 0, end = 0; k < m; k++) jsonEnds[k] = end += jsonBytes.write(json[k]!, end);
  return { seq: req.seq, status, reasons, ids, pubkeys, keyBytes, createdAt, kinds, jsonBytes, jsonEnds, clsAt: Uint32Array.from(clsAt), cls };
}

/** The buffers a reply can transfer instead of copying. */
export function transferables(r: JudgeReply): ArrayBuffer[] {
  return [r.status.buffer, r.createdAt.buffer, r.kinds.buffer, r.clsAt.buffer, r.jsonBytes.buffer, r.jsonEnds.buffer, r.keyBytes.buffer] as ArrayBuffer[];
}

function isEmpty(c: Classified): boolean {
  for (const _ in c) return false;
  return true;
}

/** Ingest-thread side: the reply as judgeLine's results, one per line. */
export function unpackReply(r: JudgeReply): Judged[] {
  const n = r.status.length;
  const out = new Array<Judged>(n);
  let k = 0;
  let x = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    if (r.status[i] !== EVENT) {
      out[i] = { kind: r.status[i] === SKIPPED ? 'skipped' : 'invalid', reason: r.reasons[x++]! };
      continue;
    }
    let cls: Classified = {};
    if (c < r.clsAt.length && r.clsAt[c] === k) cls = r.cls[c++]!;
    out[i] = {
      kind: 'event',
      event: { id: r.ids[k]!, pubkey: r.pubkeys[k]!, created_at: r.createdAt[k]!, kind: r.kinds[k]! },
      json: r.jsonBytes.subarray(k === 0 ? 0 : r.jsonEnds[k - 1], r.jsonEnds[k]),
      keyBytes: r.keyBytes.subarray(64 * k, 64 * k + 64),
      cls,
    };
    k++;
  }
  return out;
}
