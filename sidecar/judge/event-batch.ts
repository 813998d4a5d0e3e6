// One ingest batch's judged events as columns, the form the index applies (Store.applyBatch).
// A batch is thousands of events that live from judging to commit: as objects, every scavenge
// copied them and then promoted them, and the ingest thread's garbage collection cost as much as
// its index writes. As columns they are a few typed arrays and one buffer of JSON.
import type { EventHead } from './line-judge.js';
import type { Classified } from '../policy/content-policy.js';
import type { EventJson } from '../formats/nostr-event.js';

export interface EventBatch {
  /**
   * Per event, in line order: id and pubkey as raw bytes, 64 per event (id, then pubkey), the
   * index row's form. Their hex text is made only where an event needs it (idAt, headAt): as
   * strings they were most of what a batch cost the ingest thread's garbage collector.
   */
  keyBytes: Uint8Array;
  createdAt: Float64Array;
  kinds: Uint16Array;
  /**
   * Every event's line as the log and bundles store it: canonical JSON (UTF-8) and a newline, one
   * after the other (the log writes runs of them as they are).
   */
  lines: Uint8Array;
  /** Where each event's line ends in `lines` (after its newline). */
  lineEnds: Uint32Array;
  /** Classifications that are not empty, and the event index of each (ascending). */
  clsAt: Uint32Array;
  cls: Classified[];
}

export function eventCount(b: EventBatch): number {
  return b.createdAt.length;
}

/** Event k's id as hex. */
export function idAt(b: EventBatch, k: number): string {
  return hexOf(b.keyBytes, 64 * k);
}

/** Event k's pubkey as hex. */
export function pubkeyAt(b: EventBatch, k: number): string {
  return hexOf(b.keyBytes, 64 * k + 32);
}

export function headAt(b: EventBatch, k: number): EventHead {
  return { id: idAt(b, k), pubkey: pubkeyAt(b, k), created_at: b.createdAt[k]!, kind: b.kinds[k]! };
}

function hexOf(bytes: Uint8Array, at: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + at, 32).toString('hex');
}

export function lineStart(b: EventBatch, k: number): number {
  return k === 0 ? 0 : b.lineEnds[k - 1]!;
}

/** Event k's line: canonical JSON and newline. */
export function lineAt(b: EventBatch, k: number): Uint8Array {
  return b.lines.subarray(lineStart(b, k), b.lineEnds[k]);
}

/** Event k's canonical JSON (its line without the newline). */
export function jsonAt(b: EventBatch, k: number): Uint8Array {
  return b.lines.subarray(lineStart(b, k), b.lineEnds[k]! - 1);
}

/** Bytes of event k's line in the log and in bundles (JSON and newline). */
export function lineBytesAt(b: EventBatch, k: number): number {
  return b.lineEnds[k]! - lineStart(b, k);
}

const NONE: Classified = Object.freeze({});
const NEWLINE = Buffer.of(0x0a);

/** The classification of each event, asked for in ascending event order. */
export function clsReader(b: EventBatch): (k: number) => Classified {
  let c = 0;
  return (k) => {
    while (c < b.clsAt.length && b.clsAt[c]! < k) c++;
    return c < b.clsAt.length && b.clsAt[c] === k ? b.cls[c]! : NONE;
  };
}

export function isEmptyCls(c: Classified): boolean {
  for (const _ in c) return false;
  return true;
}

/** One judged event on its own (judgeLine's answer for an event). */
export interface JudgedEvent {
  event: EventHead;
  json: EventJson;
  cls: Classified;
}

/** Packs events judged one by one (tests, tools) into a batch. */
export function eventBatchOf(events: readonly JudgedEvent[]): EventBatch {
  const m = events.length;
  const parts = events.map((e) => Buffer.concat([typeof e.json === 'string' ? Buffer.from(e.json) : e.json, NEWLINE]));
  const lineEnds = new Uint32Array(m);
  let end = 0;
  parts.forEach((p, k) => void (lineEnds[k] = end += p.length));
  const keyBytes = Buffer.alloc(64 * m);
  const clsAt: number[] = [];
  const cls: Classified[] = [];
  events.forEach(({ event, cls: c }, k) => {
    keyBytes.write(event.id, 64 * k, 'hex');
    keyBytes.write(event.pubkey, 64 * k + 32, 'hex');
    if (!isEmptyCls(c)) {
      clsAt.push(k);
      cls.push(c);
    }
  });
  return {
    keyBytes,
    createdAt: Float64Array.from(events, (e) => e.event.created_at),
    kinds: Uint16Array.from(events, (e) => e.event.kind),
    lines: Buffer.concat(parts),
    lineEnds,
    clsAt: Uint32Array.from(clsAt),
    cls,
  };
}
