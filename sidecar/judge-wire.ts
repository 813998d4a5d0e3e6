// The messages between the ingest thread and a judge worker (judge-pool.ts, judge-worker.ts).
// Cheap for the ingest thread to receive: one string per field kind instead of one object per
// line, typed arrays (transferred, not copied) for numbers; it slices the strings.
import { judgeLine, type Judged } from './line-judge.js';
import type { Classified, PolicyConfig } from './policy.js';

export interface JudgeRequest {
  seq: number;
  /** The lines joined by '\n' (ingest lines never contain one: sources split on it). */
  text: string;
  count: number;
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
  /** Set when the worker could not judge the request (the ingest thread judges it itself). */
  error?: string;
  /** Per line: EVENT, SKIPPED or INVALID. */
  status: Uint8Array;
  /** The reasons of the SKIPPED and INVALID lines, in line order. */
  reasons: string[];
  /** Per event, in line order: 64 hex chars each. */
  ids: string;
  pubkeys: string;
  createdAt: Float64Array;
  kinds: Uint16Array;
  /** Canonical JSON of the events, concatenated; event k spans jsonEnds[k-1] (or 0) .. jsonEnds[k]. */
  json: string;
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
  const lines = req.count === 0 ? [] : req.text.split('\n');
  if (lines.length !== req.count) return failedReply(req.seq, `expected ${req.count} lines, got ${lines.length}`);
  const n = lines.length;
  const status = new Uint8Array(n);
  const reasons: string[] = [];
  const heads: Judged[] = [];
  for (let i = 0; i < n; i++) {
    const j = judgeLine(lines[i]!, verifyAt(req.verify, i), policy, req.nowSec);
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
  const createdAt = new Float64Array(m);
  const kinds = new Uint16Array(m);
  const jsonEnds = new Uint32Array(m);
  const clsAt: number[] = [];
  const cls: Classified[] = [];
  let end = 0;
  for (let k = 0; k < m; k++) {
    const j = heads[k] as Extract<Judged, { kind: 'event' }>;
    ids[k] = j.event.id;
    pubkeys[k] = j.event.pubkey;
    createdAt[k] = j.event.created_at;
    kinds[k] = j.event.kind;
    json[k] = j.json;
    end += j.json.length;
    jsonEnds[k] = end;
    if (!isEmpty(j.cls)) {
      clsAt.push(k);
      cls.push(j.cls);
    }
  }
  return { seq: req.seq, status, reasons, ids: ids.join(''), pubkeys: pubkeys.join(''), createdAt, kinds, json: json.join(''), jsonEnds, clsAt: Uint32Array.from(clsAt), cls };
}

function failedReply(seq: number, error: string): JudgeReply {
  const none = new Uint8Array(0);
  return { seq, error, status: none, reasons: [], ids: '', pubkeys: '', createdAt: new Float64Array(0), kinds: new Uint16Array(0), json: '', jsonEnds: new Uint32Array(0), clsAt: new Uint32Array(0), cls: [] };
}

/** The buffers a reply can transfer instead of copying. */
export function transferables(r: JudgeReply): ArrayBuffer[] {
  return [r.status.buffer, r.createdAt.buffer, r.kinds.buffer, r.jsonEnds.buffer, r.clsAt.buffer] as ArrayBuffer[];
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
  let start = 0;
  for (let i = 0; i < n; i++) {
    if (r.status[i] !== EVENT) {
      out[i] = { kind: r.status[i] === SKIPPED ? 'skipped' : 'invalid', reason: r.reasons[x++]! };
      continue;
    }
    const end = r.jsonEnds[k]!;
    const at = k * 64;
    let cls: Classified = {};
    if (c < r.clsAt.length && r.clsAt[c] === k) cls = r.cls[c++]!;
    out[i] = {
      kind: 'event',
      event: { id: r.ids.slice(at, at + 64), pubkey: r.pubkeys.slice(at, at + 64), created_at: r.createdAt[k]!, kind: r.kinds[k]! },
      json: r.json.slice(start, end),
      cls,
    };
    start = end;
    k++;
  }
  return out;
}
