// Event generators for tests and benchmarks.
import { createHash, randomBytes } from 'node:crypto';
import { initNostrWasm } from 'nostr-wasm';
import { canonicalJson, computeEventId, type NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { classify, type PolicyConfig } from '../../sidecar/policy/content-policy.js';
import type { JudgedEvent } from '../../sidecar/judge/event-batch.js';

export interface Template {
  kind: number;
  created_at: number;
  tags?: string[][];
  content?: string;
}

type Wasm = Awaited<ReturnType<typeof initNostrWasm>>;
let wasm: Wasm | null = null;

export async function signer(): Promise<{ secretKey: Uint8Array; pubkey: string; sign: (t: Template) => NostrEvent }> {
  wasm ??= await initNostrWasm();
  const w = wasm;
  const secretKey = w.generateSecretKey();
  const pubkey = Buffer.from(w.getPublicKey(secretKey)).toString('hex');
  return {
    secretKey,
    pubkey,
    sign: (t) => {
      const e = { kind: t.kind, created_at: t.created_at, tags: t.tags ?? [], content: t.content ?? '' } as unknown as NostrEvent;
      w.finalizeEvent(e, secretKey);
      return e;
    },
  };
}

/**
 * An event with a correct id but a placeholder signature: for load through paths that trust
 * strfry's signature check (the plugin socket, strfry export). Never passes signature checks.
 */
/** An event as judging gives it to the index (canonical JSON and policy class), judged at `nowSec`. */
export function judgedEvent(e: NostrEvent, policy: PolicyConfig, nowSec = e.created_at): JudgedEvent {
  const json = canonicalJson(e);
  return { event: e, json, cls: classify(e, Buffer.byteLength(json), policy, nowSec) };
}

export function unsignedEvent(pubkey: string, t: Template): NostrEvent {
  const base = { pubkey, created_at: t.created_at, kind: t.kind, tags: t.tags ?? [], content: t.content ?? '' };
  const id = computeEventId(base);
  const sig = createHash('sha512').update(id).digest('hex');
  return { ...base, id, sig };
}

export function randomPubkey(): string {
  return randomBytes(32).toString('hex');
}

/** Deterministic pubkey number n (for generated populations). */
export function pubkeyN(n: number): string {
  return createHash('sha256').update(`author-${n}`).digest('hex');
}

/** JSON with object keys sorted at every level, minified (strfry's output style). */
export function sortedJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return '[' + v.map((x) => sortedJson(x)).join(',') + ']';
  const obj = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) if (obj[k] !== undefined) parts.push(JSON.stringify(k) + ':' + sortedJson(obj[k]));
  return '{' + parts.join(',') + '}';
}

export interface StrfryExtra {
  sourceType?: string;
  sourceInfo?: string;
  receivedAt?: number;
  authed?: string;
}

/** The line strfry writes to a plugin for this event (keys sorted, minified). */
export function strfryLine(event: object, extra: StrfryExtra = {}): string {
  return sortedJson({
    authed: extra.authed,
    event,
    receivedAt: extra.receivedAt ?? Math.floor(Date.now() / 1000),
    sourceInfo: extra.sourceInfo ?? '127.0.0.1',
    sourceType: extra.sourceType ?? 'IP4',
    type: 'new',
  });
}

/** strfryLine for a real event, using the sidecar's canonical event serialization. */
export function pluginLine(e: NostrEvent, extra: StrfryExtra = {}): string {
  return strfryLine(JSON.parse(canonicalJson(e)) as object, extra);
}

/** Content of roughly `bytes` bytes (realistic text-ish, varied per seed). */
export function contentOf(bytes: number, seed: number): string {
  const words = ['nostr', 'relay', 'bitcoin', 'hello', 'world', 'zap', 'note', 'torrent', 'swarm', 'peer', 'gm', 'pura', 'vida'];
  let s = `#${seed} `;
  let i = seed;
  while (s.length < bytes) {
    i = (i * 1103515245 + 12345) & 0x7fffffff;
    s += words[i % words.length] + ' ';
  }
  return s.slice(0, bytes);
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
