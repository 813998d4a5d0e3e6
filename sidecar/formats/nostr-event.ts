// Parsing and validating Nostr events (NIP-01), and their canonical serialization.
import { hash } from 'node:crypto';
import { initNostrWasm } from 'nostr-wasm';
import type { TextOrBytes } from '../common/text-or-bytes.js';

/** Canonical event JSON: a string, or its UTF-8 bytes (from a judge worker); no newline. */
export type EventJson = TextOrBytes;

export interface NostrEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

export class InvalidEvent extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
/** What JSON.stringify escapes in a string: quote, backslash, controls, and (lone) surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what this finds (JSON.stringify escapes them)
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify of a string. Most contents need no escape, and then their JSON is the string in
 * quotes: on Node 20 JSON.stringify of 1 kB costs ~3 µs, the test ~1.5 (the largest single cost of
 * judging an event). Any surrogate, paired or not, takes the JSON.stringify way.
 */
export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}
const HEX128 = /^[0-9a-f]{128}$/;

/** Accepts a strfry plugin line ({"event":{...},...}) or a bare event; returns the event object. */
export function eventFromLine(line: string): unknown {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new InvalidEvent('malformed', 'line is not valid JSON');
  }
  if (msg && typeof msg === 'object' && 'event' in msg) return (msg as { event: unknown }).event;
  return msg;
}

/** Checks shape and the id (sha256 of the NIP-01 serialization). Does not check the signature. */
export function validateEvent(e: unknown): NostrEvent {
  return checkedEvent(e).event;
}

/**
 * validateEvent, plus the event's canonical JSON (see canonicalJson). Content and tags are
 * serialized once for both the id check and the canonical form: on the ingest path that is
 * most of the cost of an event.
 */
export function validatedEventJson(e: unknown): { event: NostrEvent; json: string } {
  const { event, content, tags } = checkedEvent(e);
  // Hex strings and safe integers serialize as themselves: this template is byte for byte
  // canonicalJson(event).
  const json = `{"content":${content},"created_at":${event.created_at},"id":"${event.id}","kind":${event.kind},"pubkey":"${event.pubkey}","sig":"${event.sig}","tags":${tags}}`;
  return { event, json };
}

/** The checks of validateEvent; returns the event with its content and tags as JSON. */
function checkedEvent(e: unknown): { event: NostrEvent; content: string; tags: string } {
  if (!e || typeof e !== 'object' || Array.isArray(e)) throw new InvalidEvent('malformed', 'not an event object');
  const ev = e as Record<string, unknown>;
  if (typeof ev.id !== 'string' || !HEX64.test(ev.id)) throw new InvalidEvent('bad-field', 'id is not 64 lowercase hex');
  if (typeof ev.pubkey !== 'string' || !HEX64.test(ev.pubkey)) throw new InvalidEvent('bad-field', 'pubkey is not 64 lowercase hex');
  if (typeof ev.sig !== 'string' || !HEX128.test(ev.sig)) throw new InvalidEvent('bad-field', 'sig is not 128 lowercase hex');
  if (!Number.isSafeInteger(ev.created_at) || (ev.created_at as number) < 0)
    throw new InvalidEvent('bad-field', 'created_at is not a non-negative integer');
  if (!Number.isSafeInteger(ev.kind) || (ev.kind as number) < 0 || (ev.kind as number) > 65535)
    throw new InvalidEvent('bad-field', 'kind is not an integer in 0..65535');
  if (typeof ev.content !== 'string') throw new InvalidEvent('bad-field', 'content is not a string');
  if (!Array.isArray(ev.tags)) throw new InvalidEvent('bad-field', 'tags is not an array');
  for (const tag of ev.tags) {
    if (!Array.isArray(tag)) throw new InvalidEvent('bad-field', 'a tag is not an array');
    for (const v of tag) if (typeof v !== 'string') throw new InvalidEvent('bad-field', 'a tag value is not a string');
  }
  const event = ev as unknown as NostrEvent;
  // Hex strings and safe integers serialize as themselves: this template is byte for byte
  // JSON.stringify of the NIP-01 array.
  const content = jsonString(event.content);
  const tags = JSON.stringify(event.tags);
  // One-shot hash: a Hash object per event costs more than hashing its ~1 kB.
  const id = hash('sha256', `[0,"${event.pubkey}",${event.created_at},${event.kind},${tags},${content}]`, 'hex');
  if (id !== event.id) throw new InvalidEvent('bad-id', 'id does not match the event content');
  return { event, content, tags };
}

export function computeEventId(e: Omit<NostrEvent, 'id' | 'sig'>): string {
  return hash('sha256', JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]), 'hex');
}

/** The bytes nostr-bt stores and puts in bundles: minified JSON, keys sorted (as strfry exports). */
export function canonicalJson(e: NostrEvent): string {
  return JSON.stringify({
    content: e.content,
    created_at: e.created_at,
    id: e.id,
    kind: e.kind,
    pubkey: e.pubkey,
    sig: e.sig,
    tags: e.tags,
  });
}

type Wasm = Awaited<ReturnType<typeof initNostrWasm>>;
let wasm: Wasm | null = null;

/** Loads the secp256k1 WASM backend (nostr-wasm, as used by nostr-tools/wasm). */
export async function initSignatureCheck(): Promise<void> {
  wasm ??= await initNostrWasm();
}

export function hasValidSignature(e: NostrEvent): boolean {
  if (!wasm) throw new Error('initSignatureCheck() was not awaited');
  try {
    wasm.verifyEvent(e);
    return true;
  } catch {
    return false;
  }
}

export function tagValue(e: Pick<NostrEvent, 'tags'>, name: string): string | undefined {
  for (const t of e.tags) if (t[0] === name && t.length > 1) return t[1];
  return undefined;
}
