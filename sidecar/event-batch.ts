// One ingest batch's judged events as columns, the form the index applies (Store.applyBatch).
// A batch is thousands of events that live from judging to commit: as objects, every scavenge
// copied them and then promoted them, and the ingest thread's garbage collection cost as much as
// its index writes. As columns they are a few typed arrays and one buffer of JSON.
import type { EventHead } from './line-judge.js';
import type { Classified } from './policy.js';
import type { EventJson } from './event-log.js';

export interface EventBatch {
  /** Per event, in line order. */
  ids: string[];
  pubkeys: string[];
  /** The same ids and pubkeys as raw bytes, 64 per event (id, then pubkey): the index row's form. */
  keyBytes: Uint8Array;
  createdAt: Float64Array;
  kinds: Uint16Array;
  /** Canonical JSON of every event, UTF-8, one after the other. */
  jsonBytes: Uint8Array;
  /** Where each event's JSON ends in jsonBytes. */
  jsonEnds: Uint32Array;
  /** Classifications that are not empty, and the event index of each (ascending). */
  clsAt: Uint32Array;
  cls: Classified[];
}

export function eventCount(b: EventBatch): number {
  return b.ids.length;
}

export function headAt(b: EventBatch, k: number): EventHead {
  return { id: b.ids[k]!, pubkey: b.pubkeys[k]!, created_at: b.createdAt[k]!, kind: b.kinds[k]! };
}

export function jsonAt(b: EventBatch, k: number): Uint8Array {
  return b.jsonBytes.subarray(k === 0 ? 0 : b.jsonEnds[k - 1], b.jsonEnds[k]);
}

/** Bytes of event k's line in the log and in bundles (JSON and newline). */
export function lineBytesAt(b: EventBatch, k: number): number {
  return b.jsonEnds[k]! - (k === 0 ? 0 : b.jsonEnds[k - 1]!) + 1;
}

const NONE: Classified = Object.freeze({});

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
  const parts = events.map((e) => (typeof e.json === 'string' ? Buffer.from(e.json) : e.json));
  const jsonEnds = new Uint32Array(m);
  let end = 0;
  parts.forEach((p, k) => (jsonEnds[k] = end += p.length));
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
    ids: events.map((e) => e.event.id),
    pubkeys: events.map((e) => e.event.pubkey),
    keyBytes,
    createdAt: Float64Array.from(events, (e) => e.event.created_at),
    kinds: Uint16Array.from(events, (e) => e.event.kind),
    jsonBytes: Buffer.concat(parts),
    jsonEnds,
    clsAt: Uint32Array.from(clsAt),
    cls,
  };
}
